"""Tests for the gate between a client's sessions and a compaction of its repository."""

import fcntl

import pytest

from borg_server import gate
from borg_server.paths import Paths


@pytest.fixture
def paths(tmp_path):
    paths = Paths(repositories=tmp_path / "srv", state=tmp_path / "state", runtime=tmp_path / "run")
    gate.prepare(paths, ["web", "db"])
    return paths


def test_prepare_creates_one_gate_file_per_client_and_drops_stale_markers(paths):
    paths.compaction_marker("web").touch()  # left by a container killed during a compaction

    gate.prepare(paths, ["web", "db"])

    assert sorted(entry.name for entry in paths.gate_directory.iterdir()) == ["db.lock", "web.lock"]
    assert paths.gate_lock("web").stat().st_mode & 0o777 == 0o644


def test_a_session_passes_at_once_when_no_compaction_runs(paths, capsys):
    with gate.session(paths, "web", limit=-1):
        pass
    assert capsys.readouterr().err == ""


def test_a_session_of_a_client_without_a_gate_file_is_not_held_back(paths):
    with gate.session(paths, "new", limit=-1):
        pass


def test_a_session_waits_while_a_compaction_runs_and_gives_up_after_its_limit(paths, capsys):
    with gate.compaction(paths, "web", limit=-1), pytest.raises(gate.GateClosed, match="still runs"):
        with gate.session(paths, "web", limit=-1):
            pytest.fail("the session ran during the compaction")
    assert capsys.readouterr().err == "borg-server: the server is compacting this repository; this session waits\n"


def test_a_session_that_holds_the_gate_before_the_marker_appears_steps_back(paths):
    paths.compaction_marker("web").touch()  # a compaction announced itself, but has not got the lock yet
    with pytest.raises(gate.GateClosed):
        with gate.session(paths, "web", limit=-1):
            pytest.fail("the session ran although a compaction was announced")


def test_a_compaction_waits_for_a_running_session_and_gives_up_after_its_limit(paths):
    with gate.session(paths, "web", limit=-1), pytest.raises(gate.GateClosed, match="sessions of web still run"):
        with gate.compaction(paths, "web", limit=-1):
            pytest.fail("the compaction ran during a session")
    assert not paths.compaction_marker("web").exists()  # new sessions are let in again


def test_a_second_compaction_of_the_same_client_is_refused(paths):
    with gate.compaction(paths, "web", limit=-1), pytest.raises(gate.GateClosed, match="already running"):
        with gate.compaction(paths, "web", limit=-1):
            pass


def test_a_compaction_of_one_client_does_not_hold_back_another(paths):
    with gate.compaction(paths, "web", limit=-1), gate.session(paths, "db", limit=-1):
        pass


def test_after_a_compaction_the_gate_is_open_again(paths):
    with gate.compaction(paths, "web", limit=-1):
        pass
    with open(paths.gate_lock("web"), "rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody holds it
    assert not paths.compaction_marker("web").exists()
