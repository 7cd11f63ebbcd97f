"""Tests for the delete review (`borg-server audit`): who wrote a segment, the review of the findings, the text."""

import json
import os
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from borg_server.monitor.audit import AuditRefused, render, review, same_findings, sessions_of
from borg_server.records import state_file as client_state
from borg_server.records.client_state import Tampering
from borg_server.records.configuration import ClientSpec
from borg_server.repository import gate
from borg_server.system.paths import Paths
from tests.unit.borg_server.borg_files import (
    ARCHIVE_ONE,
    ARCHIVE_TWO,
    CHUNK,
    commit,
    delete,
    init_create_create_delete,
    put,
)
from tests.unit.borg_server.borg_files import write_repository as write_segments

WEB = ClientSpec("web", "WEB", None, None, None, True, 26 * 3600)
FINGERPRINT = "SHA256:MAb/VODAa8tKOLwshsHjcTx7Be4UQ9nAMExtk8h9oz8"
ADMIN_FINGERPRINT = "SHA256:4Xh3kOr0bQ2g6zv0h3q8ZlWcY0v3Ewq1K9RrM3i5b1c"
COMMITTED = datetime(2024, 5, 6, 3, 0, 10, tzinfo=UTC)


def session(client: str, started_at: str, finished_at: str, **fields) -> dict:
    """Return a session record as written before the committed segments were logged, with fields changed."""
    record = {"event": "borg-session", "client": client, "role": "append", "fingerprint": FINGERPRINT}
    record |= {"source": "192.0.2.7", "started_at": started_at, "finished_at": finished_at, "exit_code": 0}
    return record | fields


def logged(client: str, before: int | None, after: int | None, **fields) -> dict:
    """Return a session record that logged the committed segment before and after it."""
    times = {"started_at": "2024-05-06T03:00:00+00:00", "finished_at": "2024-05-06T03:00:30+00:00"}
    return session(client, **times, committed_before=before, committed_after=after) | fields


def shown(record: dict) -> dict:
    """Return what the review shows of a session."""
    return {key: record[key] for key in ("role", "fingerprint", "source", "started_at", "finished_at")}


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


# sessions_of


def test_a_segment_is_attributed_to_the_sessions_whose_committed_range_holds_it():
    backup = logged("web", 9, 13)
    records = [logged("web", 5, 9), backup, logged("web", 13, 17), logged("db", 9, 13)]

    assert sessions_of(records, "web", 10, None) == [backup]
    assert sessions_of(records, "web", 13, None) == [backup]
    assert sessions_of(records, "web", 9, None) == [records[0]]
    assert sessions_of(records, "web", 18, None) == []


def test_a_session_on_a_repository_without_a_commit_before_it_covers_every_segment_up_to_its_own():
    first = logged("web", None, 3)

    assert sessions_of([first], "web", 0, None) == [first]
    assert sessions_of([first], "web", 3, None) == [first]
    assert sessions_of([first], "web", 4, None) == []


def test_a_session_range_is_used_even_when_the_segment_time_falls_in_another_session():
    by_range = logged("web", 9, 13, started_at="2024-05-06T01:00:00+00:00", finished_at="2024-05-06T01:00:30+00:00")
    by_time = logged("web", 13, 13)

    assert sessions_of([by_range, by_time], "web", 10, "2024-05-06T03:00:10+00:00") == [by_range]


def test_after_a_rollback_every_session_that_wrote_a_segment_number_is_named():
    before_rollback, after_rollback = logged("web", 9, 13), logged("web", 9, 11, source="192.0.2.99")

    assert sessions_of([before_rollback, after_rollback], "web", 10, None) == [before_rollback, after_rollback]


def test_a_session_that_left_no_committed_segment_is_never_named():
    records = [logged("web", None, None), logged("web", 9, None)]

    assert sessions_of(records, "web", 10, "2024-05-06T03:00:10+00:00") == []


def test_a_segment_is_attributed_by_time_to_older_sessions_that_did_not_log_their_segments():
    running = session("web", "2024-05-06T03:00:00+00:00", "2024-05-06T03:00:30+00:00", source="192.0.2.8")
    records = [
        session("web", "2024-05-06T02:00:00+00:00", "2024-05-06T02:00:30+00:00"),
        running,
        session("db", "2024-05-06T03:00:00+00:00", "2024-05-06T03:00:30+00:00"),
    ]

    assert sessions_of(records, "web", 10, "2024-05-06T03:00:10+00:00") == [running]


def test_a_segment_committed_within_two_seconds_of_an_older_session_is_still_attributed_to_it():
    records = [session("web", "2024-05-06T03:00:00+00:00", "2024-05-06T03:00:30+00:00")]

    assert sessions_of(records, "web", 10, "2024-05-06T02:59:58+00:00") == records
    assert sessions_of(records, "web", 10, "2024-05-06T03:00:32+00:00") == records
    assert sessions_of(records, "web", 10, "2024-05-06T02:59:57+00:00") == []
    assert sessions_of(records, "web", 10, "2024-05-06T03:00:33+00:00") == []


def test_every_older_session_running_when_the_segment_was_committed_is_named_in_log_order():
    records = [
        session("web", "2024-05-06T03:00:00+00:00", "2024-05-06T03:10:00+00:00", role="admin"),
        session("web", "2024-05-06T03:01:00+00:00", "2024-05-06T03:02:00+00:00"),
    ]

    assert sessions_of(records, "web", 10, "2024-05-06T03:01:30+00:00") == records


def test_a_segment_without_a_time_or_without_a_session_of_its_client_is_attributed_to_nobody():
    records = [
        session("db", "2024-05-06T03:00:00+00:00", "2024-05-06T03:00:30+00:00"),
        {"event": "borg-session", "client": "web", "finished_at": "2024-05-06T03:00:30+00:00"},
    ]

    assert sessions_of(records, "web", 10, None) == []
    assert sessions_of(records, "web", 10, "2024-05-06T03:00:10+00:00") == []


def test_the_server_own_compaction_is_not_a_client_session():
    records = [
        session("web", "2024-05-06T02:00:00+00:00", "2024-05-06T02:00:30+00:00"),
        {
            "event": "server-compact",
            "client": "web",
            "started_at": "2024-05-06T03:00:00+00:00",
            "finished_at": "2024-05-06T03:00:30+00:00",
            "committed_before": 9,
            "committed_after": 13,
        },
    ]

    assert sessions_of(records, "web", 10, "2024-05-06T03:00:10+00:00") == []


# same_findings


def test_tamper_findings_are_the_same_when_only_their_first_sighting_differs():
    first = Tampering(changed=(2,), truncated=(), removed=(), config=False, seen_at="2024-05-06T01:00:00+00:00")

    assert same_findings(first, replace(first, seen_at="2024-05-07T01:00:00+00:00")) is True
    assert same_findings(None, None) is True
    assert same_findings(first, replace(first, removed=(6,))) is False
    assert same_findings(first, replace(first, unreadable="data/0/6: bad magic")) is False
    assert same_findings(None, first) is False
    assert same_findings(first, None) is False


# review


def test_review_lists_the_deletes_of_each_segment_with_the_sessions_that_wrote_it(paths):
    repository = write_repository(paths, init_create_create_delete())
    committed_at(repository, 10, COMMITTED)
    deleting = logged("web", 9, 13, role="admin", fingerprint=ADMIN_FINGERPRINT)
    write_audit_log(paths, logged("web", 5, 9), deleting, logged("db", 9, 13))

    result = review(WEB, paths, None)

    assert [{k: v for k, v in group.items() if k != "seen_at"} for group in result["deletes"]] == [
        {
            "segment": 10,
            "count": 1,
            "kinds": {"delete": 1},
            "keys": [ARCHIVE_ONE.hex()],
            "committed_at": "2024-05-06T03:00:10+00:00",
            "archives": 1,
            "newest": False,
            "sessions": [shown(deleting)],
        }
    ]
    assert {k: v for k, v in result.items() if k != "deletes"} == {
        "client": "web",
        "scanned_through": 13,
        "tampering": None,
        "manifest_shrinks": [],
        "acknowledged_now": None,
        "tampering_acknowledged": False,
        "unacknowledged": 1,
        "history": [],
    }


def test_review_falls_back_to_the_commit_time_for_sessions_logged_without_segments(paths):
    repository = write_repository(paths, init_create_create_delete())
    committed_at(repository, 10, COMMITTED)
    write_audit_log(paths, session("web", "2024-05-06T03:00:00+00:00", "2024-05-06T03:00:30+00:00"))

    result = review(WEB, paths, None)

    assert result["deletes"][0]["sessions"] == [
        {
            "role": "append",
            "fingerprint": FINGERPRINT,
            "source": "192.0.2.7",
            "started_at": "2024-05-06T03:00:00+00:00",
            "finished_at": "2024-05-06T03:00:30+00:00",
        }
    ]


def test_review_keeps_what_it_scanned_but_not_the_sessions_in_the_monitor_state(paths):
    write_repository(paths, init_create_create_delete())
    write_audit_log(paths, logged("web", 9, 13))

    review(WEB, paths, None)

    state = client_state.load(paths.monitor_state("web"))
    assert (state.scanned, [group.segment for group in state.deletes]) == (13, [10])
    assert "sessions" not in json.loads(paths.monitor_state("web").read_text())["deletes"][0]
    assert sorted(state.segments) == list(range(14))


def test_acknowledging_through_a_segment_leaves_later_deletes_unacknowledged(paths):
    write_repository(paths, [*init_create_create_delete(), [delete(ARCHIVE_TWO)], [commit()]])

    result = review(WEB, paths, 13)

    assert (result["acknowledged_now"], result["unacknowledged"]) == (1, 1)
    assert [group["segment"] for group in result["deletes"]] == [10, 14]
    assert [(entry["through"], entry["deletes"], entry["tampering"]) for entry in result["history"]] == [(13, 1, False)]
    assert [group.segment for group in client_state.load(paths.monitor_state("web")).deletes] == [14]


def test_acknowledging_counts_every_object_of_the_segments_acknowledged(paths):
    write_repository(
        paths, [*init_create_create_delete(), [delete(ARCHIVE_TWO), delete(CHUNK), put(CHUNK, b"x")], [commit()]]
    )

    result = review(WEB, paths, 15)

    assert (result["acknowledged_now"], result["unacknowledged"]) == (3, 0)
    assert [(group["segment"], group["kinds"]) for group in result["deletes"]] == [
        (10, {"delete": 1}),
        (14, {"delete": 1, "overwrite": 1}),
    ]


def test_acknowledging_beyond_the_scanned_segments_is_refused_and_changes_nothing(paths):
    write_repository(paths, init_create_create_delete())
    review(WEB, paths, None)
    saved = paths.monitor_state("web").read_text()

    with pytest.raises(AuditRefused) as refused:
        review(WEB, paths, 14)

    assert str(refused.value) == (
        "segment 14 lies beyond what was scanned (13); run borg-server audit web and use the segment it prints"
    )
    assert paths.monitor_state("web").read_text() == saved


def test_acknowledging_with_nothing_scanned_is_refused(paths):
    with pytest.raises(AuditRefused, match=r"^segment 0 lies beyond what was scanned \(None\); "):
        review(WEB, paths, 0)

    assert not paths.monitor_state("web").exists()


def test_acknowledging_segment_changes_listed_before_takes_the_baseline_again(paths):
    repository = write_repository(paths, init_create_create_delete())
    review(WEB, paths, 13)
    (repository / "data" / "0" / "6").unlink()

    listed = review(WEB, paths, None)
    acknowledged = review(WEB, paths, 13)

    assert listed["tampering"]["removed"] == [6]
    assert (acknowledged["tampering"]["removed"], acknowledged["tampering_acknowledged"]) == ([6], True)
    state = client_state.load(paths.monitor_state("web"))
    assert (state.tampering, 6 in state.segments) == (None, False)
    assert [(entry.through, entry.deletes, entry.tampering) for entry in state.acknowledged] == [
        (13, 1, False),
        (13, 0, True),
    ]
    assert review(WEB, paths, None)["tampering"] is None


def test_segment_changes_found_only_by_the_acknowledging_audit_are_not_acknowledged(paths):
    repository = write_repository(paths, init_create_create_delete())
    review(WEB, paths, None)
    (repository / "data" / "0" / "6").unlink()

    result = review(WEB, paths, 13)

    assert (result["acknowledged_now"], result["tampering_acknowledged"]) == (1, False)
    assert result["tampering"]["removed"] == [6]
    state = client_state.load(paths.monitor_state("web"))
    assert (state.tampering.removed, state.deletes) == ((6,), [])
    assert [entry.tampering for entry in state.acknowledged] == [False]

    assert review(WEB, paths, 13)["tampering_acknowledged"] is True


def test_segment_changes_that_grew_since_they_were_listed_are_not_acknowledged(paths):
    repository = write_repository(paths, init_create_create_delete())
    review(WEB, paths, 13)
    (repository / "data" / "0" / "6").unlink()
    review(WEB, paths, None)
    (repository / "data" / "0" / "2").unlink()

    result = review(WEB, paths, 13)

    assert (result["tampering"]["removed"], result["tampering_acknowledged"]) == ([2, 6], False)
    assert client_state.load(paths.monitor_state("web")).tampering.removed == (2, 6)


def test_a_changed_config_listed_before_is_acknowledged_and_becomes_the_reference(paths):
    repository = write_repository(paths, init_create_create_delete())
    review(WEB, paths, 13)
    (repository / "config").write_text("[repository]\nappend_only = 1\n")

    assert review(WEB, paths, None)["tampering"]["config"] is True
    assert review(WEB, paths, 13)["tampering_acknowledged"] is True
    assert review(WEB, paths, None)["tampering"] is None


def test_review_of_a_client_without_a_repository_finds_nothing(paths):
    result = review(WEB, paths, None)

    assert (result["deletes"], result["tampering"], result["scanned_through"]) == ([], None, None)


# render

APPEND_SESSION = {
    "role": "append",
    "fingerprint": FINGERPRINT,
    "source": "192.0.2.7",
    "started_at": "2024-05-06T03:00:00+00:00",
    "finished_at": "2024-05-06T03:00:30+00:00",
}
ADMIN_SESSION = APPEND_SESSION | {"role": "admin", "fingerprint": ADMIN_FINGERPRINT, "source": "198.51.100.4"}
FOUND = {
    "client": "web",
    "scanned_through": 15,
    "deletes": [
        {
            "segment": 10,
            "count": 3,
            "kinds": {"overwrite": 1, "delete": 2},
            "keys": ["01" * 32, "02" * 32, "03" * 32],
            "committed_at": "2024-05-06T03:00:10+00:00",
            "seen_at": "2024-05-06T03:15:00+00:00",
            "sessions": [APPEND_SESSION, ADMIN_SESSION],
        },
        {
            "segment": 14,
            "count": 1,
            "kinds": {"checkpoint": 1},
            "keys": ["04" * 32],
            "committed_at": None,
            "seen_at": "2024-05-06T03:15:00+00:00",
            "sessions": [],
        },
    ],
    "tampering": None,
    "acknowledged_now": None,
    "tampering_acknowledged": False,
    "unacknowledged": 4,
    "history": [],
}
TAMPERING = {"changed": [2], "truncated": [6], "removed": [], "config": False, "seen_at": "2024-05-06T01:00:00+00:00"}
HOW_TO_ACKNOWLEDGE = [
    "If these are expected (your own prune with the admin key), accept them with:",
    "  borg-server audit web --acknowledge 15",
    "If not: do not compact; roll back as docs/how-to/roll-back-a-compromised-client.md says.",
]


def test_render_lists_one_line_per_segment_with_its_kinds_and_sessions_and_the_command_that_acknowledges():
    assert render(FOUND, as_json=False).splitlines() == [
        "client web: 4 delete(s) not acknowledged; compaction would apply them:",
        "   SEGMENT  COMMITTED                  OBJECTS  KIND                    SESSION",
        "        10  2024-05-06T03:00:10+00:00        3  2 delete, 1 overwrite   "
        f"append key {FINGERPRINT} from 192.0.2.7; admin key {ADMIN_FINGERPRINT} from 198.51.100.4",
        "        14  ?                                1  1 checkpoint            unknown",
        "  delete: an archive or chunk deleted; overwrite: a stored object replaced (normal backups never do"
        " this); checkpoint: borg's clean-up after a long backup's checkpoint; rename: the old object of a renamed"
        " archive (the sidecar renames a failed dump's archive to a checkpoint). --json lists object ids.",
        *HOW_TO_ACKNOWLEDGE,
    ]


def test_render_describes_changes_to_committed_files_with_when_they_were_first_seen():
    assert render(FOUND | {"deletes": [], "tampering": TAMPERING}, as_json=False).splitlines() == [
        "client web: segments changed 2; segments truncated 6, first seen 2024-05-06T01:00:00+00:00; "
        "borg never rewrites committed files of an append-only repository.",
        *HOW_TO_ACKNOWLEDGE,
    ]


def test_render_of_a_repository_never_scanned_offers_segment_zero():
    tampering = {"unreadable": "data/0/1: bad magic, not a borg segment file", "seen_at": "2024-05-06T01:00:00+00:00"}
    never_scanned = FOUND | {"deletes": [], "tampering": tampering, "scanned_through": None}

    assert render(never_scanned, as_json=False).splitlines()[2] == "  borg-server audit web --acknowledge 0"


def test_render_of_nothing_found_names_the_segment_scanned_through():
    assert render(FOUND | {"deletes": [], "unacknowledged": 0}, as_json=False) == (
        "client web: no unacknowledged deletes or changes (scanned through segment 15)."
    )


def test_render_of_an_acknowledgement_says_what_was_accepted_and_what_remains():
    assert render(FOUND | {"acknowledged_now": 3, "unacknowledged": 1}, as_json=False) == (
        "client web: acknowledged 3 delete(s); 1 delete(s) remain unacknowledged."
    )


def test_render_of_an_acknowledgement_of_changes_to_committed_files_says_so():
    accepted = FOUND | {"acknowledged_now": 0, "unacknowledged": 0, "tampering": TAMPERING}

    assert render(accepted | {"tampering_acknowledged": True}, as_json=False) == (
        "client web: acknowledged 0 delete(s) and the changes to committed files; 0 delete(s) remain unacknowledged."
    )
    assert render(accepted, as_json=False) == (
        "client web: acknowledged 0 delete(s); the changes to committed files were found only now: review them, "
        "then acknowledge again; 0 delete(s) remain unacknowledged."
    )


def test_render_as_json_is_the_whole_result():
    assert json.loads(render(FOUND, as_json=True)) == FOUND


def test_review_is_refused_while_a_compaction_of_the_client_runs(paths):
    write_repository(paths, init_create_create_delete())
    gate.prepare(paths, ["web"])

    with gate.compaction(paths, "web", limit=-1), pytest.raises(AuditRefused, match="a compaction of this client"):
        review(WEB, paths, None)
