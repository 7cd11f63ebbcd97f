"""One backup run, top to bottom: lock, pre-flight, dumps planned, containers stopped, borg create, report.

Whatever happens inside a run, it ends in a report: an expected failure (pre-flight, borg) with
its message, anything unexpected (a Docker API error, an OSError, a bug) as a failure naming the
error, with the traceback in the log.
"""

from __future__ import annotations

import dataclasses
import logging

from borg_client import borg, coverage_audit, dump_streams, dumps, failures, preflight, quiesce, report, repository
from borg_client.borgcall import BorgCall, Control, call_borg, explain
from borg_client.config import ClientConfig
from borg_client.daylog import day_log
from borg_client.journal import clear_stale_cache_locks
from borg_client.paths import Paths
from borg_client.report import RunReport
from borg_client.reported import failed_unexpectedly, reported
from borg_client.repository import RunFailed

logger = logging.getLogger(__name__)


def run_once(config: ClientConfig, wait: bool = False, control: Control | None = None, attempt: int = 1) -> RunReport:
    """Run one backup (attempt 2 and on: a retry) and report it; return the report.

    A scheduled run skips when another is still going on; a manual one (wait) waits for it. A day log
    or run lock the state volume refuses is a failure report too (the outbox may still take it, the
    ping goes out).
    """
    control = control or Control()
    started = report.start(config, attempt)
    busy = "the previous run is still going on"
    return reported(config, started, wait, lambda paths: audited(config, backup(config, paths, started, control)), busy)


def audited(config: ClientConfig, outcome: RunReport) -> RunReport:
    """Given a run's report, return it with the coverage audit of the host (never raises: unknown and why)."""
    return dataclasses.replace(outcome, coverage=coverage_audit.audit_run(config).to_dict())


def report_skipped(config: ClientConfig, message: str) -> RunReport:
    """Record and ship a skipped run (a scheduled time passed while the previous run still went on)."""
    paths = config.paths
    with day_log(paths):
        finished = report.finish(dataclasses.replace(report.start(config), status="skipped", message=message))
        report.ship(config, paths, finished)
    return finished


def backup(config: ClientConfig, paths: Paths, started: RunReport, control: Control) -> RunReport:
    """Given the started report, back up (holding the run lock) and return the report of the outcome."""
    stopped: list[str] = []
    try:
        clear_stale_cache_locks(paths.cache)
        report.ping(config, "/start", "")
        sources = preflight.sources(config)
        if config.stop_label:  # no container is stopped for a server that is not there (or not the pinned one)
            preflight.check_host_key(config)
        if control.interrupted:
            raise RunFailed("stopped before borg create started")
        archive = config.archive_name.replace("{client}", config.client)
        docker, planned = dumps.prepare(config)
        with quiesce.stopped(config.stop_label, paths.stopped_containers) as stopped:
            with dump_streams.streaming(docker, planned) as (directory, results):
                what = ", ".join(sources + [dumps.DUMPS] * bool(planned))
                logger.info("backing up %s to %s", what, config.repository)
                argv = borg.create_argv(config, archive, sources, *dump_paths(directory, sources))
                call = repository.create(config, archive, sources, control, argv, directory)
        if call.outcome.status == "failure" and not control.interrupted:
            preflight.check_host_key(config)  # a server that did not answer, or not with the pinned key, says so
        return checked_dumps(config, created(started, call, control.interrupted, stopped), results)
    except failures.Failure as error:
        status = "interrupted" if control.interrupted else "failure"
        retry = failures.retryable(status, error.cause, error.msgids)
        return dataclasses.replace(
            started, status=status, message=str(error), stopped_containers=tuple(stopped), retryable=retry
        )
    except Exception as error:  # a Docker API error, an OSError, a bug: still a report, and the traceback
        return failed_unexpectedly(started, error, stopped)


def created(started: RunReport, call: BorgCall, interrupted: bool, stopped: list[str]) -> RunReport:
    """Given the started report and borg create's call, return the report of its outcome."""
    verdict = call.outcome
    archive, stats = borg.archive_stats(call.stdout)
    status, message = verdict.status, verdict.reason
    if verdict.status == "failure":
        message = failures.no_space(call.msgids, call.tail) or explain(call, "borg create failed")
        if interrupted:
            status, message = "interrupted", "stopped during borg create; borg wrote a checkpoint"
    return dataclasses.replace(
        started, archive=archive, stats=stats, borg_rc=call.returncode, log_tail=report.bounded(call.tail),
        status=status, message=message, stopped_containers=tuple(stopped),
        retryable=failures.retryable(status, msgids=call.msgids),
    )  # fmt: skip


def dump_paths(directory, sources: list[str]) -> tuple[str | None, list[str]]:
    """Given the dumps' directory (None: no dumps) and the sources, return create_argv's dumps and special arguments."""
    return (dumps.DUMPS, dump_streams.special_files(sources)) if directory else (None, [])


def checked_dumps(config: ClientConfig, outcome: RunReport, results: list[dump_streams.Result]) -> RunReport:
    """Given the report of borg create and the dumps' results, return the report with its dumps.

    A dump that failed or came out empty fails the run, with the tool's message, even if borg
    succeeded: the archive borg wrote is renamed to a checkpoint, so it never counts as a backup.
    """
    outcome = dataclasses.replace(outcome, dumps=tuple(result.to_dict() for result in results))
    problems = dump_streams.problems(results)
    if not problems or outcome.status == "failure" or outcome.status == "interrupted":
        return outcome
    message = "; ".join(problems)
    if outcome.archive:
        name = dumps.failed_name(outcome.archive)
        renamed = call_borg(config, borg.rename_argv(outcome.archive, name))
        if renamed.returncode == 0:
            message += f"; the archive was renamed {name} (a checkpoint, not a backup)"
            outcome = dataclasses.replace(outcome, archive=name)
        else:
            message += f"; {explain(renamed, f'renaming the archive {outcome.archive} failed')}"
    return dataclasses.replace(outcome, status="failure", message=message, retryable=True)
