"""Tests for the monitor: watching a repository, scanning a client into alerts, whole scans and repository checks.

Repositories are segment files written byte by byte like borg 1.4.0 (see test_segments); borg itself is
never run: `borg_common.process.run` is replaced where a check would start it.
"""

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from borg_common import outbox
from borg_common.process import Result
from borg_server.config.reader import load
from borg_server.monitor import loop
from borg_server.records import state_file
from borg_server.records.client_state import ClientState
from borg_server.repository import deletes, gate
from borg_server.system import accounts, commands
from borg_server.system.paths import Paths
from tests.unit.borg_server.borg_files import (
    ARCHIVE_TWO,
    CHUNK,
    commit,
    delete,
    init_create_create_delete,
    manifest_rewrite,
    put,
)
from tests.unit.borg_server.borg_files import write_repository as write_segments

NOW = "2024-05-06T03:00:00+00:00"
LONG_AGO = "2024-01-01T00:00:00+00:00"


def server(clients: str = "web", **environ: str):
    return load({"BORG_CLIENTS": clients, "BORG_SERVER_NAME": "backup.example.org"} | environ, "backup")


def client(name: str = "web", **environ: str):
    """Return the configured client name (settings as BORG_CLIENT_<NAME>_* variables)."""
    return next(spec for spec in server(name, **environ).clients if spec.name == name)


def write_repository(paths: Paths, segments: list[list[bytes]], name: str = "web"):
    """Write a client's repository (a borg config file and segments); return it."""
    repository = paths.client_repository(name)
    write_segments(repository, segments)
    (repository / "config").write_text("[repository]\n")
    return repository


def save_state(paths: Paths, name: str = "web", **fields) -> None:
    """Write the monitor's state of client name as a state file holds it: a new state with fields changed."""
    new = state_file.to_json(ClientState(first_seen=LONG_AGO))
    paths.monitor_state(name).parent.mkdir(parents=True, exist_ok=True)
    paths.monitor_state(name).write_text(json.dumps(new | fields))


def session(client: str, role: str, finished_at: str, committed=(13, 17), exit_code: int = 0) -> dict:
    return {
        "event": "borg-session",
        "client": client,
        "role": role,
        "started_at": finished_at,
        "finished_at": finished_at,
        "exit_code": exit_code,
        "committed_before": committed[0],
        "committed_after": committed[1],
    }


def write_audit_log(paths: Paths, *records: dict) -> None:
    with open(paths.audit_log, "a") as log:
        log.write("".join(json.dumps(record) + "\n" for record in records))


def recent() -> str:
    return (datetime.now(UTC) - timedelta(minutes=5)).isoformat(timespec="seconds")


# scan_client


def test_a_delete_by_the_append_only_key_raises_one_client_deletes_alert_naming_the_key(paths, capsys):
    write_repository(paths, init_create_create_delete())
    write_audit_log(paths, session("web", "append", recent(), (9, 13)) | {"fingerprint": "SHA256:webkey"})

    documents = loop.scan_client(client(), server(), paths, [])

    assert [(d["alert"], d["state"], d["client"], d["server"]) for d in documents] == [
        ("client_deletes", "raised", "web", "backup.example.org")
    ]
    assert documents[0]["message"] == (
        "client web: 1 object(s) deleted in segments 10..10 by the client's own append-only key SHA256:webkey, not by "
        "the admin key: the client's own key only ever adds backups, so the client may be compromised. Nothing is "
        "lost yet (append-only: the data stays until a compaction, and nothing compacts by itself). Next: see what "
        "was deleted with borg-server audit web; if nobody meant to, roll back as "
        "docs/how-to/roll-back-a-compromised-client.md says and replace the client's key; if someone did, "
        "acknowledge it as the audit says"
    )
    assert documents[0]["details"] == {
        "count": 1, "overwrites": 0, "first_segment": 10, "last_segment": 10, "keys": ["SHA256:webkey"]
    }  # fmt: skip
    found = state_file.load(paths.monitor_state("web"))
    assert (list(found.alerts), [d.segment for d in found.deletes]) == (["client_deletes"], [10])
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == documents


def test_a_delete_by_the_admin_key_raises_the_deletes_alert_naming_the_admin_key(paths):
    write_repository(paths, init_create_create_delete())
    write_audit_log(paths, session("web", "admin", recent(), (9, 13)) | {"fingerprint": "SHA256:adminkey"})

    documents = loop.scan_client(client(), server(), paths, [])

    assert [(d["alert"], d["message"]) for d in documents] == [
        (
            "deletes",
            "client web: 1 object(s) deleted in segments 10..10 by the admin key SHA256:adminkey (a prune); "
            "see borg-server audit web before any compaction",
        )
    ]


def test_the_admin_key_deleting_every_archive_holds_the_automatic_compaction_for_a_person_in_the_same_scan(paths):
    write_repository(paths, [*init_create_create_delete(), [delete(ARCHIVE_TWO)], *manifest_rewrite()])
    write_audit_log(paths, session("web", "admin", recent(), (9, 16)) | {"fingerprint": "SHA256:adminkey"})

    documents = loop.scan_client(client(), server(), paths, [])

    assert [d["alert"] for d in documents] == ["deletes", "compaction_held"]
    assert documents[1]["message"] == (
        "client web: the automatic compaction waits for a person: the admin key's 2 delete(s) in segments 10..14 "
        "take every archive (2), which a normal retention policy never does; nothing compacts until a person "
        "decides. If you ran them, approve them with borg-server audit web (it prints the --acknowledge command; "
        "they compact COMPACT_DELAY later). If not, the admin key may be stolen: do not compact, roll back as "
        "docs/how-to/roll-back-a-compromised-client.md says and replace the admin key"
    )
    retention = state_file.load(paths.monitor_state("web")).retention
    assert (retention.held, retention.pending_admin, retention.next_at) == (True, 2, None)


def test_a_prune_seen_before_its_session_ended_waits_for_its_record_instead_of_paging_as_the_client(paths):
    repository = write_repository(paths, init_create_create_delete())
    (repository / "lock.exclusive").mkdir()  # the admin's prune still runs: its record comes when it ends

    assert loop.scan_client(client(), server(), paths, []) == []

    (repository / "lock.exclusive").rmdir()
    write_audit_log(paths, session("web", "admin", recent(), (9, 13)) | {"fingerprint": "SHA256:adminkey"})
    assert [d["alert"] for d in loop.scan_client(client(), server(), paths, [])] == ["deletes"]


def test_a_failed_dump_renamed_to_a_checkpoint_raises_no_alert(paths):
    renamed = bytes([0x44]) * 32
    write_repository(paths, [*init_create_create_delete(), [put(renamed), delete(ARCHIVE_TWO)], *manifest_rewrite()])
    write_audit_log(paths, session("web", "append", recent(), (13, 16)) | {"fingerprint": "SHA256:webkey"})
    with state_file.locked(paths.monitor_state("web")) as found:
        found.scanned = 13  # the delete of segment 10 was seen and acknowledged before

    assert loop.scan_client(client(), server(), paths, []) == []
    found = state_file.load(paths.monitor_state("web"))
    assert [(group.segment, group.kinds, group.archives) for group in found.deletes] == [(14, {"rename": 1}, 0)]


def test_an_overwritten_chunk_raises_a_deletes_alert_that_says_so(paths):
    write_repository(paths, [*init_create_create_delete(), [delete(CHUNK), put(CHUNK, b"garbage")], [commit()]])

    documents = loop.scan_client(client(), server(), paths, [])

    assert [(d["alert"], d["details"]) for d in documents] == [
        ("client_deletes", {"count": 2, "overwrites": 1, "first_segment": 10, "last_segment": 14, "keys": []})
    ]
    assert documents[0]["message"].startswith(
        "client web: 2 object(s) deleted in segments 10..14 (1 of them overwrites of stored objects) "
        "by a session the audit log does not name, not by the admin key"
    )


def test_scan_client_with_report_urls_stores_its_alerts_in_the_outbox(paths):
    write_repository(paths, init_create_create_delete())

    documents = loop.scan_client(client(), server(REPORT_URLS="https://hooks.example.org/borg"), paths, [])

    assert [(entry.document, entry.pending) for entry in outbox.entries(paths.monitor_outbox)] == [
        (documents[0], ("https://hooks.example.org/borg",))
    ]


def test_an_alert_that_could_not_be_stored_is_sent_again_by_the_next_scan(paths, monkeypatch):
    write_repository(paths, init_create_create_delete())

    def full_disk(*_arguments):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(loop.alerts.outbox, "put", full_disk)
    with pytest.raises(OSError, match="No space left on device"):
        loop.scan_client(client(), server(REPORT_URLS="https://hooks.example.org/borg"), paths, [])
    monkeypatch.undo()

    documents = loop.scan_client(client(), server(REPORT_URLS="https://hooks.example.org/borg"), paths, [])

    assert [(d["alert"], d["state"]) for d in documents] == [("client_deletes", "raised")]
    assert len(outbox.entries(paths.monitor_outbox)) == 1


def test_an_alert_that_still_holds_is_not_raised_again_by_the_next_scan(paths):
    write_repository(paths, init_create_create_delete())
    loop.scan_client(client(), server(), paths, [])

    assert loop.scan_client(client(), server(), paths, []) == []


def test_acknowledged_deletes_clear_the_alert_at_the_next_scan(paths):
    write_repository(paths, init_create_create_delete())
    loop.scan_client(client(), server(), paths, [])
    with state_file.locked(paths.monitor_state("web")) as found:
        deletes.acknowledge(found, 13, False, NOW)

    documents = loop.scan_client(client(), server(), paths, [])

    assert [(d["alert"], d["state"], d["message"]) for d in documents] == [
        ("client_deletes", "cleared", "client web: cleared: deletes by the client's own key")
    ]


def test_deletes_of_a_client_allowed_to_delete_are_not_watched(paths):
    write_repository(paths, init_create_create_delete())

    documents = loop.scan_client(client(BORG_CLIENT_WEB_APPEND_ONLY="no"), server(), paths, [])

    assert documents == []
    found = state_file.load(paths.monitor_state("web"))
    assert (found.deletes, found.segments, found.scanned) == ([], {}, None)


def test_a_repository_the_server_is_compacting_is_left_alone(paths):
    write_repository(paths, init_create_create_delete())
    gate.prepare(paths, ["web"])

    with gate.compaction(paths, "web", limit=-1):
        assert loop.scan_client(client(), server(), paths, []) == []

    assert state_file.load(paths.monitor_state("web")).scanned is None


def test_a_marker_left_by_a_killed_compaction_does_not_stop_the_watch(paths):
    write_repository(paths, init_create_create_delete())
    gate.prepare(paths, ["web"])
    paths.compaction_marker("web").touch()

    documents = loop.scan_client(client(), server(), paths, [])

    assert [d["alert"] for d in documents] == ["client_deletes"]
    assert state_file.load(paths.monitor_state("web")).scanned == 13


def test_a_backup_session_becomes_the_client_last_backup_and_it_never_goes_back(paths):
    write_repository(paths, init_create_create_delete())
    backed_up = recent()
    loop.scan_client(client(), server(), paths, [session("web", "append", backed_up, (1, 4))])

    loop.scan_client(
        client(),
        server(),
        paths,
        [session("web", "append", "2024-01-02T00:00:00+00:00", (1, 4)), session("db", "append", recent(), (1, 4))],
    )

    assert state_file.load(paths.monitor_state("web")).last_backup == backed_up


def test_a_session_that_committed_only_the_manifest_is_no_backup_and_the_client_goes_stale(paths):
    # Like borg with-lock, list or prune: segments 7..9 of init_create_create_delete hold a manifest
    # rewrite and a commit only, 10..13 a delete of an archive and the manifest rewrite.
    write_repository(paths, init_create_create_delete())
    with state_file.locked(paths.monitor_state("web")) as found:
        found.first_seen = "2024-01-01T00:00:00+00:00"
    sessions = [session("web", "append", recent(), (6, 9)), session("web", "append", recent(), (9, 13))]

    documents = loop.scan_client(client(), server(), paths, sessions)

    assert state_file.load(paths.monitor_state("web")).last_backup is None
    assert "stale" in [document["alert"] for document in documents]


def test_a_session_whose_segments_were_compacted_away_counts_as_no_backup(paths):
    write_repository(paths, init_create_create_delete())

    loop.scan_client(client(), server(), paths, [session("web", "append", recent(), (13, 17))])

    assert state_file.load(paths.monitor_state("web")).last_backup is None


def test_a_segment_removed_by_an_admin_session_of_the_client_raises_no_alert(paths):
    repository = write_repository(paths, init_create_create_delete())
    loop.scan_client(client(), server(), paths, [])
    (repository / "data" / "0" / "6").unlink()

    documents = loop.scan_client(client(), server(), paths, [session("web", "admin", recent(), (13, 14))])

    assert documents == []
    found = state_file.load(paths.monitor_state("web"))
    assert (found.tampering, 6 in found.segments) == (None, False)


def test_a_read_only_admin_session_does_not_hide_a_removed_segment(paths):
    repository = write_repository(paths, init_create_create_delete())
    loop.scan_client(client(), server(), paths, [])
    (repository / "data" / "0" / "6").unlink()

    documents = loop.scan_client(client(), server(), paths, [session("web", "admin", recent(), (13, 13))])

    assert [(document["alert"], document["details"]["removed"]) for document in documents] == [("tampering", [6])]


def test_a_removed_segment_raises_a_tampering_alert(paths):
    repository = write_repository(paths, init_create_create_delete())
    loop.scan_client(client(), server(), paths, [])
    (repository / "data" / "0" / "6").unlink()

    documents = loop.scan_client(client(), server(), paths, [session("db", "admin", recent())])

    assert [(d["alert"], d["message"]) for d in documents] == [
        (
            "tampering",
            "client web: segments removed 6 (borg never rewrites committed files of an append-only repository)",
        )
    ]


def test_a_replaced_repository_config_raises_a_tampering_alert(paths):
    repository = write_repository(paths, init_create_create_delete())
    loop.scan_client(client(), server(), paths, [])
    (repository / "config").write_text("[repository]\nappend_only = 0\n")

    documents = loop.scan_client(client(), server(), paths, [])

    assert [(d["alert"], d["details"]["config"]) for d in documents] == [("tampering", True)]


def test_a_client_first_seen_long_ago_that_never_backed_up_raises_a_stale_alert(paths):
    save_state(paths)

    documents = loop.scan_client(client(), server(), paths, [])

    assert [d["alert"] for d in documents] == ["stale"]
    assert documents[0]["message"].startswith("client web: no backup for ")
    assert documents[0]["message"].endswith(" (MAX_AGE 1d 2h); it never backed up")


def test_a_repository_not_checked_for_twice_the_check_interval_raises_an_overdue_check_alert(paths):
    write_repository(paths, init_create_create_delete())
    checked = (datetime.now(UTC) - timedelta(days=3)).isoformat(timespec="seconds")
    save_state(paths, last_backup=recent(), check={"at": checked, "ok": True, "returncode": 0, "message": "ok"})
    full_client = client(BORG_CLIENT_WEB_APPEND_ONLY="no")

    documents = loop.scan_client(full_client, server(MONITOR_CHECK_INTERVAL="1d"), paths, [])

    assert [(d["alert"], d["state"], d["details"]["last_check_at"]) for d in documents] == [
        ("check_failed", "raised", checked)
    ]
    assert documents[0]["message"].startswith("client web: no repository check could run for 3d")
    assert documents[0]["message"].endswith(" (the repository was always busy?)")


def test_a_client_directory_near_its_quota_raises_a_quota_alert(paths):
    directory = paths.client_directory("web")
    directory.mkdir(parents=True)
    (directory / "big").write_bytes(b"x" * 9_500_001)

    documents = loop.scan_client(client(BORG_CLIENT_WEB_QUOTA="10M"), server(), paths, [])

    assert [(d["alert"], d["details"]["bytes"]) for d in documents] == [("quota", 9_500_001)]


# scan


def test_a_scan_emits_the_alerts_and_remembers_how_far_it_read_the_audit_log(paths, capsys):
    write_repository(paths, init_create_create_delete())
    backed_up = recent()
    write_audit_log(paths, session("web", "append", backed_up, (1, 4)))

    seconds = loop.scan(server("web db"), paths)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(d["alert"], d["state"], d["client"]) for d in lines] == [("client_deletes", "raised", "web")]
    position = json.loads((paths.monitor / "monitor.json").read_text())
    assert position["audit_offset"] == paths.audit_log.stat().st_size
    assert position["scan_seconds"] == round(seconds, 3)
    assert state_file.load(paths.monitor_state("web")).last_backup == backed_up


def test_a_scan_rotates_a_full_audit_log_and_still_reads_what_was_written_into_it(paths, monkeypatch, capsys):
    write_repository(paths, init_create_create_delete())
    backed_up = recent()
    write_audit_log(paths, session("web", "append", backed_up, (1, 4)))
    monkeypatch.setattr(loop.audit_log, "ROTATE_AT", 10)
    monkeypatch.setattr(loop.audit_log.os, "chown", lambda *_arguments: None)

    loop.scan(server(), paths)

    assert paths.audit_log.read_bytes() == b""
    assert loop.audit_log.rotated(paths.audit_log, 1).stat().st_size > 10
    assert json.loads((paths.monitor / "monitor.json").read_text())["audit_offset"] == 0
    assert state_file.load(paths.monitor_state("web")).last_backup == backed_up


def test_the_next_scan_reads_only_the_new_sessions_and_emits_nothing_that_still_holds(paths, capsys):
    write_repository(paths, init_create_create_delete())
    write_audit_log(paths, session("web", "append", recent()))
    loop.scan(server(), paths)
    capsys.readouterr()
    with state_file.locked(paths.monitor_state("web")) as found:
        found.last_backup = None  # so a second reading of the same session would show

    loop.scan(server(), paths)

    assert capsys.readouterr().out == ""
    assert state_file.load(paths.monitor_state("web")).last_backup is None


def test_a_client_that_cannot_be_scanned_does_not_stop_the_others(paths, capsys, caplog):
    save_state(paths, "db", first_seen="not a time")
    write_repository(paths, init_create_create_delete())

    with caplog.at_level(logging.ERROR, logger="borg_server.monitor.loop"):
        loop.scan(server("web db"), paths)

    assert [json.loads(line)["client"] for line in capsys.readouterr().out.splitlines()] == ["web"]
    assert caplog.messages == ["client db: cannot be scanned"]
    assert caplog.records[0].exc_info[0] is ValueError  # logged with its traceback


def test_a_client_whose_state_file_is_damaged_is_scanned_afresh(paths, capsys):
    paths.monitor_state("web").parent.mkdir(parents=True)
    paths.monitor_state("web").write_text("{not json")
    write_repository(paths, init_create_create_delete())

    loop.scan(server("web"), paths)

    assert [json.loads(line)["alert"] for line in capsys.readouterr().out.splitlines()] == ["client_deletes"]
    assert state_file.load(paths.monitor_state("web")).scanned == 13
    assert paths.monitor_state("web").with_suffix(".damaged").read_text() == "{not json"


def test_with_report_urls_a_scan_stores_its_alerts_in_the_outbox_and_flushes_it(paths, monkeypatch, capsys):
    write_repository(paths, init_create_create_delete())
    flushed = []

    def flush(*arguments, what="report", **options):
        if what == "report":  # notifications take the same path (notify.flush), with their own outbox
            flushed.append(arguments)

    monkeypatch.setattr(loop.reports, "flush", flush)

    loop.scan(server(REPORT_URLS="https://hooks.example.org/borg"), paths)

    stored = outbox.entries(paths.monitor_outbox)
    assert [(entry.document["alert"], entry.pending) for entry in stored] == [
        ("client_deletes", ("https://hooks.example.org/borg",))
    ]
    assert len(flushed) == 1
    assert flushed[0][:3] == (paths.monitor_outbox, ("https://hooks.example.org/borg",), loop.REPORT_TIMEOUT)


# check_due, run_check and check_loop


def test_a_client_without_a_repository_is_never_due_for_a_check(paths):
    save_state(paths)

    assert loop.check_due(client(), server(), paths, datetime.now(UTC)) is False


def test_a_new_client_is_due_for_its_first_check_one_interval_after_it_was_first_seen(paths):
    write_repository(paths, init_create_create_delete())
    save_state(paths, first_seen=NOW)
    first_seen = datetime.fromisoformat(NOW)
    checks = server(MONITOR_CHECK_INTERVAL="1d")

    assert loop.check_due(client(), checks, paths, first_seen + timedelta(hours=23, minutes=59)) is False
    assert loop.check_due(client(), checks, paths, first_seen + timedelta(days=1)) is True


def test_a_client_never_scanned_is_not_due_for_a_check_yet(paths):
    write_repository(paths, init_create_create_delete())

    assert loop.check_due(client(), server(), paths, datetime.now(UTC)) is False


def test_a_check_is_due_one_interval_after_the_last_one(paths):
    write_repository(paths, init_create_create_delete())
    save_state(paths, check={"at": NOW, "ok": True, "returncode": 0, "message": "no problems found"})
    checked = datetime.fromisoformat(NOW)

    assert loop.check_due(client(), server(), paths, checked + timedelta(days=6, hours=23)) is False
    assert loop.check_due(client(), server(), paths, checked + timedelta(days=7)) is True


def log_message(level: str, message: str, msgid: str | None = None) -> str:
    entry = {"type": "log_message", "levelname": level, "message": message}
    return json.dumps(entry | ({"msgid": msgid} if msgid else {}))


class FakeBorg:
    """Stands in for process.run: feeds borg's --log-json lines through render_line, returns an exit code."""

    def __init__(self, returncode: int, lines: list[str]):
        self.returncode, self.lines, self.calls = returncode, lines, []

    def __call__(self, argv, *, env=None, render_line=None, **_options):
        self.calls.append((argv, env))
        tail = [text for text in map(render_line, self.lines) if text is not None]
        return Result(self.returncode, "", tail)


@pytest.fixture
def with_accounts(paths):
    """Record web's account as uid 20001 and db's as 20002."""
    accounts.save(paths.accounts, {"web": accounts.Account("web", 20001), "db": accounts.Account("db", 20002)})


@pytest.mark.usefixtures("with_accounts")
def test_run_check_runs_borg_check_repository_only_as_the_clients_account_and_records_a_pass(paths, monkeypatch):
    write_repository(paths, init_create_create_delete())
    borg = FakeBorg(0, [log_message("INFO", "Starting repository check")])
    monkeypatch.setattr(commands.process, "run", borg)

    before = state_file.now_text()
    loop.run_check(client(), server(PUID="1001", PGID="1002"), paths)

    repository = str(paths.client_repository("web"))
    assert borg.calls == [
        (
            ["setpriv", "--reuid=20001", "--regid=20001", "--clear-groups", "--", "borg", "check", "--repository-only",
             "--log-json", "--lock-wait", "60", repository],
            commands.borg_environment(paths.client_home("web")),
        )
    ]  # fmt: skip
    check = state_file.load(paths.monitor_state("web")).check
    assert (check.ok, check.returncode, check.message) == (True, 0, "no problems found")
    assert before <= check.at <= state_file.now_text()


@pytest.mark.usefixtures("with_accounts")
def test_a_failed_check_records_borg_last_three_problems(paths, monkeypatch):
    lines = [
        log_message("INFO", "Starting repository check"),
        log_message("WARNING", "segment 3 has a bad tail"),
        log_message("ERROR", "segment 6: crc32 mismatch", "IntegrityError"),
        log_message("INFO", "still checking"),
        log_message("ERROR", "index is missing 2 objects"),
        log_message("CRITICAL", "repository is damaged"),
    ]
    monkeypatch.setattr(commands.process, "run", FakeBorg(1, lines))

    loop.run_check(client(), server(), paths)

    check = state_file.load(paths.monitor_state("web")).check
    assert (check.ok, check.returncode, check.message) == (
        False,
        1,
        "ERROR: segment 6: crc32 mismatch [IntegrityError] / ERROR: index is missing 2 objects / "
        "CRITICAL: repository is damaged",
    )


@pytest.mark.usefixtures("with_accounts")
def test_a_failed_check_without_problem_lines_records_its_last_output_or_its_exit_code(paths, monkeypatch):
    monkeypatch.setattr(commands.process, "run", FakeBorg(2, ["setpriv: cannot switch user", "plain text"]))
    loop.run_check(client(), server(), paths)
    assert state_file.load(paths.monitor_state("web")).check.message == "setpriv: cannot switch user / plain text"

    monkeypatch.setattr(commands.process, "run", FakeBorg(2, []))
    loop.run_check(client(), server(), paths)
    assert state_file.load(paths.monitor_state("web")).check.message == "exit 2"


@pytest.mark.usefixtures("with_accounts")
def test_a_check_that_finds_the_repository_locked_records_nothing(paths, monkeypatch):
    save_state(paths)
    busy = [log_message("ERROR", "Failed to create/acquire the lock (timeout).", "LockTimeout")]
    monkeypatch.setattr(commands.process, "run", FakeBorg(73, busy))

    loop.run_check(client(), server(), paths)

    assert state_file.load(paths.monitor_state("web")).check is None


class Stop:
    """Stands in for the stop event: lets check_loop run a number of rounds, then stops it."""

    def __init__(self, rounds: int):
        self.rounds, self.waits = rounds, []

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        self.rounds -= 1
        return self.rounds < 0

    def is_set(self) -> bool:
        return self.rounds < 0


@pytest.mark.usefixtures("with_accounts")
def test_the_check_loop_checks_each_client_that_is_due_once_per_round(paths, monkeypatch):
    write_repository(paths, init_create_create_delete(), "web")
    write_repository(paths, init_create_create_delete(), "db")
    save_state(paths, "web")
    save_state(paths, "db", check={"at": state_file.now_text(), "ok": True, "returncode": 0, "message": "ok"})
    borg = FakeBorg(0, [])
    monkeypatch.setattr(commands.process, "run", borg)
    stop = Stop(rounds=2)

    loop.check_loop([server("web db")], paths, stop)

    assert [argv[-1] for argv, _env in borg.calls] == [str(paths.client_repository("web"))]
    assert stop.waits == [loop.CHECK_POLL] * 3


@pytest.mark.usefixtures("with_accounts")
def test_a_check_that_cannot_start_is_logged_and_the_loop_goes_on(paths, monkeypatch, caplog):
    write_repository(paths, init_create_create_delete(), "web")
    save_state(paths, "web")

    def missing_setpriv(*_arguments, **_options):
        raise FileNotFoundError(2, "No such file or directory", "setpriv")

    monkeypatch.setattr(commands.process, "run", missing_setpriv)

    with caplog.at_level(logging.ERROR, logger="borg_server.monitor.loop"):
        loop.check_loop([server()], paths, Stop(rounds=2))

    assert (
        caplog.messages
        == ["client web: the repository check could not run: [Errno 2] No such file or directory: 'setpriv'"] * 2
    )


# reread


def test_reread_returns_the_configuration_as_it_is_now():
    assert loop.reread({"BORG_CLIENTS": "web db"}, "backup", server()) == load({"BORG_CLIENTS": "web db"}, "backup")


def test_a_configuration_that_became_wrong_keeps_the_last_good_one(caplog):
    previous = server()

    with caplog.at_level(logging.ERROR, logger="borg_server.monitor.loop"):
        assert loop.reread({"BORG_CLIENTS": "web", "PUID": "0"}, "backup", previous) is previous

    assert caplog.messages == [
        "the configuration has problems; the monitor keeps the last good one: PUID: 0 is root; "
        "the borg account must not be root"
    ]


def test_a_scan_moves_aside_a_symlink_that_took_the_place_of_its_state_directory_and_writes_nothing_through_it(
    paths, tmp_path
):
    write_repository(paths, init_create_create_delete())
    loop.scan(server(), paths)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    clients = paths.monitor_state("web").parent
    clients.rename(tmp_path / "old-clients")
    clients.symlink_to(elsewhere)  # while the monitor runs
    paths.audit_log.unlink()
    paths.audit_log.symlink_to(elsewhere / "log")

    loop.scan(server(), paths)

    assert list(elsewhere.iterdir()) == []
    assert paths.monitor_state("web").is_file() and not clients.is_symlink()
    assert paths.audit_log.is_file() and not paths.audit_log.is_symlink()
