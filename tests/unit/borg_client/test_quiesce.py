"""Tests for stopping labelled containers: journalled first, always started again, never forgotten."""

import pytest

from borg_client import quiesce
from borg_client.failures import Failure


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


def test_under_swarm_labelled_services_are_scaled_to_0_journalled_and_scaled_back_to_their_replicas(
    tmp_path, docker_daemon
):
    journal = tmp_path / "journal.json"
    docker_daemon.swarm = "manager"
    docker_daemon.services.add("shop_web", replicas=2, container_labels={"backup.stop": ""})
    docker_daemon.services.add("shop_api", replicas=1, labels={"backup.stop": ""})
    docker_daemon.services.add("shop_cache", replicas=1)  # no label: left alone
    docker_daemon.running = {}

    with quiesce.stopped("backup.stop", journal) as names:
        assert names == ["shop_api", "shop_web"]
        assert quiesce.read_journal(journal) == [
            {"kind": "service", "id": "service-shop_api", "name": "shop_api", "replicas": 1},
            {"kind": "service", "id": "service-shop_web", "name": "shop_web", "replicas": 2},
        ]
        scaled = [event for event in docker_daemon.events if event.startswith("scale")]
        assert scaled == ["scale shop_api 0", "scale shop_web 0"]
        assert docker_daemon.events.count("tasks shop_web") == 3  # waited until its tasks had stopped

    assert [event for event in docker_daemon.events if event.startswith("scale")][2:] == [
        "scale shop_web 2",
        "scale shop_api 1",
    ]
    assert not journal.exists()


def test_a_swarm_task_is_never_stopped_its_service_is_scaled_instead(tmp_path, docker_daemon):
    docker_daemon.swarm = "manager"
    docker_daemon.services.add("shop_web", replicas=1, container_labels={"backup.stop": ""})
    docker_daemon.add_task("shop_web", "shop_web.1.abc")

    with quiesce.stopped("backup.stop", tmp_path / "journal.json") as names:
        assert names == ["app", "db", "shop_web"]

    assert "stop shop_web.1.abc" not in docker_daemon.events
    assert docker_daemon.events[:3] == ["stop app", "stop db", "scale shop_web 0"]


def test_a_service_with_the_label_but_no_replicas_and_the_sidecars_own_service_are_left_alone(
    tmp_path, docker_daemon, monkeypatch
):
    docker_daemon.swarm = "manager"
    docker_daemon.running = {}
    docker_daemon.services.add("idle", replicas=0, labels={"backup.stop": ""})
    docker_daemon.services.add("backup", replicas=1, labels={"backup.stop": ""})
    sidecar = docker_daemon.add_task("backup", "backup.1.xyz")
    monkeypatch.setattr(quiesce.swarm.container_exec.socket, "gethostname", lambda: sidecar.id)
    del docker_daemon.running["backup.1.xyz"]

    with quiesce.stopped("backup.stop", tmp_path / "journal.json") as names:
        assert names == []

    assert docker_daemon.events == []


def test_a_label_with_a_value_matches_only_that_value(tmp_path, docker_daemon):
    docker_daemon.swarm = "manager"
    docker_daemon.running = {}
    docker_daemon.services.add("a", replicas=1, labels={"backup.stop": "yes"})
    docker_daemon.services.add("b", replicas=1, labels={"backup.stop": "no"})

    with quiesce.stopped("backup.stop=yes", tmp_path / "journal.json") as names:
        assert names == ["a"]


def test_on_a_worker_node_labelled_tasks_fail_the_run_before_anything_stops(tmp_path, docker_daemon):
    journal = tmp_path / "journal.json"
    docker_daemon.swarm = "worker"
    docker_daemon.add_task("shop_web", "shop_web.1.abc")

    with pytest.raises(Failure) as refused, quiesce.stopped("backup.stop", journal):
        pytest.fail("the backup must not start")

    assert str(refused.value) == (
        "service(s) shop_web carry backup.stop, but only a swarm manager can scale services: run the sidecar on a "
        "manager node (deploy.placement.constraints: node.role == manager)"
    )
    assert refused.value.cause == "settings"
    assert docker_daemon.events == []
    assert not journal.exists()


def test_a_labelled_global_service_fails_the_run_before_anything_stops(tmp_path, docker_daemon):
    docker_daemon.swarm = "manager"
    docker_daemon.services.add("agent", replicas=None, labels={"backup.stop": ""})

    with pytest.raises(Failure, match="service agent carries backup.stop but runs in Global mode"):
        with quiesce.stopped("backup.stop", tmp_path / "journal.json"):
            pytest.fail("the backup must not start")

    assert docker_daemon.events == []


def test_recover_scales_back_a_service_a_killed_run_left_at_0(tmp_path, docker_daemon):
    journal = tmp_path / "journal.json"
    docker_daemon.swarm = "manager"
    docker_daemon.services.add("shop_web", replicas=0)
    entry = {"kind": "service", "id": "service-shop_web", "name": "shop_web", "replicas": 3}
    quiesce.write_journal(journal, [{"id": "id-app", "name": "app"}, entry])

    quiesce.recover(journal)

    assert docker_daemon.events == ["scale shop_web 3", "start app"]
    assert not journal.exists()


def test_a_service_that_cannot_be_scaled_back_stays_journalled_and_one_removed_meanwhile_is_dropped(
    tmp_path, docker_daemon
):
    journal = tmp_path / "journal.json"
    docker_daemon.services.add("stuck", replicas=0)
    docker_daemon.broken.add("stuck")
    stuck = {"kind": "service", "id": "service-stuck", "name": "stuck", "replicas": 1}
    gone = {"kind": "service", "id": "service-gone", "name": "gone", "replicas": 1}
    quiesce.write_journal(journal, [stuck, gone])

    quiesce.recover(journal)

    assert quiesce.read_journal(journal) == [stuck]
