"""Tests for the run report: the exact JSON receivers read, finishing, the bounded log tail, pings."""

import dataclasses
from datetime import UTC, datetime, timedelta

from borg_client import report
from borg_client.report import RunReport

STARTED = datetime(2024, 5, 6, 3, 0, 0, 250000, tzinfo=UTC)


def test_a_report_ships_exactly_the_keys_of_the_contract_in_their_order():
    finished = RunReport(
        run_id="5f0c…",
        client="web",
        repository="ssh://borg@srv:22/./main",
        started_at=STARTED,
        status="success",
        message="borg finished without problems",
        archive="web-2024-05-06T03:00:00",
        finished_at=STARTED + timedelta(seconds=61, microseconds=500000),
        borg_rc=0,
        stats={"original_size": 10, "compressed_size": 7, "deduplicated_size": 5, "nfiles": 2},
        stopped_containers=("app",),
        log_tail=("A /backup/data/a",),
    )

    document = finished.to_dict()

    contract = "run_id client repository archive status started_at finished_at duration_s borg_rc stats"
    later = ["stopped_containers", "message", "log_tail", "attempt", "kind", "dumps", "coverage"]
    assert list(document) == [*contract.split(), *later]
    assert document == {
        "run_id": "5f0c…",
        "client": "web",
        "repository": "ssh://borg@srv:22/./main",
        "archive": "web-2024-05-06T03:00:00",
        "status": "success",
        "started_at": "2024-05-06T03:00:00+00:00",
        "finished_at": "2024-05-06T03:01:01+00:00",
        "duration_s": 61.5,
        "borg_rc": 0,
        "stats": {"original_size": 10, "compressed_size": 7, "deduplicated_size": 5, "nfiles": 2},
        "stopped_containers": ["app"],
        "message": "borg finished without problems",
        "log_tail": ["A /backup/data/a"],
        "attempt": 1,
        "kind": "backup",
        "dumps": [],
        "coverage": None,
    }


def test_a_started_report_is_a_failure_until_told_otherwise(config, clock):
    started = report.start(config)

    assert started.to_dict() | {"run_id": "-"} == {
        "run_id": "-",
        "client": "web",
        "repository": "ssh://borg@srv:22/./main",
        "archive": None,
        "status": "failure",
        "started_at": "2024-05-06T03:00:00+00:00",
        "finished_at": None,
        "duration_s": None,
        "borg_rc": None,
        "stats": {},
        "stopped_containers": [],
        "message": "",
        "log_tail": [],
        "attempt": 1,
        "kind": "backup",
        "dumps": [],
        "coverage": None,
    }


def test_every_started_report_has_its_own_run_id(config):
    assert report.start(config).run_id != report.start(config).run_id


def test_finishing_a_report_without_log_lines_shows_its_message_as_the_tail(config, clock):
    started = dataclasses.replace(report.start(config), status="skipped", message="the previous run is still going on")

    finished = report.finish(started)

    assert finished.finished_at == clock[1]
    assert finished.duration_s == 42.5
    assert finished.log_tail == ("the previous run is still going on",)


def test_finishing_a_success_keeps_its_empty_tail_and_a_failure_keeps_its_own(config, clock):
    success = dataclasses.replace(report.start(config), status="success", message="borg finished without problems")
    failure = dataclasses.replace(success, status="failure", message="m", log_tail=("ERROR: x",))

    assert report.finish(success).log_tail == ()
    assert report.finish(failure).log_tail == ("ERROR: x",)


def test_the_log_tail_is_the_last_20_lines_each_cut_at_500_characters():
    lines = [f"line {number}" for number in range(30)] + ["x" * 600]

    tail = report.bounded(lines)

    assert tail == (*[f"line {number}" for number in range(11, 30)], "x" * 500)


def test_a_ping_carries_the_last_10000_characters_to_the_configured_url(config, pings):
    config = dataclasses.replace(config, healthchecks_url="http://hc:8000/ping/abc/")

    report.ping(config, "/fail", "a" * 5 + "b" * 10000)

    assert pings == [("http://hc:8000/ping/abc/fail", "b" * 10000)]


def test_no_ping_without_a_healthchecks_url(config, pings):
    report.ping(config, "/start", "")

    assert pings == []
