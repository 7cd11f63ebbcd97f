"""Tests for waiting at start: for a pairing export, for the server; what the health check says meanwhile."""

import logging
from types import SimpleNamespace

import pytest

from borg_client import preflight, status, waiting
from borg_client.config import load
from borg_common.settings import ConfigError


class FakeStop:
    """A stop event that never sleeps: records each wait, and is set after `after` waits."""

    def __init__(self, after: int = 1000):
        self.waits, self.after = [], after

    def wait(self, seconds):
        self.waits.append(seconds)
        return len(self.waits) >= self.after

    def is_set(self):
        return len(self.waits) >= self.after


def test_waiting_logs_one_line_per_minute_naming_what_is_missing_until_it_is_there(caplog, tmp_path):
    answers = iter(["the server", "the server", None])
    marker = tmp_path / "waiting"
    seen = []

    def missing():
        seen.append(marker.exists())
        return next(answers)

    stop = FakeStop()
    with caplog.at_level(logging.INFO):
        assert waiting.wait_for(missing, stop, marker) is True

    assert stop.waits == [60, 60]
    assert caplog.messages == ["waiting for the server; looking again in 60s"] * 2
    assert seen == [False, True, True]  # the marker says why while waiting ...
    assert not marker.exists()  # ... and is gone once the wait is over


def test_a_stop_while_waiting_returns_false(tmp_path):
    marker = tmp_path / "waiting"
    assert waiting.wait_for(lambda: "the server", FakeStop(after=1), marker) is False
    assert not marker.exists()


def test_the_pairing_export_is_read_again_each_minute_until_it_is_complete(pairing, passphrase_file, caplog):
    moved = pairing.parent / "later"
    pairing.rename(moved)
    environ = {"BORG_PASSPHRASE_FILE": str(passphrase_file)}
    stop = FakeStop()

    def arrives_on_the_second_look(environ):
        if stop.waits:
            moved.rename(pairing)
        return load(environ, pairing=pairing)

    with caplog.at_level(logging.INFO):
        config = waiting.paired_configuration(environ, stop, load=arrives_on_the_second_look)

    assert (config.client, config.repository, stop.waits) == ("web", "ssh://borg@srv:22/./main", [60])
    assert caplog.messages[0].startswith(
        f"waiting for the pairing export: BORG_REPO: not set, and no pairing export in {pairing}"
    )


def test_wrong_settings_while_the_pairing_is_missing_fail_at_once(tmp_path, passphrase_file):
    environ = {"BORG_PASSPHRASE_FILE": str(passphrase_file), "BORG_COMPRESSION": "fast"}
    stop = FakeStop()
    with pytest.raises(ConfigError) as raised:
        waiting.paired_configuration(environ, stop, load=lambda environ: load(environ, pairing=tmp_path / "none"))
    assert stop.waits == []
    assert raised.value.problems[0].startswith("BORG_COMPRESSION: 'fast' is not a borg compression")
    assert not isinstance(raised.value, waiting.NotPaired)


def test_one_shot_commands_still_fail_for_a_missing_pairing(tmp_path, passphrase_file):
    with pytest.raises(waiting.NotPaired) as raised:
        load({"BORG_PASSPHRASE_FILE": str(passphrase_file)}, pairing=tmp_path / "none")
    assert [problem.split(":")[0] for problem in raised.value.problems] == [
        "BORG_REPO", "CLIENT_NAME", "BORG_SSH_KEY_FILE", "BORG_KNOWN_HOSTS_FILE"
    ]  # fmt: skip


def test_an_explicit_key_file_that_is_missing_is_a_wrong_setting_not_a_wait(pairing, passphrase_file):
    environ = {"BORG_PASSPHRASE_FILE": str(passphrase_file), "BORG_SSH_KEY_FILE": "/run/secrets/typo"}
    with pytest.raises(ConfigError) as raised:
        load(environ, pairing=pairing)
    assert not isinstance(raised.value, waiting.NotPaired)


def test_the_server_is_missing_while_it_offers_no_host_key(config, monkeypatch):
    offered = iter([set(), {("ssh-ed25519", "AAAA")}])
    monkeypatch.setattr(
        preflight, "pinned_and_offered", lambda config: ("srv", {("ssh-ed25519", "AAAA")}, next(offered))
    )
    assert preflight.server_missing(config) == "the backup server (cannot reach the backup server srv on port 22)"
    assert preflight.server_missing(config) is None


def test_the_healthcheck_says_starting_and_passes_while_the_pairing_export_is_missing(capsys):
    assert status.command_healthcheck(None, SimpleNamespace()) == 0
    assert capsys.readouterr().out == "starting: waiting for the pairing export in /pairing\n"


def test_the_healthcheck_says_starting_and_passes_while_the_scheduler_waits_for_the_server(config, capsys):
    config.paths.waiting.write_text("the backup server (cannot reach the backup server srv on port 22)\n")
    assert status.command_healthcheck(config, SimpleNamespace()) == 0
    assert capsys.readouterr().out == (
        "starting: waiting for the backup server (cannot reach the backup server srv on port 22)\n"
    )
