"""Tests for the gate between a client's sessions and a compaction of its repository."""

import fcntl

import pytest

from borg_server.repository import gate

WAITS = "borg-server: the server is compacting this repository; this session waits\n"


@pytest.fixture
def paths(empty_paths):
    """The server's tree with the gate files of web and db."""
    gate.prepare(empty_paths, ["web", "db"])
    return empty_paths


@pytest.fixture
def stale_marker(paths):
    """A compaction marker left by a compaction that was killed: nobody holds it locked."""
    paths.compaction_marker("web").touch()
    return paths.compaction_marker("web")


@pytest.fixture
def announced(paths):
    """A compaction that created and locked its marker but does not hold the gate yet."""
    with open(paths.compaction_marker("web"), "a") as marker:
        fcntl.flock(marker, fcntl.LOCK_EX)
        yield marker


def test_prepare_creates_one_gate_file_per_client_readable_by_all(paths):
    assert sorted(entry.name for entry in paths.gate_directory.iterdir()) == ["db.lock", "web.lock"]
    assert paths.gate_lock("web").stat().st_mode & 0o777 == 0o644
    assert paths.gate_directory.stat().st_mode & 0o777 == 0o755


def test_prepare_leaves_a_stale_marker_in_place_as_it_holds_nothing_back(paths, stale_marker):
    gate.prepare(paths, ["web", "db"])

    assert stale_marker.exists()
    assert gate.compacting(paths, "web") is False


def test_no_compaction_runs_without_a_marker(paths):
    assert gate.compacting(paths, "web") is False


def test_a_compaction_runs_while_its_marker_is_held_locked_and_not_after(paths):
    with gate.compaction(paths, "web", limit=-1):
        assert gate.compacting(paths, "web") is True
        assert gate.compacting(paths, "db") is False

    assert gate.compacting(paths, "web") is False
    assert not paths.compaction_marker("web").exists()


def test_an_announced_compaction_counts_as_running_before_it_holds_the_gate(paths, announced):
    assert gate.compacting(paths, "web") is True


def test_a_session_passes_at_once_when_no_compaction_runs(paths, capsys):
    with gate.session(paths, "web", limit=-1):
        pass
    assert capsys.readouterr().err == ""


def test_a_session_passes_at_once_despite_a_marker_left_by_a_killed_compaction(paths, stale_marker, capsys):
    entered = []

    with gate.session(paths, "web", limit=-1):
        entered.append(True)

    assert entered == [True]
    assert capsys.readouterr().err == ""


def test_a_session_of_a_client_without_a_gate_file_is_not_held_back(paths):
    entered = []

    with gate.session(paths, "new", limit=-1):
        entered.append(True)

    assert entered == [True]


def test_a_session_waits_while_a_compaction_runs_and_gives_up_after_its_limit(paths, capsys):
    with gate.compaction(paths, "web", limit=-1), pytest.raises(gate.GateClosed, match="still runs after"):
        with gate.session(paths, "web", limit=-1):
            pytest.fail("the session ran during the compaction")
    assert capsys.readouterr().err == WAITS


def test_a_session_that_gets_the_gate_after_a_compaction_announced_itself_steps_back(paths, announced, capsys):
    with pytest.raises(gate.GateClosed, match="the compaction of web still runs after -1s; try again later"):
        with gate.session(paths, "web", limit=-1):
            pytest.fail("the session ran although a compaction was announced")
    assert capsys.readouterr().err == WAITS


def test_a_compaction_waits_for_a_running_session_and_gives_up_after_its_limit(paths):
    with gate.session(paths, "web", limit=-1), pytest.raises(gate.GateClosed, match="sessions of web still run"):
        with gate.compaction(paths, "web", limit=-1):
            pytest.fail("the compaction ran during a session")
    assert not paths.compaction_marker("web").exists()  # new sessions are let in again


def test_a_second_compaction_of_the_same_client_is_refused_and_leaves_the_first_one_running(paths):
    with gate.compaction(paths, "web", limit=-1):
        with pytest.raises(gate.GateClosed, match="^a compaction of web is already running$"):
            with gate.compaction(paths, "web", limit=-1):
                pytest.fail("two compactions ran at once")

        assert paths.compaction_marker("web").exists()
        assert gate.compacting(paths, "web") is True


def test_a_compaction_runs_over_a_marker_left_by_a_killed_one_and_removes_it(paths, stale_marker):
    with gate.compaction(paths, "web", limit=-1):
        assert gate.compacting(paths, "web") is True

    assert not stale_marker.exists()


def test_a_compaction_of_one_client_does_not_hold_back_another(paths):
    entered = []

    with gate.compaction(paths, "web", limit=-1), gate.session(paths, "db", limit=-1):
        entered.append(True)

    assert entered == [True]


def test_after_a_compaction_the_gate_is_open_again(paths):
    with gate.compaction(paths, "web", limit=-1):
        pass
    with open(paths.gate_lock("web"), "rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody holds it
    assert not paths.compaction_marker("web").exists()


def test_prepare_makes_an_existing_gate_file_readable_by_the_borg_user(paths):
    paths.gate_lock("web").chmod(0o600)

    gate.prepare(paths, ["web"])

    assert paths.gate_lock("web").stat().st_mode & 0o777 == 0o644


def test_a_gate_file_that_cannot_be_opened_holds_the_session_back(paths):
    paths.gate_lock("web").unlink()
    paths.gate_lock("web").mkdir()  # opening it fails with something else than "not found"

    with pytest.raises(gate.GateClosed, match="cannot be opened"), gate.session(paths, "web", limit=-1):
        pytest.fail("the session ran without its gate")
