"""The monitor: runs beside sshd under supervisor and watches every client's repository without any key.

Every MONITOR_INTERVAL, and at once when `borg-server scan` asks (SIGUSR1), it reads the audit log
from where it stopped and, for each client: the last backup (a session of the client's own key that left
a higher committed segment), the size against the quota, and for append-only clients the DELETE entries
committed since the last scan and any committed segment changed, truncated or removed since it was first seen.
A second thread runs `borg check --repository-only` per client every MONITOR_CHECK_INTERVAL,
as the client's own account. Conditions become alerts (monitor/alerts.py); the figures feed `status` and, after
every scan, whatever the caller asked to be told (the metrics exposition). After its scan, each client's
admin deletes may be compacted by themselves (monitor/auto_compact.py).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from borg_common import digest, files, notify, reports
from borg_common.files import atomic_write
from borg_common.settings import ConfigError
from borg_common.wakeup import Wakeup
from borg_server.config import reader
from borg_server.monitor import alerts, auto_compact, disk_alert
from borg_server.records import state_file
from borg_server.records.client_state import CheckResult
from borg_server.records.configuration import ClientSpec, ServerConfig
from borg_server.repository import audit_log, disk_space, gate, segments, watch
from borg_server.system import accounts, commands, disk_usage
from borg_server.system.paths import Paths

logger = logging.getLogger(__name__)

REPORT_TIMEOUT = 10  # seconds per delivery attempt of an alert
REPORT_BUDGET = 20  # seconds a scan spends retrying deliveries; what is left waits for the next scan
CHECK_LOCK_WAIT = 60  # a check that finds the repository busy tries again at the next round
CHECK_POLL = 30  # seconds between looks for a check that is due


def scan_client(
    client: ClientSpec, server: ServerConfig, paths: Paths, records: list[dict], reserve: int | None = None
) -> list[dict]:
    """Scan one client under its state lock, decide its automatic compaction, emit its alerts; return the alert
    documents.

    With reserve, the repository's config keeps that much free for clean-up (disk_space.keep_free_space).
    The alerts are emitted (printed and stored in the outbox) before the state that says they were
    sent is saved: if storing fails, the next scan sends them again.
    """
    moment = datetime.now(UTC)
    now = moment.isoformat(timespec="seconds")
    with state_file.locked(paths.monitor_state(client.name)) as found:
        repository = paths.client_repository(client.name)
        found.last_backup = audit_log.last_backup(found.last_backup, records, client.name, repository)
        found.refused = alerts.refusals(found.refused, audit_log.refused(records, client.name), moment)
        if client.append_only and not gate.compacting(paths, client.name):
            admin = any(r.get("client") == client.name and audit_log.may_have_compacted(r) for r in records)
            watch.watch_repository(client.name, found, paths.client_repository(client.name), admin, now)
        if reserve is not None and not gate.compacting(paths, client.name):
            disk_space.keep_free_space(found if client.append_only else None, repository, reserve)
        size = disk_usage.directory_size(paths.client_directory(client.name))
        exists = segments.has_repository(paths.client_repository(client.name))
        history = functools.cache(lambda: audit_log.read_all(paths.audit_log))  # read only if there are deletes
        written = auto_compact.groups(found, history(), client.name) if client.append_only and found.deletes else []
        waiting = alerts.still_being_written(written, segments.busy(repository), moment)
        auto_compact.note(client, server, paths, found, history)  # its held alert is raised with this scan's
        active = alerts.conditions(client, found, size, moment, server.check_interval, exists, written, waiting)
        documents = alerts.transitions(found, active, client.name, server.server_host, now)
        alerts.emit(documents, server, paths)
    return documents


def scan(server: ServerConfig, paths: Paths) -> float:
    """Scan every client once, emit and ship the alerts; return how long it took."""
    started = time.monotonic()
    ensure_state_entries(paths)
    position = audit_log.read_position(paths.monitor_position)
    records, offset = audit_log.read_sessions(paths.audit_log, position.get("audit_offset", 0))
    if offset >= audit_log.ROTATE_AT:
        audit_log.rotate(paths.audit_log, 0, 0)  # root's: no session can write it
        records += audit_log.read_sessions(audit_log.rotated(paths.audit_log, 1), offset)[0]  # written meanwhile
        offset = 0
        logger.info("monitor: the audit log reached %d bytes and was rotated", audit_log.ROTATE_AT)
    usage = disk_space.measure(paths.repositories, server.disk_reserve)
    for client in server.clients:
        try:
            scan_client(client, server, paths, records, usage.reserve_bytes)
        except Exception:  # one client's problem must not stop the watch over the others
            logger.exception("client %s: cannot be scanned", client.name)
            continue
        try:
            auto_compact.run(client, server, paths)
        except Exception:
            logger.exception("client %s: the automatic compaction could not be decided or run", client.name)
    try:
        watch_disk(server, paths, records, usage)
    except Exception:
        logger.exception("server: its disk cannot be watched")
    reports.flush(paths.monitor_outbox, server.report_urls, REPORT_TIMEOUT, REPORT_BUDGET)
    notify.flush(paths.notify_outbox, server.notify, REPORT_TIMEOUT, REPORT_BUDGET)
    seconds = time.monotonic() - started
    audit_log.write_position(paths.monitor_position, offset, time.time(), seconds)
    return seconds


def ensure_state_entries(paths: Paths) -> None:
    """Make the monitor's and the audit log's directories, and the audit log, what they must be before a scan
    writes there: whatever took their place since the start (a symlink, a file) is moved aside with a warning,
    so nothing is written through it."""
    directories = [paths.audit_log.parent, paths.monitor, paths.monitor_state("x").parent, paths.monitor_outbox,
                   paths.notify_outbox]  # fmt: skip
    files.ensure_real_directories(directories)
    for directory in directories[:2]:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    files.ensure_file(paths.audit_log, 0o600)


def watch_disk(server: ServerConfig, paths: Paths, records: list[dict], usage: disk_space.DiskUsage) -> None:
    """Clean up failed transactions if the disk is short, then update and emit the server's disk alert."""
    if usage.free_bytes < usage.reserve_bytes:
        for client in server.clients:
            known = set(state_file.load(paths.monitor_state(client.name)).segments)
            if disk_space.remove_failed_transaction(paths, client.name, known):
                usage = disk_space.measure(paths.repositories, server.disk_reserve)
    added = {c.name: disk_alert.last_added(records, c.name, paths.client_repository(c.name)) for c in server.clients}
    documents = disk_alert.watch(paths.monitor_server_state, usage, server.disk_alert_used, added, server.server_host)
    alerts.emit(documents, server, paths)


def check_due(client: ClientSpec, server: ServerConfig, paths: Paths, now: datetime) -> bool:
    """Return whether the client's repository exists and its last check (or first sighting) is old enough."""
    if not segments.has_repository(paths.client_repository(client.name)):
        return False
    found = state_file.load(paths.monitor_state(client.name))
    reference = found.check.at if found.check else found.first_seen
    return (now - datetime.fromisoformat(reference)).total_seconds() >= server.check_interval


def run_check(client: ClientSpec, server: ServerConfig, paths: Paths) -> None:
    """Run borg check --repository-only on the client's repository as the client's account; record the result."""
    repository = paths.client_repository(client.name)
    argv = ["check", "--repository-only", "--log-json", "--lock-wait", str(CHECK_LOCK_WAIT), str(repository)]
    logger.info("client %s: checking its repository (borg check --repository-only)", client.name)
    account = accounts.lookup(paths, client.name)
    result, msgids = commands.run_borg(argv, account.uid, account.gid, paths.client_home(client.name))
    if "LockTimeout" in msgids:
        logger.info("client %s: repository busy; the check runs again later", client.name)
        return
    ok = result.returncode == 0
    problems = [line for line in result.tail if line.startswith(("ERROR", "CRITICAL", "WARNING"))]
    message = "no problems found" if ok else " / ".join((problems or result.tail)[-3:]) or f"exit {result.returncode}"
    with state_file.locked(paths.monitor_state(client.name)) as found:
        found.check = CheckResult(state_file.now_text(), ok, result.returncode, message)
    (logger.info if ok else logger.error)("client %s: repository check %s", client.name, "passed" if ok else "FAILED")


def check_loop(current: list[ServerConfig], paths: Paths, stop: threading.Event) -> None:
    """Run the checks that are due, one at a time, until stop is set."""
    while not stop.wait(CHECK_POLL):
        server = current[0]
        for client in server.clients:
            if stop.is_set():
                return
            try:
                if check_due(client, server, paths, datetime.now(UTC)):
                    run_check(client, server, paths)
            except (OSError, ValueError) as error:
                logger.error("client %s: the repository check could not run: %s", client.name, error)


SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1}  # what the monitor's main loop answers


@contextlib.contextmanager
def signals_for_the_main_thread() -> Iterator[None]:
    """Within, block SIGNALS, so that the threads started here inherit the block and the kernel delivers them
    to the main thread only. A signal a thread took would run its handler only when the main thread next ran
    Python, and the main thread sleeps in its wait for the next scan: a `borg-server scan` went unanswered."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # what came meanwhile is delivered now


def reread(environ, hostname: str, previous: ServerConfig) -> ServerConfig:
    """Return the configuration as it is now (BORG_SERVER_CONFIG may have changed), or previous if it is wrong."""
    try:
        return reader.load(environ, hostname)
    except ConfigError as error:
        logger.error(
            "the configuration has problems; the monitor keeps the last good one: %s", "; ".join(error.problems)
        )
        return previous


def run(
    server: ServerConfig,
    paths: Paths,
    environ,
    hostname: str,
    scanned: Callable[[ServerConfig, float], None] | None = None,
) -> int:
    """Scan every MONITOR_INTERVAL until SIGTERM, and at once on SIGUSR1 (`borg-server scan`); checks run in a
    thread beside the scans.

    After every scan, scanned (if given) is called with the configuration and how long the scan took (it sends the
    digest: the wait ends at DIGEST_CRON's time, so a scan comes then). A
    SIGUSR1 that comes during a scan makes another one follow it, so the scan it asked for starts after it.
    """
    stop, wake = threading.Event(), Wakeup()  # stop.set() in a handler is safe: this thread only reads it

    def stop_now(_number, _frame) -> None:
        stop.set()
        wake.set()

    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, stop_now)
    signal.signal(signal.SIGUSR1, lambda _number, _frame: wake.set())
    atomic_write(paths.monitor_pid, f"{os.getpid()}\n", 0o600, durable=False)  # from now on, SIGUSR1 is safe
    paths.monitor.mkdir(mode=0o700, parents=True, exist_ok=True)
    current = [server]
    with signals_for_the_main_thread():
        threading.Thread(target=check_loop, args=(current, paths, stop), name="checks", daemon=True).start()
    logger.info(
        "monitor: watching %d clients every %ds, repository checks every %ds",
        len(server.clients), server.monitor_interval, server.check_interval,
    )  # fmt: skip
    while not stop.is_set():
        wake.clear()  # before the scan: a request from now on is answered by this scan or the next
        server = current[0] = reread(environ, hostname, current[0])
        seconds = scan(server, paths)
        logger.info("monitor: scanned %d clients in %.2fs", len(server.clients), seconds)
        if scanned is not None:
            scanned(server, seconds)
        digest_due = digest.seconds_until(server.digest_cron, datetime.now().astimezone())  # scanned() sends it
        wake.wait(max(1.0, min(server.monitor_interval - seconds, digest_due)))
    logger.info("monitor: stopped")
    return 0
