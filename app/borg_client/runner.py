"""One backup run: pre-flight, first-time init, borg create with containers stopped, report.

Only this module runs borg for the sidecar (through borg_common.process).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from borg_client import borg, preflight, quiesce
from borg_client.config import ClientConfig
from borg_common import delivery, process, reports
from borg_common.files import atomic_write

logger = logging.getLogger(__name__)

REPOSITORY_MISSING = "Repository.DoesNotExist"
RUN_HISTORY = 50
LOG_TAIL_LINES = 20
LOG_LINE_LIMIT = 500
LOG_DAYS_KEPT = 30


class RunFailed(Exception):
    """A run cannot go on; the message is what the user reads in the report."""


@dataclass
class Control:
    """Lets a signal handler interrupt a run: borg gets SIGINT, writes a checkpoint and stops."""

    process: subprocess.Popen | None = None
    interrupted: bool = False

    def attach(self, running: subprocess.Popen) -> None:
        self.process = running
        if self.interrupted:
            running.send_signal(signal.SIGINT)

    def interrupt(self) -> None:
        self.interrupted = True
        if self.process is not None and self.process.poll() is None:
            logger.warning("stopping: asking borg to write a checkpoint and exit")
            self.process.send_signal(signal.SIGINT)


@dataclass(frozen=True)
class BorgCall:
    """A finished borg command: its exit code, --json output, message ids and log tail."""

    returncode: int
    stdout: str
    msgids: tuple[str, ...]
    tail: tuple[str, ...] = field(default=())


def now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def run_lock(state: Path, wait: bool = False) -> Iterator[bool]:
    """Hold the run lock while inside; yield False at once if another run holds it, unless wait."""
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "run.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                yield False
                return
            logger.info("another backup is running: waiting for it to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield True


@contextmanager
def day_log(config: ClientConfig) -> Iterator[Path]:
    """While inside, copy every log line into logs/<client>-<day>.log in the state volume; keep 30 days."""
    directory = config.state / "logs"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{config.client}-{now():%Y-%m-%d}.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        yield path
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
        for old in sorted(directory.glob(f"{config.client}-*.log"))[:-LOG_DAYS_KEPT]:
            old.unlink(missing_ok=True)


def call_borg(
    config: ClientConfig, argv: list[str], capture_json: bool = False, cwd: Path | None = None,
    control: Control | None = None,
) -> BorgCall:  # fmt: skip
    """Run one borg command against config's repository, its output streamed into the log.

    borg logs as JSON (--log-json), so that failures are told apart by message id, not exit code:
    borg 1.4.0 returns errors raised on the server with the legacy exit code 2. Every command waits
    for the repository lock, so a run behind another one (or an admin's prune) waits instead of failing.
    """
    log = borg.LogJson()
    result = process.run(
        [argv[0], "--log-json", "--lock-wait", str(borg.LOCK_WAIT), *argv[1:]],
        env=borg.borg_environment(config, dict(os.environ)),
        secrets=config.secrets,
        render_line=log.render,
        capture_stdout=capture_json,
        cwd=str(cwd) if cwd else None,
        on_start=control.attach if control else None,
    )
    return BorgCall(result.returncode, result.stdout, tuple(log.msgids), tuple(result.tail))


def initialise(config: ClientConfig) -> None:
    """Create the repository (borg said it does not exist), then export its key; raise RunFailed if not."""
    logger.info("repository %s does not exist yet: initialising it (%s)", config.repository, config.encryption)
    init = call_borg(config, borg.init_argv(config))
    if init.returncode != 0:
        raise RunFailed(explain(init, "borg init failed"))
    export_key(config)


def create(config: ClientConfig, archive: str, paths: list[str], control: Control) -> BorgCall:
    """Run borg create; initialise first only when borg says the repository does not exist.

    An unreachable server, a wrong passphrase or a refused path is a failure, never a reason to init.
    Trying create first saves a whole borg session on every run but the first.
    """
    argv = borg.create_argv(config, archive, paths)
    call = call_borg(config, argv, capture_json=True, control=control)
    if REPOSITORY_MISSING in call.msgids and not control.interrupted:
        initialise(config)
        call = call_borg(config, argv, capture_json=True, control=control)
    return call


def export_key(config: ClientConfig) -> Path:
    """Export the repository key (file and paper form) into the state volume; return the file."""
    directory = config.state / "key-export"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = directory / f"{config.client}.key"
    for paper, path in ((False, target), (True, directory / f"{config.client}.key.txt")):
        result = call_borg(config, borg.key_export_argv(config.repository, path, paper=paper))
        if result.returncode != 0:
            raise RunFailed(explain(result, "borg key export failed"))
        os.chmod(path, 0o600)
    logger.warning(
        "repository key exported to %s (and a paper copy beside it): without it and the passphrase the "
        "backups cannot be read; keep a copy off this host",
        target,
    )
    return target


def explain(call: BorgCall, what: str) -> str:
    """Return what went wrong, for people: the step, borg's message ids and its last error line."""
    errors = [line for line in call.tail if line.startswith(("ERROR", "CRITICAL"))]
    detail = errors[-1] if errors else (call.tail[-1] if call.tail else "no output")
    return f"{what} (exit {call.returncode}): {detail}"


def archive_stats(stdout: str) -> tuple[str | None, dict]:
    """Given borg create's --json output, return the archive name and the report's stats."""
    try:
        archive = json.loads(stdout)["archive"]
    except (ValueError, KeyError, TypeError):
        return None, {}
    stats = archive.get("stats", {})
    return archive.get("name"), {
        "original_size": stats.get("original_size"),
        "compressed_size": stats.get("compressed_size"),
        "deduplicated_size": stats.get("deduplicated_size"),
        "nfiles": stats.get("nfiles"),
    }


def new_report(config: ClientConfig) -> dict:
    """Return the report of a run that has just started (the contract in DESIGN.md)."""
    return {
        "run_id": str(uuid.uuid4()),
        "client": config.client,
        "repository": config.repository,
        "archive": None,
        "status": "failure",
        "started_at": now().isoformat(timespec="seconds"),
        "finished_at": None,
        "duration_s": None,
        "borg_rc": None,
        "stats": {},
        "stopped_containers": [],
        "message": "",
        "log_tail": [],
    }


def backup(config: ClientConfig, report: dict, control: Control) -> None:
    """Fill report with the outcome of pre-flight, borg create, and init before it if needed."""
    try:
        paths = preflight.sources(config)
        preflight.check_host_key(config)
        if control.interrupted:
            raise RunFailed("stopped before borg create started")
        archive = config.archive_name.replace("{client}", config.client)
        with quiesce.stopped(config.stop_label, config.state) as stopped:
            report["stopped_containers"] = stopped
            logger.info("backing up %s to %s", ", ".join(paths), config.repository)
            call = create(config, archive, paths, control)
    except (RunFailed, preflight.PreflightFailed) as error:
        report.update(status="interrupted" if control.interrupted else "failure", message=str(error))
        return
    verdict = borg.outcome(call.returncode)
    report["archive"], report["stats"] = archive_stats(call.stdout)
    report.update(borg_rc=call.returncode, log_tail=bounded(call.tail), status=verdict.status, message=verdict.reason)
    if verdict.status == "failure":
        report["message"] = explain(call, "borg create failed")
        if control.interrupted:
            report.update(status="interrupted", message="stopped during borg create; borg wrote a checkpoint")


def bounded(lines: tuple[str, ...] | list[str]) -> list[str]:
    return [line[:LOG_LINE_LIMIT] for line in list(lines)[-LOG_TAIL_LINES:]]


def run_once(config: ClientConfig, wait: bool = False, control: Control | None = None) -> dict:
    """Run one backup and report it; return the report.

    A scheduled run skips when another is still going on; a manual one (wait) waits for it. The
    report is on disk (run journal and outbox) before any network call, and a report that cannot
    be delivered never changes the run's outcome.
    """
    control = control or Control()
    report = new_report(config)
    with day_log(config), run_lock(config.state, wait) as locked:
        if not locked:
            report.update(status="skipped", message="the previous run is still going on")
        else:
            clear_stale_cache_locks(config.state / "cache")
            ping(config, "/start", "")
            backup(config, report, control)
        finish(config, report)
    return report


def clear_stale_cache_locks(cache: Path) -> None:
    """Remove borg's local cache locks that a killed run left behind.

    Called while holding the run lock, so no other backup of this sidecar is running. borg would
    not clear them itself: it tells a stale lock by host id and pid, and in a new container the
    dead borg's pid usually belongs to a live process again, so the next run would wait forever.
    """
    for lock in [*cache.glob("*/lock.exclusive"), *cache.glob("*/lock.roster")]:
        if lock.is_dir():
            shutil.rmtree(lock, ignore_errors=True)
        else:
            lock.unlink(missing_ok=True)
        logger.warning("removed %s, left by a run that was killed", lock)


def report_skipped(config: ClientConfig, message: str) -> dict:
    """Record and ship a skipped run (a scheduled time passed while the previous run still went on)."""
    report = new_report(config)
    report.update(status="skipped", message=message)
    with day_log(config):
        finish(config, report)
    return report


def finish(config: ClientConfig, report: dict) -> None:
    """Complete report, log its outcome first, keep it on disk, then ship it and ping."""
    finished = now()
    report["finished_at"] = finished.isoformat(timespec="seconds")
    report["duration_s"] = round((finished - datetime.fromisoformat(report["started_at"])).total_seconds(), 3)
    if report["status"] != "success" and not report["log_tail"]:
        report["log_tail"] = [report["message"]]
    level = {"success": logging.INFO, "skipped": logging.WARNING, "warning": logging.WARNING}
    logger.log(level.get(report["status"], logging.ERROR), "backup %s: %s", report["status"], report["message"])
    record_run(config.state, report)
    reports.send(config.state / "outbox", report, config.report_urls, config.report_timeout)
    if report["status"] != "skipped":
        failed = report["status"] in ("failure", "interrupted")
        ping(config, "/fail" if failed else "", "\n".join([report["message"], *report["log_tail"]]))


def ping(config: ClientConfig, suffix: str, body: str) -> None:
    """Send a Healthchecks-style ping (start, success, fail); its failure only gets logged."""
    if config.healthchecks_url:
        delivery.ping(config.healthchecks_url.rstrip("/") + suffix, body=body[-10000:], timeout=config.report_timeout)


def record_run(state: Path, report: dict) -> None:
    """Keep the last runs in the state volume, for `status` and the health check."""
    with open(state / "runs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a skipped report and a manual run may finish at once
        runs = (last_runs(state) + [report])[-RUN_HISTORY:]
        atomic_write(state / "runs.json", json.dumps(runs, indent=1), 0o600)


def last_runs(state: Path) -> list[dict]:
    """Return the recorded runs, oldest first."""
    try:
        return json.loads((state / "runs.json").read_text())
    except (OSError, ValueError):
        return []
