"""The report of a run: the record the contract in DESIGN.md describes, finished, kept, shipped and pinged.

Kept first (run journal and outbox), then delivered; a report that cannot be delivered never
changes the run's outcome.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from borg_client import journal, notices
from borg_client.config import ClientConfig
from borg_client.paths import Paths
from borg_common import notify, reports

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 20
LOG_LINE_LIMIT = 500
PING_LIMIT = 10000  # characters of the message and log tail a ping carries
LEVELS = {"success": logging.INFO, "skipped": logging.WARNING, "warning": logging.WARNING}
FAILED = ("failure", "interrupted")
OUTBOX_MAX_AGE = 30 * 86400  # seconds an undelivered report waits for a receiver that never comes back


@dataclass(frozen=True)
class RunReport:
    """One run: who, when, the outcome (success | warning | failure | skipped | interrupted) and why."""

    run_id: str
    client: str
    repository: str
    started_at: datetime
    status: str = "failure"  # until the run says otherwise
    message: str = ""
    archive: str | None = None
    finished_at: datetime | None = None
    borg_rc: int | None = None
    stats: Mapping[str, int | None] = field(default_factory=dict)
    stopped_containers: tuple[str, ...] = ()
    log_tail: tuple[str, ...] = ()
    attempt: int = 1  # 1 for a scheduled or manual run, 2 for its first retry, …
    retryable: bool = False  # whether a retry may fix the failure (borg_client.failures); not shipped
    kind: str = "backup"  # backup | prune | verify (a restore drill, borg_client.verify)
    kept: tuple[str, ...] = ()  # a prune's archives kept, newest first
    pruned: tuple[str, ...] = ()  # a prune's archives deleted
    dumps: tuple[Mapping, ...] = ()  # a backup's dumps: container, kind, database, path, bytes, seconds, status
    verified: Mapping = field(default_factory=dict)  # a drill's steps and figures (borg_client.verify.verified)
    coverage: Mapping | None = None  # a backup's coverage audit (borg_client.coverage_audit.Audit.to_dict())

    @property
    def duration_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)

    def to_dict(self) -> dict:
        """Return the report as it is shipped and kept (the JSON receivers read)."""
        return {
            "run_id": self.run_id,
            "client": self.client,
            "repository": self.repository,
            "archive": self.archive,
            "status": self.status,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "finished_at": self.finished_at.isoformat(timespec="seconds") if self.finished_at else None,
            "duration_s": self.duration_s,
            "borg_rc": self.borg_rc,
            "stats": dict(self.stats),
            "stopped_containers": list(self.stopped_containers),
            "message": self.message,
            "log_tail": list(self.log_tail),
            "attempt": self.attempt,
            "kind": self.kind,
        } | self._of_kind()

    def _of_kind(self) -> dict:
        """Return the fields only this kind of run has: a prune's archives, a drill's findings, a backup's dumps."""
        if self.kind == "prune":
            return {"kept": list(self.kept), "pruned": list(self.pruned)}
        if self.kind == "verify":
            return {"verified": dict(self.verified)}
        return {
            "dumps": [dict(dump) for dump in self.dumps],
            "coverage": dict(self.coverage) if self.coverage else None,
        }


def now() -> datetime:
    return datetime.now(UTC)


def start(config: ClientConfig, attempt: int = 1, kind: str = "backup") -> RunReport:
    """Given the configuration (and which try of a run this is), return the report of a run that starts now.

    It is a failure until told otherwise.
    """
    return RunReport(
        run_id=str(uuid.uuid4()),
        client=config.client,
        repository=config.repository,
        started_at=now(),
        attempt=attempt,
        kind=kind,
    )


def bounded(lines: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Given log lines, return the last 20 of them, each cut at 500 characters."""
    return tuple(line[:LOG_LINE_LIMIT] for line in list(lines)[-LOG_TAIL_LINES:])


def finish(report: RunReport) -> RunReport:
    """Given a run's report, return it finished now; a run that did not succeed shows at least its message."""
    tail = report.log_tail or ((report.message,) if report.status != "success" else ())
    return dataclasses.replace(report, finished_at=now(), log_tail=tail)


def ship(config: ClientConfig, paths: Paths, report: RunReport) -> None:
    """Given a finished report: log its outcome, keep it in the run journal and outbox, deliver it, ping.

    Never raises for a journal, outbox or delivery problem: it is logged, and the rest still happens.
    """
    logger.log(LEVELS.get(report.status, logging.ERROR), "%s %s: %s", report.kind, report.status, report.message)
    document = report.to_dict()
    try:
        journal.record_run(paths, document)
    except OSError:
        logger.exception("the run journal %s cannot be written", paths.runs)
    try:
        reports.send(paths.outbox, document, config.report_urls, config.report_timeout, max_age=OUTBOX_MAX_AGE)
    except OSError:
        logger.exception("reports: the outbox %s cannot be written", paths.outbox)
    tell(config, paths, document)
    # a prune pings only its failure: its success must not hide a failing backup on the same check
    if report.status != "skipped" and (report.kind == "backup" or report.status in FAILED):
        ping(config, "/fail" if report.status in FAILED else "", "\n".join([report.message, *report.log_tail]))


def tell(config: ClientConfig, paths: Paths, document: dict) -> None:
    """Given a finished run's report, keep its notification in the outbox if NOTIFY_ON wants it, then deliver what
    waits there; a problem is logged, never raised."""
    if not config.notify.urls:
        return
    try:
        age = journal.last_success_age(journal.last_runs(paths), now())
        seconds = age.total_seconds() if age is not None else None
        notify.queue(paths.notify_outbox, notices.message(document, seconds), config.notify)
    except OSError:
        logger.exception("notifications: the outbox %s cannot be written", paths.notify_outbox)
    notify.flush(paths.notify_outbox, config.notify, config.report_timeout)


def ping(config: ClientConfig, suffix: str, body: str) -> None:
    """Send a Healthchecks-style ping (suffix /start, none for success, /fail); its failure only gets logged."""
    if config.healthchecks_url:
        from borg_common import delivery  # imported only when there is something to send (requests)

        url = config.healthchecks_url.rstrip("/") + suffix
        delivery.ping(url, body=body[-PING_LIMIT:], timeout=config.report_timeout)
