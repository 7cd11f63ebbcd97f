"""Tests for restoring: a target that would write over the live volumes is refused before borg runs."""

from pathlib import Path

import pytest

from borg_client import restore as restoring
from borg_client.borgcall import BorgCall
from borg_client.restore import RestoreRefused, overlaps_live, restore

SOURCES = Path("/backup")


@pytest.mark.parametrize("target", ["/", "/backup", "/backup/", "/backup/x", "/backup/data/deep/er", "/tmp/../backup"])
def test_a_target_at_the_root_or_inside_the_live_volumes_overlaps_them(target):
    assert overlaps_live(Path(target), SOURCES) is True


@pytest.mark.parametrize("target", ["/tmp/r", "/backupx", "/restore/backup", "/srv"])
def test_a_target_beside_the_live_volumes_does_not_overlap_them(target):
    assert overlaps_live(Path(target), SOURCES) is False


BORG = ["borg", "--log-json", "--lock-wait", "600"]


@pytest.fixture
def borg_calls(monkeypatch):
    """Record borg commands instead of running them; each one exits 0."""
    calls = []

    def call_borg(config, argv, capture_json=False, cwd=None):
        calls.append((argv, cwd))
        return BorgCall(0, "", (), ())

    monkeypatch.setattr(restoring, "call_borg", call_borg)
    return calls


def test_restore_refuses_a_target_inside_the_live_volumes_without_running_borg(config, borg_calls):
    target = config.sources / "data"

    with pytest.raises(RestoreRefused) as refusal:
        restore(config, "web-2024-05-06", [], target)

    assert str(refusal.value) == (
        f"--target {target} would write over the live volumes under {config.sources}; "
        "restore elsewhere, or add --overwrite-live if that is really what you want"
    )
    assert borg_calls == []
    assert not target.exists()


def test_restore_refuses_the_root_as_target_without_running_borg(config, borg_calls):
    with pytest.raises(RestoreRefused):
        restore(config, "web-2024-05-06", ["backup/data/file"], Path("/"))

    assert borg_calls == []


def test_restore_over_the_live_volumes_runs_when_asked_explicitly(config, borg_calls):
    target = config.sources / "data"

    assert restore(config, "web-2024-05-06", [], target, over_live=True) == 0

    assert borg_calls == [([*BORG, "extract", "::web-2024-05-06"], target)]


def test_restore_elsewhere_creates_the_target_and_extracts_the_paths_relative(config, borg_calls, tmp_path):
    target = tmp_path / "restore" / "here"

    assert restore(config, "web-2024-05-06", ["/backup/data/a.txt", "backup/db"], target) == 0

    assert target.is_dir()
    assert borg_calls == [([*BORG, "extract", "::web-2024-05-06", "backup/data/a.txt", "backup/db"], target)]


def test_restore_returns_borgs_exit_code_when_it_fails(config, monkeypatch, tmp_path):
    monkeypatch.setattr(
        restoring, "call_borg", lambda *args, **kwargs: BorgCall(2, "", ("Archive.DoesNotExist",), ("ERROR: x",))
    )

    assert restore(config, "missing", [], tmp_path / "r") == 2
