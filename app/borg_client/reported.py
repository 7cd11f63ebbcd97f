"""The frame of every backup and prune: its day log, the run lock, and the report that always ends it."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable

from borg_client import failures, report
from borg_client.config import ClientConfig
from borg_client.daylog import day_log
from borg_client.journal import run_lock
from borg_client.paths import Paths
from borg_client.report import RunReport

logger = logging.getLogger(__name__)


def reported(
    config: ClientConfig, started: RunReport, wait: bool, work: Callable[[Paths], RunReport], busy: str
) -> RunReport:
    """Given the started report, do work (holding the run lock) and ship the report of its outcome; return it.

    Not waiting (a scheduled run), a run lock held by another run is a `skipped` report saying busy. A day
    log or run lock the state volume refuses is a failure report too (the outbox may still take it, the
    ping goes out).
    """
    paths = config.paths
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(day_log(paths))
            locked = held.enter_context(run_lock(paths, wait))
        except Exception as error:  # an OSError of the state volume: no backup, but its report
            outcome = failed_unexpectedly(started, error, [])
        else:
            outcome = work(paths) if locked else dataclasses.replace(started, status="skipped", message=busy)
        finished = report.finish(outcome)
        report.ship(config, paths, finished)
    return finished


def failed_unexpectedly(started: RunReport, error: Exception, stopped: list[str]) -> RunReport:
    """Given the started report and an error nobody expected, log its traceback; return the failure's report."""
    logger.exception(
        "the %s failed unexpectedly", {"prune": "prune", "verify": "restore drill"}.get(started.kind, "run")
    )
    message = failures.unexpected(error)
    return dataclasses.replace(
        started, status="failure", message=message, stopped_containers=tuple(stopped), retryable=True
    )
