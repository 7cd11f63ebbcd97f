"""Tests for the clients' figures: the monitor's findings, sessions it has not read yet, sizes measured now."""

import functools
import json
from datetime import UTC, datetime

from borg_server.config.reader import load
from borg_server.records import state_file
from borg_server.records.client_state import ClientState
from borg_server.repository import audit_log
from borg_server.status.facts import collect
from borg_server.system import disk_usage
from borg_server.system.paths import Paths
from tests.unit.borg_server.borg_files import init_create_create_delete, write_repository
from tests.unit.borg_server.sample_status import client_status

NOW = datetime(2024, 5, 6, 3, 0, 0, tzinfo=UTC)


def session(client: str, role: str, exit_code: int, finished_at: str, committed=(13, 17)) -> str:
    """Return one audit log line as audit_log.append_record writes it."""
    record = {"event": "borg-session", "client": client, "role": role, "exit_code": exit_code}
    record |= {"finished_at": finished_at, "committed_before": committed[0], "committed_after": committed[1]}
    return json.dumps(record, sort_keys=True) + "\n"


def save_state(paths: Paths, name: str, **fields) -> None:
    """Write the monitor's state of client name: a new state with fields changed."""
    new = state_file.to_json(ClientState(first_seen="2024-05-01T00:00:00+00:00"))
    paths.monitor_state(name).parent.mkdir(parents=True, exist_ok=True)
    paths.monitor_state(name).write_text(json.dumps(new | fields))


def deletes_in(segment: int, **kinds: int) -> dict:
    """Return the group of deletes the monitor records for one segment, counted by kind."""
    return {
        "segment": segment,
        "count": sum(kinds.values()),
        "kinds": kinds,
        "keys": [],
        "committed_at": None,
        "seen_at": "2024-05-06T00:00:00+00:00",
    }


def save_position(paths: Paths, audit_offset: int) -> None:
    paths.monitor.mkdir(parents=True, exist_ok=True)
    (paths.monitor / "monitor.json").write_text(json.dumps({"audit_offset": audit_offset, "last_scan": 1.0}))


status = functools.partial(client_status, auto_compact="admin", max_age_s=26 * 3600)


def config(**environ: str):
    return load({"BORG_CLIENTS": "web db"} | environ, "backup")


def test_directory_size_adds_up_the_files_below_a_directory_and_a_missing_one_is_empty(tmp_path):
    (tmp_path / "main" / "data" / "0").mkdir(parents=True)
    (tmp_path / "main" / "data" / "0" / "1").write_bytes(b"x" * 1500)
    (tmp_path / "nonce").write_bytes(b"y" * 16)

    assert disk_usage.directory_size(tmp_path) == 1516
    assert disk_usage.directory_size(tmp_path / "missing") == 0


def test_monitor_position_of_a_monitor_that_never_ran_or_left_garbage_is_empty(paths):
    assert audit_log.read_position(paths.monitor_position) == {}

    paths.monitor.mkdir(parents=True)
    (paths.monitor / "monitor.json").write_text("{not json")

    assert audit_log.read_position(paths.monitor_position) == {}


def test_collect_without_monitor_state_nor_audit_log_knows_nothing_yet(paths):
    assert collect(config(), paths, NOW) == [status("db"), status("web")]


def test_collect_takes_the_last_backup_from_the_monitor_state(paths):
    save_state(paths, "web", last_backup="2024-05-05T03:00:00+00:00")

    web = collect(config(), paths, NOW)[1]

    assert (web.client, web.last_backup, web.age_s) == ("web", "2024-05-05T03:00:00+00:00", 86400)


def test_collect_counts_backups_the_monitor_has_not_read_yet(paths):
    write_repository(paths.client_repository("web"), init_create_create_delete())
    read = session("web", "append", 0, "2024-05-05T02:00:00+00:00")
    paths.audit_log.write_text(read + session("web", "append", 0, "2024-05-06T02:00:00+00:00", committed=(1, 4)))
    save_position(paths, len(read))
    save_state(paths, "web", last_backup="2024-05-05T02:00:00+00:00")

    web = collect(config(), paths, NOW)[1]

    assert (web.last_backup, web.age_s) == ("2024-05-06T02:00:00+00:00", 3600)


def test_collect_does_not_count_an_unread_session_that_committed_only_the_manifest(paths):
    write_repository(paths.client_repository("web"), init_create_create_delete())
    paths.audit_log.write_text(session("web", "append", 0, "2024-05-06T02:00:00+00:00", committed=(9, 13)))
    save_state(paths, "web", last_backup="2024-05-05T02:00:00+00:00")

    assert collect(config(), paths, NOW)[1].last_backup == "2024-05-05T02:00:00+00:00"


def test_collect_does_not_read_again_the_sessions_before_the_monitor_position(paths):
    read = session("web", "append", 0, "2024-05-06T02:00:00+00:00")
    paths.audit_log.write_text(read)
    save_position(paths, len(read))

    assert collect(config(), paths, NOW)[1].last_backup is None


def test_collect_keeps_the_monitor_last_backup_when_the_unread_sessions_are_older_or_no_backups(paths):
    paths.audit_log.write_text(
        session("web", "append", 0, "2024-05-04T03:00:00+00:00")
        + session("web", "append", 0, "2024-05-06T01:00:00+00:00", committed=(17, 17))
        + session("web", "admin", 0, "2024-05-06T02:00:00+00:00")
        + session("web", "append", 2, "2024-05-06T02:30:00+00:00")
    )
    save_state(paths, "web", last_backup="2024-05-05T03:00:00+00:00")

    assert collect(config(), paths, NOW)[1].last_backup == "2024-05-05T03:00:00+00:00"


def test_collect_reports_every_client_in_name_order_with_its_findings(paths):
    paths.client_repository("web").mkdir(parents=True)
    (paths.client_repository("web") / "data").write_bytes(b"x" * 1500)
    (paths.client_directory("web") / "nonce").write_bytes(b"y" * 16)
    save_state(
        paths,
        "web",
        last_backup="2024-05-06T02:59:00+00:00",
        deletes=[deletes_in(10, delete=2, overwrite=1), deletes_in(14, checkpoint=1)],
        tampering={
            "changed": [2],
            "truncated": [],
            "removed": [6, 7],
            "config": True,
            "seen_at": "2024-05-06T00:00:00+00:00",
        },
        check={"at": "2024-05-05T00:00:00+00:00", "ok": False, "returncode": 1, "message": "ERROR: bad"},
        alerts={
            kind: {"since": "2024-05-05T00:00:00+00:00", "message": kind}
            for kind in ("tampering", "deletes", "check_failed")
        },
    )
    save_state(
        paths,
        "db",
        deletes=[deletes_in(3, delete=1)],
        tampering={
            "changed": [1],
            "truncated": [],
            "removed": [],
            "config": False,
            "seen_at": "2024-05-06T00:00:00+00:00",
        },
        check={"at": "2024-05-04T00:00:00+00:00", "ok": True, "returncode": 0, "message": "no problems found"},
    )

    statuses = collect(config(BORG_CLIENT_WEB_QUOTA="20M", BORG_CLIENT_DB_APPEND_ONLY="no"), paths, NOW)

    assert statuses == [
        status(
            "db",
            append_only=False,
            auto_compact=None,
            unacknowledged_deletes=None,
            tampered_segments=None,
            last_check_at="2024-05-04T00:00:00+00:00",
            last_check="ok",
        ),
        status(
            "web",
            last_backup="2024-05-06T02:59:00+00:00",
            age_s=60,
            repository_bytes=1516,
            quota_bytes=20_000_000,
            quota_used=0.0001,
            unacknowledged_deletes=4,
            tampered_segments=4,
            last_check_at="2024-05-05T00:00:00+00:00",
            last_check="failed",
            alerts=["check_failed", "deletes", "tampering"],
            alert_messages={"check_failed": "check_failed", "deletes": "deletes", "tampering": "tampering"},
        ),
    ]


def test_collect_counts_checkpoint_clean_ups_among_the_unacknowledged_deletes(paths):
    save_state(paths, "web", deletes=[deletes_in(6, checkpoint=1), deletes_in(10, checkpoint=2)])

    assert collect(config(), paths, NOW)[1].unacknowledged_deletes == 3


def test_collect_counts_an_unreadable_segment_as_one_tampered_segment(paths):
    save_state(paths, "web", tampering={"unreadable": "data/0/3: crc32 mismatch at offset 8", "seen_at": "x"})

    assert collect(config(), paths, NOW)[1].tampered_segments == 1
