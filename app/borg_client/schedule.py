"""The scheduler loop: wake at the next cron time (plus jitter), run, repeat; stop on SIGTERM."""

from __future__ import annotations

import logging
import random
import threading
from datetime import datetime, timedelta

from cronsim import CronSim

from borg_client import quiesce, runner
from borg_client.config import ClientConfig
from borg_common import outbox, reports

logger = logging.getLogger(__name__)

FLUSH_INTERVAL = 60  # seconds between attempts to deliver reports still waiting in the outbox


def next_times(expression: str, after: datetime, count: int = 2) -> list[datetime]:
    """Given a cron expression and a local aware time, return the next count fire times."""
    iterator = CronSim(expression, after)
    return [next(iterator) for _ in range(count)]


def period(expression: str, after: datetime) -> timedelta:
    """Return the interval between the next two fire times: the schedule's period."""
    first, second = next_times(expression, after)
    return second - first


def last_success_age(runs: list[dict], current: datetime) -> timedelta | None:
    """Given recorded runs, return how long ago the last successful one finished (None: never)."""
    for run in reversed(runs):
        if run.get("status") in ("success", "warning") and run.get("finished_at"):
            return current - datetime.fromisoformat(run["finished_at"])
    return None


def needs_catch_up(runs: list[dict], expression: str, current: datetime) -> bool:
    """Return whether a run is due at start: no success within one period of the schedule."""
    age = last_success_age(runs, current)
    return age is None or age > period(expression, current)


def wait_until(config: ClientConfig, due: datetime, stop: threading.Event) -> bool:
    """Wait until due, delivering waiting reports every minute meanwhile; return False if stopped."""
    while True:
        remaining = (due - datetime.now().astimezone()).total_seconds()
        if remaining <= 0:
            return True
        if stop.wait(min(remaining, FLUSH_INTERVAL)):
            return False
        if outbox.size(config.state / "outbox"):
            reports.flush(config.state / "outbox", config.report_urls, config.report_timeout)


def loop(config: ClientConfig, stop: threading.Event, control: runner.Control) -> None:
    """Run backups on config's schedule until stop is set."""
    quiesce.recover(config.state)
    reports.flush(config.state / "outbox", config.report_urls, config.report_timeout)
    if needs_catch_up(runner.last_runs(config.state), config.cron, datetime.now().astimezone()):
        logger.info("the last successful backup is older than one period (or there is none): running now")
        runner.run_once(config, control=control)
    while not stop.is_set():
        current = datetime.now().astimezone()
        due = next_times(config.cron, current, 1)[0] + timedelta(seconds=random.uniform(0, config.jitter))
        logger.info("next backup at %s", due.isoformat(timespec="seconds"))
        if not wait_until(config, due, stop):
            break
        runner.run_once(config, control=control)
        missed = [time for time in next_times(config.cron, due, 2) if due < time <= datetime.now().astimezone()]
        if missed and not stop.is_set():
            runner.report_skipped(
                config, f"the run due at {due:%H:%M} was still going on at {missed[0]:%H:%M}, when the next was due"
            )
    logger.info("scheduler stopped")
