"""The scheduler loop: wake at the next cron time (plus jitter), run, repeat; stop on SIGTERM."""

from __future__ import annotations

import logging
import random
import threading
from datetime import datetime, timedelta

from cronsim import CronSim

from borg_client import runner
from borg_client.config import ClientConfig

logger = logging.getLogger(__name__)


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


def loop(config: ClientConfig, stop: threading.Event) -> None:
    """Run backups on config's schedule until stop is set."""
    current = datetime.now().astimezone()
    if needs_catch_up(runner.last_runs(config.state), config.cron, current):
        logger.info("the last successful backup is older than one period (or there is none): running now")
        runner.run_once(config)
    while not stop.is_set():
        current = datetime.now().astimezone()
        due = next_times(config.cron, current, 1)[0] + timedelta(seconds=random.uniform(0, config.jitter))
        logger.info("next backup at %s", due.isoformat(timespec="seconds"))
        if stop.wait((due - current).total_seconds()):
            break
        runner.run_once(config)
    logger.info("scheduler stopped")
