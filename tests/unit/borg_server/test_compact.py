"""Tests for `borg-server compact`: when it refuses, and the hard-link snapshot it takes first.

borg itself is never run here; the whole compaction is left to the integration tests.
"""

from datetime import datetime

import pytest

from borg_server.compaction import by_hand
from borg_server.compaction import compact as compaction
from borg_server.records import state_file as client_state
from borg_server.records.client_state import ClientState
from tests.unit.borg_server.borg_files import init_create_create_delete, write_repository

NOW = "2024-05-06T03:00:00+00:00"
REVIEW = "review them with: borg-server audit web"
TAMPERING = {"changed": [], "truncated": [], "removed": [6], "config": False, "seen_at": NOW}


def deletes_in(segment: int, **kinds: int) -> dict:
    """Return the group of deletes the monitor records for one segment, counted by kind."""
    return {
        "segment": segment,
        "count": sum(kinds.values()),
        "kinds": kinds,
        "keys": [],
        "committed_at": None,
        "seen_at": NOW,
    }


def state(**fields) -> ClientState:
    """Return the findings of a client scanned through segment 13 with nothing found, with fields changed.

    fields are given as the state file holds them (version 2 JSON).
    """
    return client_state.from_json(client_state.to_json(ClientState(first_seen=NOW)) | {"scanned": 13} | fields, NOW)


# refusal


def test_a_repository_scanned_to_its_last_commit_with_nothing_found_may_be_compacted():
    assert by_hand.refusal("web", state(), 13) is None


def test_a_repository_without_any_commit_and_never_scanned_may_be_compacted():
    assert by_hand.refusal("web", state(scanned=None), None) is None


def test_unacknowledged_deletes_refuse_the_compaction_naming_how_many_and_where():
    found = state(deletes=[deletes_in(6, delete=2), deletes_in(10, overwrite=1, delete=1)])

    assert by_hand.refusal("web", found, 13) == (
        f"4 unacknowledged delete(s) (segments 6..10); compaction would apply them for good; {REVIEW}"
    )


def test_checkpoint_clean_ups_not_acknowledged_refuse_the_compaction_too():
    assert by_hand.refusal("web", state(deletes=[deletes_in(6, checkpoint=1)]), 13) == (
        f"1 unacknowledged delete(s) (segments 6..6); compaction would apply them for good; {REVIEW}"
    )


def test_changes_to_committed_files_refuse_the_compaction():
    assert by_hand.refusal("web", state(tampering=TAMPERING), 13) == (
        f"committed files changed (segments removed 6); {REVIEW}"
    )


def test_an_unreadable_segment_refuses_the_compaction():
    unreadable = TAMPERING | {"removed": [], "unreadable": "data/0/6: crc32 mismatch at offset 8"}

    assert by_hand.refusal("web", state(tampering=unreadable), 13) == (
        f"committed files changed (unreadable: data/0/6: crc32 mismatch at offset 8); {REVIEW}"
    )


def test_deletes_are_named_first_when_there_are_changes_to_committed_files_too():
    found = state(deletes=[deletes_in(10, delete=1)], tampering=TAMPERING)

    assert by_hand.refusal("web", found, 13).startswith("1 unacknowledged delete(s) (segments 10..10); ")


@pytest.mark.parametrize(("scanned", "last_commit"), [(9, 13), (None, 13), (13, 9), (13, None)])
def test_a_repository_not_scanned_exactly_to_its_last_commit_refuses_the_compaction(scanned, last_commit):
    assert by_hand.refusal("web", state(scanned=scanned), last_commit) == (
        f"the repository was not scanned completely (through {scanned} of {last_commit}); {REVIEW}"
    )


# take_snapshot


class FixedTime:
    """Stands in for datetime in compaction: now is 2024-05-06 03:00:00 UTC."""

    @staticmethod
    def now(tz):
        return datetime(2024, 5, 6, 3, 0, 0, tzinfo=tz)


def test_a_snapshot_hard_links_every_file_of_the_repository_into_a_directory_named_by_the_time(tmp_path, monkeypatch):
    monkeypatch.setattr(compaction, "datetime", FixedTime)
    repository = write_repository(tmp_path / "srv" / "web" / "main", init_create_create_delete())
    (repository / "config").write_text("[repository]\n")
    directory = tmp_path / "srv" / ".snapshots" / "web"

    snapshot = compaction.take_snapshot(repository, directory)

    assert snapshot == directory / "2024-05-06T03-00-00.000000Z"
    originals = sorted(path.relative_to(repository) for path in repository.rglob("*") if path.is_file())
    copies = sorted(path.relative_to(snapshot) for path in snapshot.rglob("*") if path.is_file())
    assert copies == originals
    assert len(originals) == 15
    assert all((snapshot / name).stat().st_ino == (repository / name).stat().st_ino for name in originals)


def test_a_second_snapshot_at_the_same_moment_is_refused_instead_of_nested(tmp_path, monkeypatch):
    monkeypatch.setattr(compaction, "datetime", FixedTime)
    repository = write_repository(tmp_path / "srv" / "web" / "main", init_create_create_delete())
    directory = tmp_path / "srv" / ".snapshots" / "web"
    compaction.take_snapshot(repository, directory)

    with pytest.raises(compaction.CompactionFailed, match="exists already"):
        compaction.take_snapshot(repository, directory)


def test_the_snapshot_directories_are_readable_by_root_only(tmp_path, monkeypatch):
    monkeypatch.setattr(compaction, "datetime", FixedTime)
    repository = write_repository(tmp_path / "srv" / "web" / "main", init_create_create_delete())
    snapshots = tmp_path / "srv" / ".snapshots"
    snapshots.mkdir(mode=0o755)

    compaction.take_snapshot(repository, snapshots / "web")

    assert (snapshots.stat().st_mode & 0o777, (snapshots / "web").stat().st_mode & 0o777) == (0o700, 0o700)
