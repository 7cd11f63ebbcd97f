"""One prune, top to bottom: run lock, sanity checks of the newest archives, borg prune with the admin key, report.

Before anything is deleted, the newest archive of this client must be recent (within 1.5 periods
of BACKUP_CRON, plus BACKUP_JITTER) and not suspiciously small against the one before
(PRUNE_MIN_SIZE_RATIO): a backup that stopped or shrank is a reason to look, never to delete older history. Prune never
compacts; the server applies an admin's deletes (or a human does).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from borg_client import borg, report
from borg_client.borgcall import Control, call_borg, explain
from borg_client.config import ClientConfig
from borg_client.failures import Failure
from borg_client.report import RunReport
from borg_client.reported import failed_unexpectedly, reported
from borg_client.retention import RECENT_MARGIN, archive_glob
from borg_common import cron
from borg_common.values import size_text

logger = logging.getLogger(__name__)

# borg prune --list lines: "Keeping archive (rule: daily #1):  web-… <time> [id]", "Pruning archive (1/3): …"
LISTED = re.compile(
    r"^INFO: (?P<what>Keeping archive \(rule: [^)]*\)|Keeping checkpoint archive|Pruning archive \(\d+/\d+\)"
    r"|Would prune):\s+(?P<name>\S+)"
)


class PruneRefused(Failure):
    """Pruning now is not safe (or borg could not tell); the message says why and what to look at."""


@dataclass
class PruneLog(borg.LogJson):
    """Reads borg prune --list --log-json: besides what LogJson keeps, the archives kept and pruned."""

    kept: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)

    def render(self, line: str) -> str | None:
        text = super().render(line)
        match = LISTED.match(text or "")
        if match:
            (self.kept if match["what"].startswith("Keeping") else self.pruned).append(match["name"])
        return text


def prune_once(config: ClientConfig, wait: bool = True, control: Control | None = None) -> RunReport:
    """Prune this client's archives (holding the run lock, so never during a backup) and report it; return the report.

    Call only when retention.refusal(config) is None. A scheduled prune (not wait) skips while a backup runs.
    """
    control = control or Control()
    started = report.start(config, kind="prune")
    return reported(config, started, wait, lambda _paths: prune(config, started, control), "a backup is going on")


def prune(config: ClientConfig, started: RunReport, control: Control) -> RunReport:
    """Given the started report, check the newest archives, prune and return the report of the outcome."""
    admin = borg.as_admin(config)
    try:
        info = call_borg(admin, borg.newest_argv(config), capture_json=True, control=control)
        if info.returncode != 0:
            raise PruneRefused(explain(info, "borg info of the newest archives failed"), msgids=info.msgids)
        refused = sanity(config, newest(info.stdout), datetime.now().astimezone())
        if refused:
            raise PruneRefused(f"nothing pruned: {refused}")
        log = PruneLog()
        call = call_borg(admin, borg.prune_argv(config), control=control, log=log)
    except Failure as error:
        return dataclasses.replace(started, status="failure", message=str(error))
    except Exception as error:  # an OSError, a bug: still a report, and the traceback
        return failed_unexpectedly(started, error, [])
    verdict = call.outcome
    message = f"kept {len(log.kept)} archives, pruned {len(log.pruned)}"
    status = verdict.status
    if status == "failure" and control.interrupted:
        status, message = "interrupted", f"stopped during borg prune; before it stopped: {message}"
    elif status == "failure":
        message = explain(call, "borg prune failed") + f"; before it stopped: {message}"
    return dataclasses.replace(
        started, status=status, message=message, borg_rc=call.returncode, log_tail=report.bounded(call.tail),
        kept=tuple(log.kept), pruned=tuple(log.pruned),
    )  # fmt: skip


def newest(info_json: str) -> list[dict]:
    """Given borg info --json output, return its archives, oldest first (none if it is not borg's output)."""
    try:
        archives = json.loads(info_json)["archives"]
        return sorted(archives, key=lambda archive: archive["start"])
    except (ValueError, KeyError, TypeError):
        return []


def sanity(config: ClientConfig, archives: list[dict], current: datetime) -> str | None:
    """Given this client's newest archives (oldest first) and the local time now, return why not to prune, or None.

    Refused: no archive at all; the newest older than RECENT_MARGIN periods of BACKUP_CRON around now
    (plus BACKUP_JITTER, by which a backup may start late); the newest's original size under PRUNE_MIN_SIZE_RATIO
    of the one before.
    """
    if not archives:
        return f"there is no archive of this client ({archive_glob(config.archive_name, config.client)}) yet"
    last = archives[-1]
    age = current - datetime.fromisoformat(last["start"]).astimezone()
    allowed = cron.period_around(config.cron, current) * RECENT_MARGIN + timedelta(seconds=config.jitter)
    if age > allowed:
        jitter = " plus BACKUP_JITTER" if config.jitter else ""
        return (
            f"the newest archive {last['name']} is {shown(age)} old, more than {RECENT_MARGIN} periods of "
            f"BACKUP_CRON{jitter} ({shown(allowed)}): backups may be failing; prune after a successful backup"
        )
    ratio = config.retention.min_size_ratio
    if len(archives) < 2 or not ratio:
        return None
    size = last.get("stats", {}).get("original_size") or 0
    before = archives[-2].get("stats", {}).get("original_size") or 0
    if before and size < before * ratio:
        return (
            f"the newest archive {last['name']} holds {size_text(size)}, under PRUNE_MIN_SIZE_RATIO={ratio} of "
            f"the {size_text(before)} of {archives[-2]['name']} before it: data may be missing at the source; "
            f"look, then prune after a backup of the usual size (or set PRUNE_MIN_SIZE_RATIO=0 for one prune)"
        )
    return None


def shown(delta) -> str:
    """Given a time span, return it to the minute (e.g. 1 day, 12:00)."""
    return str(delta).split(".")[0].rsplit(":", 1)[0]
