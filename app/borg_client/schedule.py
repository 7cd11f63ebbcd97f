"""The scheduler loop: wake at the next cron time (plus jitter), run, retry a failure, repeat; stop on SIGTERM.
SIGUSR1 makes it do now what it waits for (the next backup, a retry or a prune), without a cron minute.

While it waits, it sends the sidecar's digest on DIGEST_CRON (borg_client.digest). With PRUNE_CRON, prunes run
in the same loop, between backups, so a prune never overlaps a backup; `prune-schedule` (the admin service)
runs only the prunes. Restore drills (VERIFY_CRON, borg_client.verify) run in the loop too: before the next
backup, or right after a backup due at the same time; SIGUSR1 during the wait for a drill means a backup (the
drill keeps its time), and a drill is skipped while no backup has succeeded yet.

Nothing that goes wrong in one run ends the loop: an unexpected error is logged with its traceback
and the next run comes on time. A failure a retry may fix is tried again after each of
RETRY_DELAYS, as long as the retry comes before the next scheduled time.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from borg_client import digest, dump_drill, journal, keyimport, prune, quiesce, retry, run, verify, waiting
from borg_client.borgcall import Control
from borg_client.config import ClientConfig
from borg_common import cron, notify, outbox, reports
from borg_common.wakeup import Wakeup

logger = logging.getLogger(__name__)

FLUSH_INTERVAL = 60  # seconds between attempts to deliver reports still waiting in the outbox

# Set by SIGUSR1 (`docker kill --signal USR1 <sidecar>`): the wait for the next backup, retry or prune ends
# now. A stop sets it too, so that a wait ends at once. A pipe, not an Event: set() runs in a signal handler.
woken = Wakeup()

next_times = cron.next_times


def handle_signals(stop: threading.Event, control: Control) -> None:
    """Install the scheduler's signal handlers: SIGTERM and SIGINT stop it (a running borg writes a checkpoint
    first), SIGUSR1 makes it do now what it waits for."""

    def stop_now(*_) -> None:
        stop.set()
        woken.set()
        control.interrupt()

    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, stop_now)
    signal.signal(signal.SIGUSR1, lambda *_: woken.set())


def needs_catch_up(runs: list[dict], expression: str, current: datetime) -> bool:
    """Return whether a run is due at start: no success within one period of the schedule."""
    age = journal.last_success_age(runs, current)
    return age is None or age > cron.period(expression, current)


def wait_until(
    config: ClientConfig, due: datetime, stop: threading.Event, what: str = "the next run", digests: bool = True,
    instead: str | None = None,
) -> bool:  # fmt: skip
    """Wait until due, or until SIGUSR1 says now, delivering waiting reports every minute meanwhile and sending
    the digest when DIGEST_CRON says; return False if stopped. With instead, SIGUSR1 asks for that, not for what
    is due (the log says so)."""
    outbox_directory = config.paths.outbox
    while True:
        if digests:  # the backup scheduler's: the admin service's prune-schedule sends none
            survive("the digest", digest.send_if_due, config, datetime.now().astimezone())
        remaining = (due - datetime.now().astimezone()).total_seconds()
        if remaining <= 0:
            return True
        signalled = woken.wait(min(remaining, FLUSH_INTERVAL))
        if stop.is_set():
            return False
        if signalled:
            if instead:
                logger.info("SIGUSR1: %s; %s stays at %s", instead, what, due.isoformat(timespec="seconds"))
            else:
                logger.info("SIGUSR1: %s now instead of at %s", what, due.isoformat(timespec="seconds"))
            return True
        if outbox.size(outbox_directory):
            reports.flush(outbox_directory, config.report_urls, config.report_timeout)
        notify.flush(config.paths.notify_outbox, config.notify, config.report_timeout)


def survive(what: str, action: Callable[..., object], *arguments, **options) -> object | None:
    """Call action(*arguments, **options) and return what it returns; log anything it raises (but
    KeyboardInterrupt, SystemExit) and return None."""
    try:
        return action(*arguments, **options)
    except Exception:
        logger.exception("%s failed unexpectedly; the scheduler goes on", what)
        return None


def run_with_retries(config: ClientConfig, stop: threading.Event, control: Control) -> None:
    """Run a backup; while it fails in a way a retry may fix, wait the next of RETRY_DELAYS and try again.

    A retry due after the next scheduled time is dropped: the scheduled run comes instead.
    """
    attempt = 1
    while True:
        finished = survive("the backup", run.run_once, config, control=control, attempt=attempt)
        if finished is None or stop.is_set():
            return
        scheduled = next_times(config.cron, datetime.now().astimezone(), 1)[0]
        due = retry.retry_at(config.retry_delays, finished.retryable, attempt, finished.finished_at, scheduled)
        if due is None:
            if finished.retryable and attempt <= len(config.retry_delays):
                logger.info("no retry: it would come after the next scheduled run at %s", f"{scheduled:%H:%M}")
            return
        logger.info("attempt %d failed; retrying at %s", attempt, due.astimezone().isoformat(timespec="seconds"))
        if not wait_until(config, due, stop, "the retry"):
            return
        attempt += 1


def drill_first(drill: datetime | None, backup: datetime, ran: datetime | None) -> bool:
    """Given when the next drill is due (None: VERIFY_CRON is off), the next backup, and when the backup that just ran
    was due (None: none ran yet), return whether the drill comes now, before the next backup: it is due earlier, or
    it was due with the backup that just ran (woken by SIGUSR1 or on the same minute), which went first."""
    return drill is not None and (drill < backup or (ran is not None and drill <= ran))


def drill_with_retries(config: ClientConfig, stop: threading.Event, control: Control) -> None:
    """Run a restore drill; while it fails in a way a retry may fix, wait the next of RETRY_DELAYS and try again,
    unless the retry would come after the next scheduled drill."""
    attempt = 1
    while True:
        finished = survive("the restore drill", verify.verify_once, config, control=control, attempt=attempt)
        if finished is None or stop.is_set():
            return
        scheduled = next_times(config.drills.cron, datetime.now().astimezone(), 1)[0]
        due = retry.retry_at(config.retry_delays, finished.retryable, attempt, finished.finished_at, scheduled)
        if due is None:
            return
        logger.info("restore drill attempt %d failed; retrying at %s", attempt, due.isoformat(timespec="seconds"))
        if not wait_until(config, due, stop, "the drill's retry"):
            return
        attempt += 1


def loop(config: ClientConfig, stop: threading.Event, control: Control) -> None:
    """Run backups on config's schedule until stop is set; first, once the server answers, BORG_KEY_IMPORT_FILE
    (raise keyimport.Refused if its key is not this client's)."""
    paths = config.paths
    survive("starting containers a crashed run left stopped", quiesce.recover, paths.stopped_containers)
    survive("removing drill containers a stopped drill left", dump_drill.clean_up, config)
    reports.flush(paths.outbox, config.report_urls, config.report_timeout)
    notify.flush(paths.notify_outbox, config.notify, config.report_timeout)
    if not survive("waiting for the server", waiting.reachable_server, config, stop, paths.waiting) and stop.is_set():
        logger.info("scheduler stopped")
        return
    keyimport.at_start(config)
    if needs_catch_up(journal.last_runs(paths), config.cron, datetime.now().astimezone()):
        logger.info("the last successful backup is older than one period (or there is none): running now")
        survive("waiting for the databases", waiting.databases_ready, config, stop)
        if not stop.is_set():
            run_with_retries(config, stop, control)
    survive("the restore drill's record", verify.begin, paths, datetime.now().astimezone())
    due = drill = ran = pruning = None
    while not stop.is_set():
        current = datetime.now().astimezone()
        if due is None:
            due = next_times(config.cron, current, 1)[0] + timedelta(seconds=random.uniform(0, config.jitter))
            logger.info("next backup at %s", due.isoformat(timespec="seconds"))
        drill = drill or (config.drills.cron and next_times(config.drills.cron, current, 1)[0]) or None
        if drill_first(drill, due, ran):
            with_backup = ran is not None and drill <= ran  # due with the backup that just ran: now, not at its time
            if not with_backup:
                instead = f"the backup now instead of at {due.isoformat(timespec='seconds')}"
                if not wait_until(config, drill, stop, "the restore drill", instead=instead):
                    break
                if datetime.now().astimezone() < drill:  # SIGUSR1 means a backup; `borg-client verify` drills now
                    run_with_retries(config, stop, control)
                    due = ran = None
                    continue
            if journal.last_success_age(journal.last_runs(paths), datetime.now().astimezone()) is None:
                logger.info("restore drill skipped: no backup has succeeded yet, so there is nothing to drill")
            else:
                drill_with_retries(config, stop, control)
            drill = ran = None
            continue
        # Kept until it runs, like the drill's time: a prune due at the minute of a backup runs after that backup
        # instead of being computed again, after it, as the next one.
        pruning = pruning or (config.retention.cron and next_times(config.retention.cron, current, 1)[0]) or None
        if pruning and pruning < due:
            if not wait_until(config, pruning, stop, "the prune"):
                break
            survive("the prune", prune.prune_once, config, control=control)
            pruning = None
            continue
        if not wait_until(config, due, stop, "the backup"):
            break
        run_with_retries(config, stop, control)
        missed = [time for time in next_times(config.cron, due, 2) if due < time <= datetime.now().astimezone()]
        if missed and not stop.is_set():
            message = f"the run due at {due:%H:%M} was still going on at {missed[0]:%H:%M}, when the next was due"
            survive("the report of a skipped run", run.report_skipped, config, message)
        ran, due = due, None
    logger.info("scheduler stopped")


def prune_loop(config: ClientConfig, stop: threading.Event, control: Control) -> None:
    """Prune on PRUNE_CRON until stop is set, and back up never (the admin service's `prune-schedule`)."""
    reports.flush(config.paths.outbox, config.report_urls, config.report_timeout)
    notify.flush(config.paths.notify_outbox, config.notify, config.report_timeout)
    while not stop.is_set():
        due = next_times(config.retention.cron, datetime.now().astimezone(), 1)[0]
        logger.info("next prune at %s", due.isoformat(timespec="seconds"))
        if not wait_until(config, due, stop, "the prune", digests=False):
            break
        survive("the prune", prune.prune_once, config, control=control)
    logger.info("prune scheduler stopped")
