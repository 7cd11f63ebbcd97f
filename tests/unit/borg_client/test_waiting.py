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


class Database:
    """The Docker API of one labelled database: it accepts connections once `ready_after` looks have failed."""

    def __init__(self, ready_after: int, health: str | None = None):
        self.looks, self.ready_after, self.health = 0, ready_after, health

    def inspect_container(self, _id):
        return {"State": {"Health": {"Status": self.health}} if self.health else {}, "Config": {"Env": []}}

    def exec_create(self, _container, _argv, **_options):
        self.looks += 1
        return {"Id": "probe"}

    def exec_start(self, _id, stream, demux):
        yield (None, b"psql: error: connection to server on socket failed: No such file or directory\n")

    def exec_inspect(self, _id):
        return {"ExitCode": 0 if self.looks > 2 * self.ready_after else 2}  # two looks a try: socket, then TCP


class Clock:
    """A clock that only a TickingStop moves on (by what it is asked to wait)."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def labelled_database(monkeypatch, tmp_path, config):
    """A sidecar with the Docker socket and one labelled postgres container, db-1; the test sets its API."""
    socket = tmp_path / "docker.sock"
    socket.touch()
    monkeypatch.setattr(waiting.container_exec, "SOCKET", socket)
    found = {}
    monkeypatch.setattr(waiting.container_exec, "docker_client", lambda: SimpleNamespace(api=found["api"]))
    source = waiting.dumps.Source("db-1", "id-db-1", "postgres")
    monkeypatch.setattr(waiting.dumps, "labelled", lambda client, scope, project_only: [source])
    return found


class TickingStop(FakeStop):
    def __init__(self, clock: Clock):
        super().__init__()
        self.clock = clock

    def wait(self, seconds):
        self.clock.now += seconds
        return super().wait(seconds)


def test_the_first_run_waits_for_a_database_still_initialising_and_says_what_it_waited_for(
    labelled_database, config, caplog
):
    labelled_database["api"] = Database(ready_after=3)
    clock = Clock()
    stop = TickingStop(clock)
    with caplog.at_level(logging.INFO):
        assert waiting.databases_ready(config, stop, clock=clock) is True
    assert stop.waits == [2, 2, 2]
    assert caplog.messages == [
        "waiting for database container db-1 (postgres) to accept connections, up to 300 s",
        "database container db-1 (postgres) accepts connections after 6 s; backing up now",
    ]


def test_a_database_that_never_answers_is_waited_for_only_up_to_the_bound(labelled_database, config, caplog):
    labelled_database["api"] = Database(ready_after=10**6)
    clock = Clock()
    stop = TickingStop(clock)
    with caplog.at_level(logging.INFO):
        assert waiting.databases_ready(config, stop, bound=10, clock=clock) is True
    assert stop.waits == [2] * 5
    assert caplog.messages[-1] == (
        "database container db-1 (postgres) still accepts no connection after 10 s; backing up anyway: "
        "container db-1: postgres accepts no connection, neither over its socket: psql: error: connection to "
        "server on socket failed: No such file or directory (exit 2); nor over TCP 127.0.0.1: psql: error: "
        "connection to server on socket failed: No such file or directory (exit 2); check that it is up and that "
        "the password in its environment is the database's"
    )


def test_a_database_ready_at_once_or_a_sidecar_without_the_socket_waits_for_nothing(
    labelled_database, config, caplog, monkeypatch, tmp_path
):
    labelled_database["api"] = Database(ready_after=0)
    stop = FakeStop()
    with caplog.at_level(logging.INFO):
        assert waiting.databases_ready(config, stop) is True
    monkeypatch.setattr(waiting.container_exec, "SOCKET", tmp_path / "absent.sock")
    assert waiting.databases_ready(config, stop) is True
    assert stop.waits == [] and caplog.messages == []


def test_a_database_whose_health_check_says_starting_is_not_ready_yet():
    assert waiting.database_missing(Database(0, "starting"), waiting.dumps.Source("db", "i", "postgres")) == (
        "its health check says starting"
    )
    assert waiting.database_missing(Database(0, "healthy"), waiting.dumps.Source("db", "i", "postgres")) is None


def test_a_stop_ends_the_wait_for_a_database(labelled_database, config):
    labelled_database["api"] = Database(ready_after=10**6)
    assert waiting.databases_ready(config, FakeStop(after=1), clock=Clock()) is False
