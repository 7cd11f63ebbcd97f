"""Tests for one run, top to bottom: every way it ends leaves one exact report in the outbox and journal.

Borg, the clock, pre-flight and pings are fakes (conftest): no process, no Docker, no network.
"""

import dataclasses
import json
import logging
import uuid
from types import SimpleNamespace

import pytest

from borg_client import journal, quiesce, run
from borg_client.borgcall import Control
from borg_common import outbox

BORG = ["borg", "--log-json", "--lock-wait", "600"]
ARCHIVE = "web-{utcnow:%Y-%m-%dT%H:%M:%S}"
PING = "http://hc:8000/ping/abc"
CREATE_JSON = json.dumps({"archive": {"name": "web-2024-05-06T03:00:00", "stats": {
    "original_size": 2048, "compressed_size": 1024, "deduplicated_size": 512, "nfiles": 2}},
    "cache": {"stats": {"unique_csize": 4096, "total_size": 9000}}})  # fmt: skip
STATS = {"original_size": 2048, "compressed_size": 1024, "deduplicated_size": 512, "nfiles": 2,
         "repository_size": 4096}  # fmt: skip
NO_SOCKET = {
    "status": "unknown",
    "scope": "host",
    "counts": None,
    "items": [],
    "reason": "the Docker socket /var/run/docker.sock is not mounted into the sidecar: mount it to audit the host",
}


def create_argv(config) -> list[str]:
    return [*BORG, "create", "--json", "--list", "--filter", "AME", "--show-rc", "--compression", "zstd,3",
            "--checkpoint-interval", "600", "--exclude-caches", f"::{ARCHIVE}", "/backup/data"]  # fmt: skip


def expected(config, **changes) -> dict:
    """Return the report a run of config keeps, with changes; its run_id is left out (a fresh UUID)."""
    base = {
        "client": "web",
        "repository": config.repository,
        "archive": None,
        "status": "failure",
        "started_at": "2024-05-06T03:00:00+00:00",
        "finished_at": "2024-05-06T03:00:42+00:00",
        "duration_s": 42.5,
        "borg_rc": None,
        "stats": {},
        "stopped_containers": [],
        "message": "",
        "log_tail": [],
        "attempt": 1,
        "kind": "backup",
        "dumps": [],
        "coverage": NO_SOCKET,
    }
    return base | changes


def kept(config) -> dict:
    """Return the one report the run left, after checking that outbox and journal hold the same one."""
    paths = config.paths
    (entry,) = outbox.entries(paths.outbox)
    (recorded,) = journal.last_runs(paths)
    assert entry.document == recorded
    assert entry.pending == ("http://receiver:8080/report",)
    document = dict(recorded)
    uuid.UUID(document.pop("run_id"))
    return document


def test_a_successful_run_reports_the_archive_its_stats_and_pings_success(run_config, fake_borg, lines, pings):
    fake_borg.answer("create", 0, CREATE_JSON, [lines.file("A", "/backup/data/a"), lines.file("M", "/backup/data/b")])

    result = run.run_once(run_config)

    (day_log,) = run_config.paths.logs.iterdir()
    summary = f"borg create listed 2 files (A 1, M 1): every one is in the day log {day_log}"
    assert fake_borg.commands == [create_argv(run_config)]
    assert kept(run_config) == expected(
        run_config,
        archive="web-2024-05-06T03:00:00",
        status="success",
        borg_rc=0,
        stats=STATS,
        message="borg finished without problems",
        log_tail=[summary],
    )
    assert result.to_dict() == journal.last_runs(run_config.paths)[-1]
    assert pings == [(f"{PING}/start", ""), (PING, f"borg finished without problems\n{summary}")]
    listed = [line.split(" INFO ", 1)[1] for line in day_log.read_text().splitlines() if " borg.files: " in line]
    assert listed == ["borg.files: A /backup/data/a", "borg.files: M /backup/data/b"]


def test_a_run_with_unreadable_files_is_a_warning_and_pings_success(run_config, fake_borg, lines, pings):
    warning = lines.log("WARNING", "/backup/data/x: stat: [Errno 13] Permission denied", "BackupPermissionError")
    fake_borg.answer("create", 107, CREATE_JSON, [warning])

    run.run_once(run_config)

    message = "borg finished with warnings (exit 107); some files may be missing"
    assert kept(run_config) == expected(
        run_config,
        archive="web-2024-05-06T03:00:00",
        status="warning",
        borg_rc=107,
        stats=STATS,
        message=message,
        log_tail=["WARNING: /backup/data/x: stat: [Errno 13] Permission denied"],
    )
    assert pings[-1] == (PING, f"{message}\nWARNING: /backup/data/x: stat: [Errno 13] Permission denied")


def test_a_failed_borg_create_reports_borgs_error_and_pings_fail(run_config, fake_borg, lines, pings):
    error = lines.log("ERROR", "Repository path not allowed: /srv/borg/other", "PathNotAllowed")
    fake_borg.answer("create", 2, "", [lines.log("INFO", "Remote: connected"), error])

    run.run_once(run_config)

    message = (
        "borg create failed (exit 2): the server does not let this key reach that path; check BORG_REPO (./main) "
        "and CLIENT_NAME (borg: Repository path not allowed: /srv/borg/other [PathNotAllowed])"
    )
    tail = ["INFO: Remote: connected", "ERROR: Repository path not allowed: /srv/borg/other [PathNotAllowed]"]
    assert kept(run_config) == expected(run_config, borg_rc=2, message=message, log_tail=tail)
    assert pings == [(f"{PING}/start", ""), (f"{PING}/fail", "\n".join([message, *tail]))]
    assert fake_borg.commands == [create_argv(run_config)]  # a refused path is never a reason to init


def test_a_missing_repository_is_initialised_its_key_exported_and_create_tried_again(run_config, fake_borg, lines):
    missing = lines.log("ERROR", "Repository does not exist.", "Repository.DoesNotExist")
    fake_borg.answer("create", 2, "", [missing])
    fake_borg.answer("create", 0, CREATE_JSON, [])

    run.run_once(run_config)

    key_export = run_config.paths.key_export
    assert fake_borg.commands == [
        create_argv(run_config),
        [*BORG, "init", "--encryption", "keyfile-blake2"],
        [*BORG, "key", "export", run_config.repository, str(key_export / "web.key.new")],
        [*BORG, "key", "export", "--paper", run_config.repository, str(key_export / "web.key.txt.new")],
        create_argv(run_config),
    ]
    assert kept(run_config)["status"] == "success"
    assert sorted(path.name for path in key_export.iterdir()) == ["web.key", "web.key.txt"]
    assert (key_export / "web.key").read_text() == "BORG_KEY\n"
    assert (key_export / "web.key").stat().st_mode & 0o777 == 0o600


def test_a_failed_init_is_a_failure_naming_it(run_config, fake_borg, lines, pings):
    fake_borg.answer("create", 2, "", [lines.log("ERROR", "Repository does not exist.", "Repository.DoesNotExist")])
    fake_borg.answer("init", 2, "", [lines.log("ERROR", "Quota exceeded", "Repository.StorageQuotaExceeded")])

    run.run_once(run_config)

    message = (
        "borg init failed (exit 2): the client's quota on the server is full; prune, or raise "
        "BORG_CLIENT_<NAME>_QUOTA on the server (borg: Quota exceeded [Repository.StorageQuotaExceeded])"
    )
    assert kept(run_config) == expected(run_config, message=message, log_tail=[message])
    assert pings[-1] == (f"{PING}/fail", f"{message}\n{message}")


class DockerException(Exception):
    """What the docker library raises when its socket does not answer (docker.errors.DockerException)."""


def test_a_docker_error_while_stopping_containers_is_a_failure_report_with_the_traceback_logged(
    run_config, fake_borg, pings, monkeypatch, caplog
):
    config = dataclasses.replace(run_config, stop_label="backup.stop")
    error = DockerException("Error while fetching server API version: Connection refused")

    def no_docker():
        raise error

    monkeypatch.setattr(quiesce, "docker_client", no_docker)

    with caplog.at_level(logging.INFO):
        result = run.run_once(config)

    message = "unexpected error: DockerException: Error while fetching server API version: Connection refused"
    assert result.status == "failure"
    assert kept(config) == expected(config, message=message, log_tail=[message])
    assert pings == [(f"{PING}/start", ""), (f"{PING}/fail", f"{message}\n{message}")]
    assert fake_borg.commands == []
    (logged,) = [record for record in caplog.records if record.exc_info]
    assert logged.getMessage() == "the run failed unexpectedly"
    assert logged.exc_info[1] is error
    assert f"backup failure: {message}" in caplog.messages


def test_borg_that_cannot_be_started_is_a_failure_report(run_config, fake_borg, pings):
    fake_borg.raises = FileNotFoundError(2, "No such file or directory")

    run.run_once(run_config)

    message = "unexpected error: FileNotFoundError: [Errno 2] No such file or directory"
    assert kept(run_config) == expected(run_config, message=message, log_tail=[message])
    assert pings[-1] == (f"{PING}/fail", f"{message}\n{message}")


def test_an_error_during_borg_create_still_starts_the_stopped_containers_and_reports_them(
    run_config, fake_borg, docker_daemon
):
    config = dataclasses.replace(run_config, stop_label="backup.stop")
    journalled = []

    def disk_full():
        journalled.append(quiesce.read_journal(config.paths.stopped_containers))
        raise OSError(28, "No space left on device")

    fake_borg.during = disk_full

    run.run_once(config)

    assert fake_borg.commands == [create_argv(config)]
    assert journalled == [[{"id": "id-app", "name": "app"}, {"id": "id-db", "name": "db"}]]
    assert docker_daemon.events == ["stop app", "stop db", "start db", "start app"]
    assert not config.paths.stopped_containers.exists()
    message = "unexpected error: OSError: [Errno 28] No space left on device"
    assert kept(config) == expected(config, message=message, stopped_containers=["app", "db"], log_tail=[message])


@pytest.mark.parametrize("stop", [KeyboardInterrupt(), SystemExit(1)])
def test_keyboard_interrupt_and_system_exit_are_not_swallowed(run_config, fake_borg, stop):
    fake_borg.raises = stop

    with pytest.raises(type(stop)):
        run.run_once(run_config)

    assert journal.last_runs(run_config.paths) == []


def test_a_run_while_another_holds_the_lock_is_skipped_without_borg_or_pings(run_config, fake_borg, pings):
    with journal.run_lock(run_config.paths) as held:
        assert held
        result = run.run_once(run_config)

    message = "the previous run is still going on"
    assert result.status == "skipped"
    assert kept(run_config) == expected(
        run_config, status="skipped", message=message, log_tail=[message], coverage=None
    )
    assert fake_borg.commands == [] and pings == []


def test_a_skipped_scheduled_time_is_reported_without_pings(run_config, fake_borg, pings):
    result = run.report_skipped(run_config, "the run due at 03:00 was still going on at 04:00, when the next was due")

    message = "the run due at 03:00 was still going on at 04:00, when the next was due"
    assert result.status == "skipped"
    assert kept(run_config) == expected(
        run_config, status="skipped", message=message, log_tail=[message], coverage=None
    )
    assert fake_borg.commands == [] and pings == []


def test_a_stop_before_borg_create_is_an_interrupted_run(run_config, fake_borg, pings, monkeypatch):
    control = Control()
    monkeypatch.setattr(run.preflight, "sources", lambda config: control.interrupt() or ["/backup/data"])

    run.run_once(run_config, control=control)

    message = "stopped before borg create started"
    assert kept(run_config) == expected(run_config, status="interrupted", message=message, log_tail=[message])
    assert fake_borg.commands == []
    assert pings[-1] == (f"{PING}/fail", f"{message}\n{message}")


def test_a_stop_during_borg_create_is_an_interrupted_run_with_a_checkpoint(run_config, fake_borg, lines):
    control = Control()
    fake_borg.during = control.interrupt
    fake_borg.answer("create", 2, "", [lines.log("ERROR", "Got Ctrl-C / SIGINT.", "KeyboardInterrupt")])

    run.run_once(run_config, control=control)

    assert kept(run_config) == expected(
        run_config,
        status="interrupted",
        borg_rc=2,
        message="stopped during borg create; borg wrote a checkpoint",
        log_tail=["ERROR: Got Ctrl-C / SIGINT. [KeyboardInterrupt]"],
    )


def test_a_run_journal_that_cannot_be_written_still_leaves_the_report_in_the_outbox_and_pings(
    run_config, fake_borg, pings, monkeypatch
):
    def unwritable(paths, report):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(journal, "record_run", unwritable)
    fake_borg.answer("create", 0, CREATE_JSON)

    run.run_once(run_config)

    (entry,) = outbox.entries(run_config.paths.outbox)
    assert entry.document["status"] == "success"
    assert pings[-1] == (PING, "borg finished without problems")


def test_a_run_lock_the_state_volume_refuses_is_a_failure_report_with_the_traceback_logged(
    run_config, fake_borg, pings, caplog
):
    lock = run_config.paths.run_lock
    lock.mkdir(parents=True)  # open() of the lock file fails: IsADirectoryError

    result = run.run_once(run_config)

    message = f"unexpected error: IsADirectoryError: [Errno 21] Is a directory: '{lock}'"
    assert result.status == "failure" and result.retryable
    assert kept(run_config) == expected(run_config, message=message, log_tail=[message], coverage=None)
    assert pings == [(f"{PING}/fail", f"{message}\n{message}")]
    assert fake_borg.commands == []
    (logged,) = [record for record in caplog.records if record.exc_info]
    assert logged.getMessage() == "the run failed unexpectedly"


def test_a_run_keeps_its_log_lines_in_the_day_log(run_config, fake_borg, caplog):
    fake_borg.answer("create", 0, CREATE_JSON)

    with caplog.at_level(logging.INFO):
        run.run_once(run_config)

    (day_log,) = run_config.paths.logs.iterdir()
    assert day_log.name.startswith("web-")
    assert "backing up /backup/data to ssh://borg@srv:22/./main" in day_log.read_text()
    assert "backup success: borg finished without problems" in day_log.read_text()


def test_a_bug_without_a_message_is_named_by_its_type(run_config, fake_borg):
    fake_borg.raises = AssertionError()

    run.run_once(run_config)

    assert kept(run_config)["message"] == "unexpected error: AssertionError"


CREATE_WITH_REPOSITORY = json.dumps({
    "repository": {"id": "ab" * 32, "location": "ssh://borg@srv:22/./main"},
    "archive": {"name": "web-2024-05-06T03:00:00", "end": "2024-05-06T03:00:42.000000", "stats": {}},
})  # fmt: skip


def test_a_run_that_wrote_an_archive_records_the_repository(run_config, fake_borg):
    fake_borg.answer("create", 0, CREATE_WITH_REPOSITORY, [])

    run.run_once(run_config)

    record = json.loads(run_config.paths.repository_record.read_text())
    assert record == {"location": "ssh://borg@srv:22/./main", "repository_id": "ab" * 32,
                      "last_archive": "web-2024-05-06T03:00:00", "last_time": "2024-05-06T03:00:42.000000",
                      "archives_written": 1}  # fmt: skip


def test_a_repository_gone_after_backups_is_a_failure_that_initialises_nothing(run_config, fake_borg, lines, pings):
    fake_borg.answer("create", 0, CREATE_WITH_REPOSITORY, [])
    fake_borg.answer("create", 0, CREATE_WITH_REPOSITORY, [])
    run.run_once(run_config)
    run.run_once(run_config)
    paths = run_config.paths
    paths.key_export.mkdir()
    paths.key_file.write_bytes(b"BORG_KEY original\n")
    fake_borg.commands.clear()
    fake_borg.answer("create", 2, "", [lines.log("ERROR", "Repository does not exist.", "Repository.DoesNotExist")])

    result = run.run_once(run_config)

    assert fake_borg.commands == [create_argv(run_config)]  # no init, no key export
    assert result.status == "failure"
    assert result.message == (
        f"the repository {run_config.repository} (id abababababababab…) held the 2 archives this sidecar wrote into "
        "it, the last web-2024-05-06T03:00:00 on 2024-05-06 03:00; it is gone from the server. Nothing was "
        "initialised and the key export was kept. Restore the server's repository volume if you can; if its data "
        "is really lost, start a new repository with `borg-client init --new-repository`"
    )
    assert paths.key_file.read_bytes() == b"BORG_KEY original\n"
    assert pings[-1][0] == f"{PING}/fail"
    assert journal.last_runs(paths)[-1]["message"] == result.message


def test_a_repository_missing_with_only_a_key_export_left_is_a_failure_too(run_config, fake_borg, lines):
    paths = run_config.paths
    paths.key_export.mkdir()
    paths.key_file.write_bytes(b"BORG_KEY original\n")
    fake_borg.answer("create", 2, "", [lines.log("ERROR", "Repository does not exist.", "Repository.DoesNotExist")])

    run.run_once(run_config)

    assert fake_borg.commands == [create_argv(run_config)]
    assert kept(run_config)["message"].startswith(
        f"the repository {run_config.repository} is gone from the server, though its key export {paths.key_file} "
        "shows backups into it. Nothing was initialised"
    )


@pytest.fixture
def host_key_checks(monkeypatch):
    """Record each pre-flight host key check (ssh-keyscan); the server answers as unreachable once told."""
    checks, state = [], {"reachable": True}

    def check(config):
        checks.append(config.client)
        if not state["reachable"]:
            raise run.preflight.PreflightFailed("cannot reach the backup server srv on port 22", "unreachable")

    monkeypatch.setattr(run.preflight, "check_host_key", check)
    return SimpleNamespace(checks=checks, state=state)


def test_a_run_without_containers_to_stop_makes_no_extra_connection_before_borg(run_config, fake_borg, host_key_checks):
    fake_borg.answer("create", 0, CREATE_JSON)

    assert run.run_once(run_config).status == "success"
    assert host_key_checks.checks == []  # ssh pins the host key itself (StrictHostKeyChecking=yes)


def test_a_failed_create_is_explained_by_the_host_key_check(run_config, fake_borg, lines, host_key_checks):
    fake_borg.answer("create", 2, "", [lines.log("ERROR", "Connection closed by remote host", "ConnectionClosed")])
    host_key_checks.state["reachable"] = False

    result = run.run_once(run_config)

    assert (result.status, result.message, result.retryable) == (
        "failure", "cannot reach the backup server srv on port 22", True
    )  # fmt: skip
    assert host_key_checks.checks == ["web"]


def test_with_containers_to_stop_the_server_is_checked_before_any_is_stopped(run_config, fake_borg, host_key_checks):
    config = dataclasses.replace(run_config, stop_label="backup.stop")
    host_key_checks.state["reachable"] = False

    result = run.run_once(config)

    assert (result.status, result.stopped_containers) == ("failure", ())
    assert fake_borg.commands == []
