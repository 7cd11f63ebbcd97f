"""Tests for the forced command: the borg serve argv each role gets, and the session's audit record."""

import json
from datetime import UTC, datetime

import pytest

from borg_server.paths import Paths
from borg_server.serve import append_record, committed_segment, serve_argv, session_record
from tests.unit.borg_server.test_segments import CHUNK, init_create_create_delete, put, write_repository

STARTED = datetime(2024, 5, 6, 3, 0, 0, tzinfo=UTC).timestamp()
FINGERPRINT = "SHA256:MAb/VODAa8tKOLwshsHjcTx7Be4UQ9nAMExtk8h9oz8"


@pytest.fixture
def paths(tmp_path):
    return Paths(repositories=tmp_path / "srv", state=tmp_path / "state", runtime=tmp_path / "run")


def test_an_append_key_serves_append_only_restricted_to_its_client_directory(paths):
    assert serve_argv("web", "append", None, paths) == [
        "borg",
        "serve",
        "--append-only",
        "--restrict-to-path",
        str(paths.repositories / "web"),
    ]


def test_an_append_key_serves_the_real_srv_borg_client_directory_by_default():
    assert serve_argv("web", "append", None, Paths()) == [
        "borg",
        "serve",
        "--append-only",
        "--restrict-to-path",
        "/srv/borg/web",
    ]


def test_a_full_key_serves_without_append_only(paths):
    assert serve_argv("db", "full", None, paths) == [
        "borg",
        "serve",
        "--restrict-to-path",
        str(paths.repositories / "db"),
    ]


def test_a_quota_confines_an_append_key_to_its_one_repository():
    assert serve_argv("web", "append", 5_000_000, Paths()) == [
        "borg",
        "serve",
        "--append-only",
        "--storage-quota",
        "5000000",
        "--restrict-to-repository",
        "/srv/borg/web/main",
    ]


def test_a_quota_confines_a_full_key_to_its_one_repository(paths):
    assert serve_argv("web", "full", 7, paths) == [
        "borg",
        "serve",
        "--storage-quota",
        "7",
        "--restrict-to-repository",
        str(paths.repositories / "web" / "main"),
    ]


def test_an_admin_key_with_a_quota_reaches_the_client_directory_without_quota_nor_append_only(paths):
    assert serve_argv("web", "admin", 5_000_000, paths) == [
        "borg",
        "serve",
        "--restrict-to-path",
        str(paths.repositories / "web"),
    ]


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


def test_committed_segment_is_the_last_commit_of_the_client_repository(paths):
    write_repository(paths.client_repository("web"), [*init_create_create_delete(), [put(CHUNK)]])

    assert committed_segment(paths, "web") == 13


def test_committed_segment_of_a_client_without_a_repository_is_none(paths):
    assert committed_segment(paths, "web") is None
