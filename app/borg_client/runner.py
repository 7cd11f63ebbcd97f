"""One backup run: pre-flight, first-time init, borg create, and the run's record."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from borg_client import borg
from borg_client.config import ClientConfig
from borg_common import process
from borg_common.files import atomic_write

logger = logging.getLogger(__name__)

REPOSITORY_MISSING = "Repository.DoesNotExist"
RUN_HISTORY = 20


class RunFailed(Exception):
    """A run cannot go on; the message is what the user reads in the report."""


@dataclass(frozen=True)
class BorgCall:
    """A finished borg command: its exit code, --json output, message ids and log tail."""

    returncode: int
    stdout: str
    msgids: tuple[str, ...]
    tail: tuple[str, ...]


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


def call_borg(config: ClientConfig, argv: list[str], capture_json: bool = False, cwd: Path | None = None) -> BorgCall:
    """Run one borg command against config's repository, its output streamed into the log.

    borg logs as JSON (--log-json), so that failures are told apart by message id, not exit code:
    borg 1.4.0 returns errors raised on the server with the legacy exit code 2.
    """
    log = borg.LogJson()
    result = process.run(
        [argv[0], "--log-json", *argv[1:]],
        env=borg.borg_environment(config, dict(os.environ)),
        secrets=config.secrets,
        render_line=log.render,
        capture_stdout=capture_json,
        cwd=str(cwd) if cwd else None,
    )
    return BorgCall(result.returncode, result.stdout, tuple(log.msgids), tuple(result.tail))


def sources(config: ClientConfig) -> list[str]:
    """Return the directories to back up: each one mounted under /backup; raise RunFailed if none."""
    if not config.sources.is_dir():
        raise RunFailed(f"{config.sources} does not exist: mount the volumes to back up under {config.sources}/<name>")
    found = sorted(str(entry) for entry in config.sources.iterdir() if entry.is_dir())
    if not found:
        raise RunFailed(f"nothing is mounted under {config.sources}: mount each volume as {config.sources}/<name>")
    return found


def ensure_repository(config: ClientConfig) -> None:
    """Initialise the repository only if it really does not exist, then export its key.

    An unreachable server, a wrong passphrase or a refused path is a failure, never a reason to init.
    """
    info = call_borg(config, borg.info_argv(), capture_json=True)
    if info.returncode == 0:
        return
    if REPOSITORY_MISSING not in info.msgids:
        raise RunFailed(explain(info, "cannot open the repository"))
    logger.info("repository %s does not exist yet: initialising it (%s)", config.repository, config.encryption)
    init = call_borg(config, borg.init_argv(config))
    if init.returncode != 0:
        raise RunFailed(explain(init, "borg init failed"))
    export_key(config)


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
    ids = f" [{', '.join(call.msgids)}]" if call.msgids else ""
    return f"{what} (exit {call.returncode}){ids}: {detail}"


def create(config: ClientConfig, archive: str, paths: list[str]) -> tuple[BorgCall, dict]:
    """Run borg create; return the call and the stats from its --json output (empty if none)."""
    call = call_borg(config, borg.create_argv(config, archive, paths), capture_json=True)
    try:
        archive_info = json.loads(call.stdout)["archive"]
    except (ValueError, KeyError, TypeError):
        return call, {}
    stats = archive_info.get("stats", {})
    return call, {
        "original_size": stats.get("original_size"),
        "compressed_size": stats.get("compressed_size"),
        "deduplicated_size": stats.get("deduplicated_size"),
        "nfiles": stats.get("nfiles"),
        "archive": archive_info.get("name"),
    }


def run_once(config: ClientConfig, wait: bool = False) -> dict:
    """Run one backup; return its report (status success, warning, failure or skipped).

    A scheduled run skips when another is still going on; a manual one (wait) waits for it.
    """
    started = now()
    report = {
        "run_id": str(uuid.uuid4()),
        "client": config.client,
        "archive": None,
        "status": "failure",
        "started_at": started.isoformat(timespec="seconds"),
        "borg_rc": None,
        "stats": {},
        "stopped_containers": [],
        "log_tail": [],
        "message": "",
    }
    with run_lock(config.state, wait) as locked:
        if not locked:
            report.update(status="skipped", message="another run is still going on")
            logger.warning("skipped: another run is still going on")
        else:
            backup(config, report)
    finished = now()
    report["finished_at"] = finished.isoformat(timespec="seconds")
    report["duration_s"] = round((finished - started).total_seconds(), 3)
    record_run(config.state, report)
    return report


def backup(config: ClientConfig, report: dict) -> None:
    """Fill report with the outcome of pre-flight, init if needed, and borg create."""
    try:
        paths = sources(config)
        ensure_repository(config)
        archive = config.archive_name.replace("{client}", config.client)
        logger.info("backing up %s to %s", ", ".join(paths), config.repository)
        call, stats = create(config, archive, paths)
    except RunFailed as error:
        report["message"] = str(error)
        logger.error("backup failed: %s", error)
        return
    verdict = borg.outcome(call.returncode)
    report.update(
        status=verdict.status,
        borg_rc=call.returncode,
        archive=stats.pop("archive", None),
        stats=stats,
        log_tail=list(call.tail[-20:]),
        message=verdict.reason if verdict.status != "failure" else explain(call, "borg create failed"),
    )
    level = logging.ERROR if verdict.status == "failure" else logging.INFO
    logger.log(level, "backup %s: %s", verdict.status, report["message"])


def record_run(state: Path, report: dict) -> None:
    """Keep the last runs in the state volume, for `status` and the health check."""
    path = state / "runs.json"
    try:
        runs = json.loads(path.read_text())
    except (OSError, ValueError):
        runs = []
    runs = (runs + [report])[-RUN_HISTORY:]
    atomic_write(path, json.dumps(runs, indent=1), 0o600)


def last_runs(state: Path) -> list[dict]:
    """Return the recorded runs, oldest first."""
    try:
        return json.loads((state / "runs.json").read_text())
    except (OSError, ValueError):
        return []


def seconds_since(timestamp: str) -> float:
    return time.time() - datetime.fromisoformat(timestamp).timestamp()
