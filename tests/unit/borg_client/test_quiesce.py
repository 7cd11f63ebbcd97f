"""Tests for stopping labelled containers: journalled first, always started again, never forgotten."""

import pytest

from borg_client import quiesce


def test_without_a_label_nothing_is_stopped_and_docker_is_not_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(quiesce, "docker_client", lambda: pytest.fail("no Docker without a label"))

    with quiesce.stopped(None, tmp_path / "journal.json") as names:
        assert names == []


def test_containers_are_journalled_stopped_and_started_again_in_reverse_order(tmp_path, docker_daemon):
    journal = tmp_path / "journal.json"

    with quiesce.stopped("backup.stop", journal) as names:
        assert names == ["app", "db"]
        assert quiesce.read_journal(journal) == [{"id": "id-app", "name": "app"}, {"id": "id-db", "name": "db"}]

    assert docker_daemon.events == ["stop app", "stop db", "start db", "start app"]
    assert not journal.exists()


def test_an_error_inside_still_starts_the_containers_again(tmp_path, docker_daemon):
    journal = tmp_path / "journal.json"

    with pytest.raises(OSError), quiesce.stopped("backup.stop", journal):
        raise OSError(28, "No space left on device")

    assert docker_daemon.events == ["stop app", "stop db", "start db", "start app"]
    assert not journal.exists()


def test_a_container_that_cannot_be_started_stays_journalled_and_the_next_run_tries_it_again(tmp_path, docker_daemon):
    journal = tmp_path / "journal.json"
    docker_daemon.broken.add("db")

    with quiesce.stopped("backup.stop", journal):
        pass
    assert quiesce.read_journal(journal) == [{"id": "id-db", "name": "db"}]

    del docker_daemon.running["db"]  # it is not running, so the next run does not list it
    docker_daemon.broken.clear()
    docker_daemon.events.clear()
    with quiesce.stopped("backup.stop", journal) as names:
        assert names == ["app"]
        assert quiesce.read_journal(journal) == [{"id": "id-db", "name": "db"}, {"id": "id-app", "name": "app"}]

    assert docker_daemon.events == ["stop app", "start app", "start db"]
    assert not journal.exists()


def test_a_journalled_container_removed_meanwhile_is_dropped_from_the_journal(tmp_path, docker_daemon):
    journal = tmp_path / "journal.json"
    quiesce.write_journal(journal, [{"id": "id-gone", "name": "gone"}, {"id": "id-app", "name": "app"}])

    assert quiesce.start_all(docker_daemon, journal, quiesce.read_journal(journal)) == []

    assert docker_daemon.events == ["start app"]
    assert not journal.exists()


def test_recover_starts_what_a_killed_run_left_journalled(tmp_path, docker_daemon):
    journal = tmp_path / "journal.json"
    quiesce.write_journal(journal, [{"id": "id-app", "name": "app"}, {"id": "id-db", "name": "db"}])

    quiesce.recover(journal)

    assert docker_daemon.events == ["start db", "start app"]
    assert not journal.exists()


def test_recover_without_a_journal_does_not_ask_docker(tmp_path, monkeypatch):
    monkeypatch.setattr(quiesce, "docker_client", lambda: pytest.fail("no Docker without a journal"))

    quiesce.recover(tmp_path / "journal.json")
