"""The sidecar's own digest (DIGEST_CRON, `borg-client digest`): what its run journal and state volume know.

The last good backup and its age, the last run's outcome, the archives' size and its trend over the runs in
the journal, the repository's size (borg create's cache figures), the last prune, and what waits in the
outboxes. reminders() are the findings a person should act on (a recovery kit never saved, what the last coverage
audit found no backup covers): each is one line, and a digest with any reminder says so in its title.
"""

from __future__ import annotations

import logging
import socket
from datetime import datetime, timedelta

from borg_client import coverage_audit, journal, recovery_kit, status
from borg_client.config import ClientConfig
from borg_client.paths import Paths
from borg_common import digest, outbox
from borg_common.digest import Digest
from borg_common.values import human_duration, human_size

logger = logging.getLogger(__name__)

GOOD = ("success", "warning")


def reminders(config: ClientConfig) -> list[str]:
    """Given the configuration, return the findings a person should act on, one line each: a recovery kit of the
    current key never confirmed saved (borg_client.recovery_kit), and what the last backup's coverage audit found
    on this host that no backup covers, or copies unsafely (borg_client.coverage_audit)."""
    found = [] if recovery_kit.saved(config.paths) else [f"recovery kit: {recovery_kit.status_line(config.paths)}; "
                                                         "see docs/how-to/host-lost.md"]  # fmt: skip
    for item in coverage_audit.open_findings(config.paths):
        state = "copied unsafely" if item["state"] == "unsafe" else "not backed up"
        found.append(f"{item['container']} {item['destination']} ({item['kind']} {item['mount']}) is {state}: "
                     f"{item['why']}; see docs/how-to/adding-a-service.md")  # fmt: skip
    return found


def build(config: ClientConfig, runs: list[dict], waiting: tuple[int, int], now: datetime, host: str,
          found: list[str] | None = None) -> Digest:  # fmt: skip
    """Given the configuration, the run journal (oldest first), the reports and notifications waiting in the
    outboxes, the time, the host's name and the reminders, return the sidecar's digest."""
    backups = [run for run in runs if run.get("kind", "backup") == "backup" and run.get("status") != "skipped"]
    good = [run for run in backups if run.get("status") in GOOD and run.get("finished_at")]
    last = backups[-1] if backups else None
    age = journal.last_success_age(runs, now)
    failed = last is not None and last.get("status") not in GOOD
    stale = age is None or age > status.allowed_age(config, now)  # as the health check
    found = reminders(config) if found is None else found
    lines = [_last_good(good[-1] if good else None, age, stale)]
    if last is not None and last is not (good[-1] if good else None):
        lines.append(f"Last run: {last.get('status')} at {_at(last.get('started_at'))}: {last.get('message')}")
    lines += _sizes(good)
    lines.append(_last_prune(runs))
    lines += _waiting(waiting)
    return Digest(  # one client: its block first, then the reminders
        title=_title(config.client, host, failed, stale, age, len(found), config.digest_cron),
        problems=["\n".join(lines), *(f"Reminder: {line}" for line in found)],
        healthy=[],
        healthy_summary="",
        closing=[digest.next_line(config.digest_cron, now, f"notifications from {config.client} on {host}")],
    )


def _title(
    client: str, host: str, failed: bool, stale: bool, age: timedelta | None, reminders_count: int, schedule: str | None
) -> str:
    """Return the title: whose digest, and the state in a few words (all good only without a reminder)."""
    what = f"{digest.called(schedule)} of {client} on {host}"
    if age is None:
        state = "no good backup yet"
    elif failed:
        state = "the last backup failed"
    elif stale:
        state = f"no good backup for {human_duration(age.total_seconds())}"
    else:
        state = f"backed up {human_duration(age.total_seconds())} ago" + ("" if reminders_count else ", all good")
    if reminders_count:
        state += f", {reminders_count} reminder{'s' if reminders_count != 1 else ''}"
    return f"{what}: {state}"


def _last_good(run: dict | None, age: timedelta | None, stale: bool) -> str:
    if run is None:
        return "There is no good backup of this client yet."
    note = ", later than BACKUP_CRON allows" if stale else ""
    archive = f" ({run['archive']})" if run.get("archive") else ""
    ago = human_duration(age.total_seconds())
    return f"Last good backup{archive} finished {ago} ago{note}, at {_at(run['finished_at'])}."


def _sizes(good: list[dict]) -> list[str]:
    """Return the size lines: the last archive, its change over the journal, the repository's size."""
    sized = [run for run in good if (run.get("stats") or {}).get("original_size") is not None]
    if not sized:
        return []
    newest, oldest = sized[-1], sized[0]
    stats = newest["stats"]
    line = f"Last archive: {human_size(stats['original_size'])}, {stats.get('nfiles', 0)} file(s)"
    if len(sized) > 1:
        change = stats["original_size"] - oldest["stats"]["original_size"]
        sign = "+" if change >= 0 else "-"
        line += f" ({sign}{human_size(abs(change))} since {_at(oldest['finished_at'])[:10]}, {len(sized)} backups)"
    lines = [line + "."]
    repository = stats.get("repository_size")
    if repository is not None:
        lines.append(f"Repository: {human_size(repository)} on the server, deduplicated and compressed.")
    return lines


def _last_prune(runs: list[dict]) -> str:
    prunes = [run for run in runs if run.get("kind") == "prune"]
    if not prunes:
        return "Last prune: none in the journal."
    last = prunes[-1]
    deleted = len(last.get("pruned") or [])
    return f"Last prune: {last.get('status')} at {_at(last.get('started_at'))}, {deleted} archive(s) deleted."


def _waiting(waiting: tuple[int, int]) -> list[str]:
    reports, notifications = waiting
    if not reports and not notifications:
        return []
    return [f"Waiting for delivery: {reports} report(s), {notifications} notification(s) (before this digest)."]


def _at(moment: str | None) -> str:
    if not moment:
        return "an unknown time"
    return datetime.fromisoformat(moment).strftime("%Y-%m-%d %H:%M %Z").strip()


def gather(config: ClientConfig, now: datetime) -> Digest:
    """Given the configuration and the time, return the digest of what the state volume holds now."""
    paths: Paths = config.paths
    waiting = outbox.size(paths.outbox), outbox.size(paths.notify_outbox)
    return build(config, journal.last_runs(paths), waiting, now, socket.gethostname())


def send_if_due(config: ClientConfig, now: datetime) -> None:
    """Send the digest due now (DIGEST_CRON), once per cron time; a state volume that cannot be written is logged.
    A prune service (`prune-schedule`) sends none: the client's backup sidecar does."""
    if config.prune_only:
        return
    try:
        digest.send_if_due(config.paths.digest_record, config.digest_cron, now, config.client,
                           lambda: gather(config, now), config.paths.notify_outbox, config.notify,
                           config.report_timeout)  # fmt: skip
    except OSError as error:
        logger.error("digest: cannot be kept in %s (%s); it is tried again in a minute", config.paths.state, error)


def command_digest(config: ClientConfig, _arguments) -> int:
    """Print the digest now and send it to NOTIFY_URLS now, whatever DIGEST_CRON and NOTIFY_ON say (to check that
    notifications arrive); exit 0 when it was queued, 1 without NOTIFY_URLS."""
    made = gather(config, datetime.now().astimezone())
    return digest.send_now(made, config.client, config.paths.notify_outbox, config.notify, config.report_timeout)
