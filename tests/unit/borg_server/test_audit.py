"""Tests for `borg-server audit`: which session wrote a delete, the review of a client's findings, and the text."""

import json
import os
from datetime import UTC, datetime

import pytest

from borg_server import findings
from borg_server.audit import render, review, session_of
from borg_server.config import ClientSpec
from borg_server.paths import Paths
from tests.unit.borg_server.test_segments import ARCHIVE_ONE, ARCHIVE_TWO, commit, delete, init_create_create_delete
from tests.unit.borg_server.test_segments import write_repository as write_segments

WEB = ClientSpec("web", "WEB", None, None, None, True, 26 * 3600)
FINGERPRINT = "SHA256:MAb/VODAa8tKOLwshsHjcTx7Be4UQ9nAMExtk8h9oz8"
COMMITTED = datetime(2024, 5, 6, 3, 0, 10, tzinfo=UTC)


def session(client: str, started_at: str, finished_at: str, **fields) -> dict:
    record = {"event": "borg-session", "client": client, "role": "append", "fingerprint": FINGERPRINT}
    record |= {"source": "192.0.2.7", "started_at": started_at, "finished_at": finished_at, "exit_code": 0}
    return record | fields


@pytest.fixture
def paths(tmp_path):
    paths = Paths(repositories=tmp_path / "srv", state=tmp_path / "state", runtime=tmp_path / "run")
    paths.audit_log.parent.mkdir(parents=True)
    return paths


def write_repository(paths: Paths, segments: list[list[bytes]]):
    """Write the web client's repository (a borg config file and segments); return it."""
    repository = paths.client_repository("web")
    write_segments(repository, segments)
    (repository / "config").write_text("[repository]\nappend_only = 0\n")
    return repository


def committed_at(repository, number: int, moment: datetime) -> None:
    os.utime(repository / "data" / "0" / str(number), (moment.timestamp(), moment.timestamp()))


def write_audit_log(paths: Paths, *records: dict) -> None:
    paths.audit_log.write_text("".join(json.dumps(record) + "\n" for record in records))


def test_a_segment_is_attributed_to_the_client_session_running_when_it_was_committed():
    running = session("web", "2024-05-06T03:00:00+00:00", "2024-05-06T03:00:30+00:00", source="192.0.2.8")
    records = [
        session("web", "2024-05-06T02:00:00+00:00", "2024-05-06T02:00:30+00:00"),
        running,
        session("db", "2024-05-06T03:00:00+00:00", "2024-05-06T03:00:30+00:00"),
    ]

    assert session_of(records, "web", "2024-05-06T03:00:10+00:00") is running


def test_a_segment_committed_within_two_seconds_of_a_session_is_still_attributed_to_it():
    records = [session("web", "2024-05-06T03:00:00+00:00", "2024-05-06T03:00:30+00:00")]

    assert session_of(records, "web", "2024-05-06T02:59:58+00:00") is records[0]
    assert session_of(records, "web", "2024-05-06T03:00:32+00:00") is records[0]
    assert session_of(records, "web", "2024-05-06T02:59:57+00:00") is None
    assert session_of(records, "web", "2024-05-06T03:00:33+00:00") is None


def test_of_overlapping_sessions_the_latest_in_the_log_is_the_one_named():
    records = [
        session("web", "2024-05-06T03:00:00+00:00", "2024-05-06T03:10:00+00:00", role="admin"),
        session("web", "2024-05-06T03:01:00+00:00", "2024-05-06T03:02:00+00:00"),
    ]

    assert session_of(records, "web", "2024-05-06T03:01:30+00:00") is records[1]


def test_a_segment_without_a_time_or_without_a_session_of_its_client_is_attributed_to_nobody():
    records = [
        session("db", "2024-05-06T03:00:00+00:00", "2024-05-06T03:00:30+00:00"),
        {"event": "borg-session", "client": "web", "finished_at": "2024-05-06T03:00:30+00:00"},
    ]

    assert session_of(records, "web", None) is None
    assert session_of(records, "web", "2024-05-06T03:00:10+00:00") is None


def test_the_server_own_compaction_is_not_a_client_session():
    records = [
        session("web", "2024-05-06T02:00:00+00:00", "2024-05-06T02:00:30+00:00"),
        {
            "event": "server-compact",
            "client": "web",
            "started_at": "2024-05-06T03:00:00+00:00",
            "finished_at": "2024-05-06T03:00:30+00:00",
            "bytes_before": 100,
            "bytes_after": 50,
        },
    ]

    assert session_of(records, "web", "2024-05-06T03:00:10+00:00") is None


def test_review_lists_each_delete_with_the_session_that_wrote_it(paths):
    repository = write_repository(paths, init_create_create_delete())
    committed_at(repository, 10, COMMITTED)
    write_audit_log(paths, session("web", "2024-05-06T03:00:00+00:00", "2024-05-06T03:00:30+00:00"))

    result = review(WEB, paths, None)

    assert [{k: v for k, v in d.items() if k != "seen_at"} for d in result["deletes"]] == [
        {
            "segment": 10,
            "offset": 8,
            "key": ARCHIVE_ONE.hex(),
            "checkpoint": False,
            "committed_at": "2024-05-06T03:00:10+00:00",
            "session": {
                "role": "append",
                "fingerprint": FINGERPRINT,
                "source": "192.0.2.7",
                "started_at": "2024-05-06T03:00:00+00:00",
                "finished_at": "2024-05-06T03:00:30+00:00",
            },
        }
    ]
    assert {k: v for k, v in result.items() if k != "deletes"} == {
        "client": "web",
        "scanned_through": 13,
        "tampering": None,
        "acknowledged_now": None,
        "unacknowledged": 1,
        "history": [],
    }


def test_review_keeps_what_it_scanned_but_not_the_sessions_in_the_monitor_state(paths):
    write_repository(paths, init_create_create_delete())

    review(WEB, paths, None)

    state = findings.load(paths.monitor_state("web"))
    assert (state["scanned"], [d["segment"] for d in state["deletes"]]) == (13, [10])
    assert "session" not in state["deletes"][0]
    assert sorted(state["segments"], key=int) == [str(number) for number in range(14)]


def test_acknowledging_through_a_segment_leaves_later_deletes_unacknowledged(paths):
    write_repository(paths, [*init_create_create_delete(), [delete(ARCHIVE_TWO)], [commit()]])

    result = review(WEB, paths, 13)

    assert (result["acknowledged_now"], result["unacknowledged"]) == (1, 1)
    assert [d["segment"] for d in result["deletes"]] == [10, 14]
    assert [(entry["through"], entry["deletes"], entry["tampering"]) for entry in result["history"]] == [(13, 1, False)]
    assert [d["segment"] for d in findings.load(paths.monitor_state("web"))["deletes"]] == [14]


def test_acknowledging_segment_changes_takes_the_baseline_again(paths):
    repository = write_repository(paths, init_create_create_delete())
    review(WEB, paths, 13)
    (repository / "data" / "0" / "6").unlink()

    listed = review(WEB, paths, None)
    acknowledged = review(WEB, paths, 13)

    assert listed["tampering"]["removed"] == [6]
    assert acknowledged["tampering"]["removed"] == [6]
    state = findings.load(paths.monitor_state("web"))
    assert (state["tampering"], "6" in state["segments"]) == (None, False)
    assert state["acknowledged"][-1]["tampering"] is True
    assert review(WEB, paths, None)["tampering"] is None


def test_review_of_a_client_without_a_repository_finds_nothing(paths):
    result = review(WEB, paths, None)

    assert (result["deletes"], result["tampering"], result["scanned_through"]) == ([], None, None)


FOUND = {
    "client": "web",
    "scanned_through": 15,
    "deletes": [
        {
            "segment": 10,
            "offset": 8,
            "key": "01" * 32,
            "checkpoint": False,
            "committed_at": "2024-05-06T03:00:10+00:00",
            "seen_at": "2024-05-06T03:15:00+00:00",
            "session": {
                "role": "append",
                "fingerprint": FINGERPRINT,
                "source": "192.0.2.7",
                "started_at": "2024-05-06T03:00:00+00:00",
                "finished_at": "2024-05-06T03:00:30+00:00",
            },
        },
        {
            "segment": 14,
            "offset": 1234,
            "key": "02" * 32,
            "checkpoint": True,
            "committed_at": None,
            "seen_at": "2024-05-06T03:15:00+00:00",
            "session": None,
        },
    ],
    "tampering": None,
    "acknowledged_now": None,
    "unacknowledged": 2,
    "history": [],
}


def test_render_lists_the_deletes_and_the_exact_command_that_acknowledges_them():
    assert render(FOUND, as_json=False).splitlines() == [
        "client web: 2 delete(s) not acknowledged; compaction would apply them:",
        "   SEGMENT  COMMITTED                  OBJECTS  KIND        SESSION",
        f"        10  2024-05-06T03:00:10+00:00        1  delete      append key {FINGERPRINT} from 192.0.2.7",
        "        14  ?                                1  checkpoint  unknown",
        "  (checkpoint: borg's own clean-up of a checkpoint archive after a long backup; usually harmless; "
        "--json lists every object)",
        "If these are expected (your own prune with the admin key), accept them with:",
        "  borg-server audit web --acknowledge 15",
        "If not: do not compact; restore the archives as the README's rollback procedure says.",
    ]


def test_render_counts_the_deletes_of_one_segment_on_one_line():
    first = FOUND["deletes"][0]
    many = FOUND | {"deletes": [first, first | {"offset": 49, "key": "03" * 32}, first | {"offset": 90}]}

    assert render(many, as_json=False).splitlines()[2] == (
        f"        10  2024-05-06T03:00:10+00:00        3  delete      append key {FINGERPRINT} from 192.0.2.7"
    )


def test_render_describes_segment_changes_with_when_they_were_first_seen():
    tampering = {"changed": [2], "truncated": [6], "removed": [], "seen_at": "2024-05-06T01:00:00+00:00"}

    assert render(FOUND | {"deletes": [], "tampering": tampering}, as_json=False).splitlines() == [
        "client web: committed segments changed 2; truncated 6 since 2024-05-06T01:00:00+00:00; "
        "borg never rewrites them in an append-only repository.",
        "If these are expected (your own prune with the admin key), accept them with:",
        "  borg-server audit web --acknowledge 15",
        "If not: do not compact; restore the archives as the README's rollback procedure says.",
    ]


def test_render_of_nothing_found_names_the_segment_scanned_through():
    assert render(FOUND | {"deletes": [], "unacknowledged": 0}, as_json=False) == (
        "client web: no unacknowledged deletes or segment changes (scanned through segment 15)."
    )


def test_render_of_an_acknowledgement_says_what_was_accepted_and_what_remains():
    tampering = {"changed": [2], "truncated": [], "removed": [], "seen_at": "2024-05-06T01:00:00+00:00"}

    assert render(FOUND | {"acknowledged_now": 1, "unacknowledged": 1}, as_json=False) == (
        "client web: acknowledged 1 delete(s); 1 remain unacknowledged."
    )
    assert render(FOUND | {"acknowledged_now": 0, "unacknowledged": 0, "tampering": tampering}, as_json=False) == (
        "client web: acknowledged 0 delete(s) and the segment changes; 0 remain unacknowledged."
    )


def test_render_as_json_is_the_whole_result():
    assert json.loads(render(FOUND, as_json=True)) == FOUND
