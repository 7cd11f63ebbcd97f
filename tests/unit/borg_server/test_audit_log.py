"""Tests for the audit log of SSH sessions: its records, appending, reading from a position, backups and reads."""

import json
import os
from datetime import UTC, datetime

import pytest

from borg_server.repository import audit_log
from borg_server.repository.audit_log import (
    append_record,
    last_write,
    may_have_compacted,
    read_sessions,
    session_record,
    wrote,
)

STARTED = datetime(2024, 5, 6, 3, 0, 0, tzinfo=UTC).timestamp()
FINGERPRINT = "SHA256:MAb/VODAa8tKOLwshsHjcTx7Be4UQ9nAMExtk8h9oz8"


def line(**record) -> bytes:
    """Return one audit log line as serve.append_record writes it."""
    return (json.dumps(record, sort_keys=True) + "\n").encode()


def backup(client: str, finished_at: str, role: str = "append", before: int | None = 13, after: int | None = 17):
    return {
        "client": client,
        "role": role,
        "exit_code": 0,
        "finished_at": finished_at,
        "committed_before": before,
        "committed_after": after,
    }


def test_a_missing_audit_log_has_no_records_and_position_zero(tmp_path):
    assert read_sessions(tmp_path / "sessions.jsonl") == ([], 0)
    assert read_sessions(tmp_path / "sessions.jsonl", 120) == ([], 0)


def test_lines_that_are_not_json_objects_are_skipped_but_read_past(tmp_path):
    log = tmp_path / "sessions.jsonl"
    log.write_bytes(
        b'{"client": "web", "exit_code": 0}\n'
        b"\n"
        b"not json at all\n"
        b"42\n"
        b"null\n"
        b'["web"]\n'
        b"\xff\xfe garbage\n"
        b'{"client": "db", "exit_code": 2}\n'
    )

    assert read_sessions(log) == (
        [{"client": "web", "exit_code": 0}, {"client": "db", "exit_code": 2}],
        log.stat().st_size,
    )


def test_reading_from_a_position_returns_only_the_records_after_it(tmp_path):
    log = tmp_path / "sessions.jsonl"
    first = line(client="web", exit_code=0)
    log.write_bytes(first + line(client="db", exit_code=1))

    assert read_sessions(log, len(first)) == ([{"client": "db", "exit_code": 1}], log.stat().st_size)


def test_reading_at_the_end_returns_nothing_and_keeps_the_position(tmp_path):
    log = tmp_path / "sessions.jsonl"
    log.write_bytes(line(client="web"))
    end = log.stat().st_size

    assert read_sessions(log, end) == ([], end)


def test_a_line_still_being_written_is_left_for_the_next_read(tmp_path):
    log = tmp_path / "sessions.jsonl"
    first = line(client="web", exit_code=0)
    log.write_bytes(first + b'{"client": "db", "exit')

    records, position = read_sessions(log)
    assert (records, position) == ([{"client": "web", "exit_code": 0}], len(first))

    with open(log, "ab") as file:
        file.write(b'_code": 0}\n')

    assert read_sessions(log, position) == ([{"client": "db", "exit_code": 0}], log.stat().st_size)


def test_a_log_without_a_complete_line_has_nothing_to_read_yet(tmp_path):
    log = tmp_path / "sessions.jsonl"
    log.write_bytes(b'{"client": "web"')

    assert read_sessions(log) == ([], 0)


def test_a_log_shorter_than_the_position_was_replaced_and_is_read_from_its_start(tmp_path):
    log = tmp_path / "sessions.jsonl"
    log.write_bytes(line(client="db"))

    assert read_sessions(log, 10_000) == ([{"client": "db"}], log.stat().st_size)


@pytest.mark.parametrize(
    ("record", "result"),
    [
        ({"role": "append", "exit_code": 0, "committed_before": 13, "committed_after": 17}, True),
        ({"role": "full", "exit_code": 0, "committed_before": 13, "committed_after": 17}, True),
        ({"role": "append", "exit_code": 0, "committed_before": None, "committed_after": 1}, True),
        ({"role": "append", "exit_code": 0, "committed_before": 13, "committed_after": 13}, False),
        ({"role": "append", "exit_code": 0, "committed_before": None, "committed_after": None}, False),
        ({"role": "append", "exit_code": 0, "committed_before": 13, "committed_after": None}, False),
        ({"role": "append", "exit_code": 2, "committed_before": 13, "committed_after": 17}, False),
        ({"role": "admin", "exit_code": 0, "committed_before": 13, "committed_after": 17}, False),
        ({"role": "append", "exit_code": 0}, True),
        ({"role": "full", "exit_code": 0}, True),
        ({"role": "append", "exit_code": 1}, False),
        ({"role": "admin", "exit_code": 0}, False),
        ({"event": "server-compact", "client": "web"}, False),
    ],
)
def test_a_session_wrote_when_a_client_key_succeeded_and_left_a_higher_commit(record, result):
    assert wrote(record) is result


def test_last_write_is_the_latest_backup_of_that_client():
    records = [
        backup("web", "2024-05-01T03:00:00+00:00"),
        backup("web", "2024-05-03T03:00:00+00:00", role="full"),
        backup("web", "2024-05-02T03:00:00+00:00"),
        backup("db", "2024-05-09T03:00:00+00:00"),
    ]

    assert last_write(records, "web") == "2024-05-03T03:00:00+00:00"


def test_last_write_ignores_reads_failures_and_admin_sessions():
    records = [
        backup("web", "2024-05-01T03:00:00+00:00"),
        backup("web", "2024-05-02T03:00:00+00:00", before=17, after=17),
        backup("web", "2024-05-03T03:00:00+00:00", role="admin"),
        backup("web", "2024-05-04T03:00:00+00:00") | {"exit_code": 2},
    ]

    assert last_write(records, "web") == "2024-05-01T03:00:00+00:00"


def test_last_write_of_a_client_that_never_backed_up_is_none():
    records = [backup("db", "2024-05-01T03:00:00+00:00"), backup("web", None)]

    assert last_write(records, "web") is None
    assert last_write([], "web") is None


@pytest.mark.parametrize(
    ("record", "result"),
    [
        ({"role": "admin", "committed_before": 13, "committed_after": 13}, False),
        ({"role": "admin", "committed_before": 13, "committed_after": 20}, True),
        ({"role": "admin", "committed_before": 13, "committed_after": None}, True),
        ({"role": "admin"}, True),
        ({"role": "append", "committed_before": 13, "committed_after": 20}, False),
    ],
)
def test_only_an_admin_session_that_left_another_commit_may_have_compacted(record, result):
    assert may_have_compacted(record) is result


def test_rotating_keeps_the_old_log_as_dot_1_and_starts_an_empty_one_for_the_borg_user(tmp_path):
    log = tmp_path / "sessions.jsonl"
    log.write_bytes(line(client="web", n=1))

    audit_log.rotate(log, os.getuid(), os.getgid())

    assert (tmp_path / "sessions.jsonl.1").read_bytes() == line(client="web", n=1)
    assert log.read_bytes() == b""
    assert log.stat().st_mode & 0o777 == 0o600


def test_rotating_shifts_the_older_logs_and_keeps_five(tmp_path):
    log = tmp_path / "sessions.jsonl"
    for n in range(1, 8):
        log.write_bytes(line(n=n))
        audit_log.rotate(log, os.getuid(), os.getgid())

    kept = {path.name: json.loads(path.read_text())["n"] for path in tmp_path.glob("sessions.jsonl.*")}
    assert kept == {f"sessions.jsonl.{k}": 8 - k for k in range(1, 6)}


def test_read_all_returns_the_rotated_records_oldest_first_then_the_current_ones(tmp_path):
    log = tmp_path / "sessions.jsonl"
    for n in (1, 2):
        log.write_bytes(line(n=n))
        audit_log.rotate(log, os.getuid(), os.getgid())
    log.write_bytes(line(n=3))

    assert [record["n"] for record in audit_log.read_all(log)] == [1, 2, 3]


# session_record and append_record


def test_session_record_describes_the_session():
    environ = {
        "SSH_CONNECTION": "192.0.2.7 51234 198.51.100.1 22",
        "SSH_ORIGINAL_COMMAND": "borg serve --umask=077",
        "HOME": "/home/borg",
    }

    record = session_record("web", "append", FINGERPRINT, STARTED, STARTED + 83.25, 1, environ)

    assert record == {
        "event": "borg-session",
        "client": "web",
        "role": "append",
        "fingerprint": FINGERPRINT,
        "source": "192.0.2.7",
        "requested": "borg serve --umask=077",
        "started_at": "2024-05-06T03:00:00+00:00",
        "finished_at": "2024-05-06T03:01:23+00:00",
        "duration_s": 83.25,
        "exit_code": 1,
        "committed_before": None,
        "committed_after": None,
    }


def test_session_record_keeps_the_committed_segment_before_and_after_the_session():
    record = session_record("web", "append", FINGERPRINT, STARTED, STARTED + 1, 0, {}, committed=(13, 17))

    assert (record["committed_before"], record["committed_after"]) == (13, 17)


def test_session_record_takes_an_ipv6_source_address_whole():
    environ = {"SSH_CONNECTION": "2001:db8::7 51234 2001:db8::1 22"}

    assert session_record("web", "full", FINGERPRINT, STARTED, STARTED, 0, environ)["source"] == "2001:db8::7"


def test_session_record_truncates_the_requested_command_to_200_characters():
    environ = {"SSH_ORIGINAL_COMMAND": "borg serve " + "x" * 500}

    record = session_record("web", "append", FINGERPRINT, STARTED, STARTED + 1, 0, environ)

    assert record["requested"] == ("borg serve " + "x" * 500)[:200]
    assert len(record["requested"]) == 200


def test_session_record_without_ssh_variables_has_empty_source_and_request():
    record = session_record("web", "admin", FINGERPRINT, STARTED, STARTED + 0.0004, 143, {})

    assert (record["source"], record["requested"], record["duration_s"], record["exit_code"]) == ("", "", 0.0, 143)


def test_append_record_appends_one_sorted_json_line_per_call(tmp_path):
    log = tmp_path / "sessions.jsonl"

    append_record(log, {"client": "web", "exit_code": 0})
    append_record(log, {"exit_code": 2, "client": "db"})

    assert log.read_text() == '{"client": "web", "exit_code": 0}\n{"client": "db", "exit_code": 2}\n'
    assert [json.loads(line)["client"] for line in log.read_text().splitlines()] == ["web", "db"]


def test_append_record_creates_the_log_readable_by_its_owner_only(tmp_path):
    log = tmp_path / "sessions.jsonl"

    append_record(log, {"client": "web"})

    assert log.stat().st_mode & 0o777 == 0o600


def test_append_record_swallows_a_log_in_a_missing_directory(tmp_path):
    log = tmp_path / "missing" / "sessions.jsonl"

    append_record(log, {"client": "web"})

    assert not log.parent.exists()


def test_append_record_swallows_a_log_that_is_a_directory(tmp_path):
    append_record(tmp_path, {"client": "web"})

    assert list(tmp_path.iterdir()) == []
