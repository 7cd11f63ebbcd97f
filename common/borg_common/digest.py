"""The weekly digest both images send (DIGEST_CRON): when it is due, its key, and its body fitted to what a service
shows.

What a digest says is written beside the facts it reads (the server: borg_server/status/digest.py, the sidecar:
borg_client/digest.py); this module says when one is due and keeps it at most once per cron time. The record of
the last digest sent (a small JSON file in the state volume) is what makes a restart not send the same one again,
and a late start after downtime send one digest, for the latest time it missed, not a backlog.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cronsim import CronSim

from borg_common import cron, files, notify
from borg_common.settings import Settings

logger = logging.getLogger(__name__)

SETTING = "DIGEST_CRON"
DEFAULT_CRON = "0 8 * * 1"  # Monday 08:00 (the container's TZ): the start of a working week
OFF = "off"
NOT_SENT = "NOTIFY_URLS is not set, so this digest went nowhere; set it as docs/how-to/notifications.md says"


@dataclass(frozen=True)
class Digest:
    """A digest a person reads: the title, the blocks that need a person (worst first), the healthy ones, the
    line that stands for all the healthy ones when they do not fit, and the closing lines."""

    title: str
    problems: list[str]
    healthy: list[str]
    healthy_summary: str
    closing: list[str] = dataclasses.field(default_factory=list)

    def body(self, limit: int = notify.MAX_BODY) -> str:
        """Return the text: every block if it fits in limit; else every problem and one line for the healthy; else
        the first line of each problem too (a problem is never left out, nor cut in the middle of a line)."""
        closing = "\n".join(self.closing)
        for problems, healthy in (
            (self.problems, self.healthy),
            (self.problems, [self.healthy_summary] if self.healthy else []),
            ([block.split("\n", 1)[0] for block in self.problems], [self.healthy_summary] if self.healthy else []),
        ):
            text = "\n\n".join([*problems, *healthy, *([closing] if closing else [])])
            if len(text) <= limit:
                return text
        return text  # even one line per problem is too long: Message.document cuts the end, never the title

    def message(self, key: str) -> notify.Message:
        """Return the notification of this digest, kept under key (one per cron time, or per command)."""
        return notify.Message("digest", self.title, self.body(), key)


def read(settings: Settings) -> str | None:
    """Given the settings, return DIGEST_CRON (default Monday 08:00), or None for off; record one that is no cron
    expression."""
    expression = settings.string(SETTING, limit=256)
    if expression is None:
        return DEFAULT_CRON
    if expression.strip().lower() in (OFF, "no", "false", "never"):
        return None
    cron.check(settings, SETTING, expression.strip())
    return expression.strip()


def latest_time(expression: str, now: datetime) -> datetime:
    """Given a valid cron expression and an aware time, return the latest time it fired at or before now."""
    # Backwards, cronsim yields times before its start's minute: start a minute on, so that now's own minute counts.
    following_minute = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return next(CronSim(expression, following_minute, reverse=True))


def called(expression: str | None) -> str:
    """Return what a digest on this schedule is called: "weekly digest", "daily digest", … or "digest"."""
    if expression is None:
        return "digest"
    days = cron.period(expression, datetime.now().astimezone()).total_seconds() / 86400
    for name, low, high in (("daily", 1, 1), ("weekly", 7, 7), ("monthly", 28, 31)):
        if low <= days <= high:
            return f"{name} digest"
    return "digest"


def next_line(expression: str | None, now: datetime, what: str) -> str:
    """Return the heartbeat's closing line: when the next digest comes, and what it means if it does not."""
    if expression is None:
        return "DIGEST_CRON is off: no digest comes by itself."
    following = cron.next_times(expression, now, 1)[0]
    return (
        f"The next digest comes {following:%Y-%m-%d %H:%M %Z}".rstrip()
        + f"; if it does not, {what} are not getting through."
    )


def seconds_until(expression: str | None, now: datetime) -> float:
    """Return the seconds from now to DIGEST_CRON's next time (infinite when off): how long a loop may sleep."""
    if expression is None:
        return float("inf")
    return (cron.next_times(expression, now, 1)[0] - now).total_seconds()


def due(expression: str | None, now: datetime, last: str | None) -> datetime | None:
    """Given DIGEST_CRON (None: off), the time and the cron time of the last digest sent (None: none yet), return
    the cron time a digest is due for now, or None.

    Only the latest time at or before now counts: after a week of downtime one digest is sent, not a backlog.
    With no record yet (a new state volume) none is due: the first is the next cron time (record() starts it).
    """
    if expression is None or last is None:
        return None
    latest = latest_time(expression, now)
    return latest if latest > datetime.fromisoformat(last) else None


def key(host: str, when: datetime) -> str:
    """Return the id of the digest of host for the cron time when: the same after a restart, so it is sent once."""
    return f"digest-{host}-{when.isoformat(timespec='minutes')}"


def load(path: Path) -> str | None:
    """Given the record of the last digest, return its cron time (ISO), or None if there is none or it is damaged."""
    try:
        return str(json.loads(files.read_regular(path, 64 * 1024))["last"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as problem:
        logger.warning("digest: its record %s cannot be read (%s); the next digest starts it afresh", path, problem)
        return None


def record(path: Path, when: datetime) -> None:
    """Keep when as the cron time of the last digest sent (or the start of the count on a new state volume)."""
    files.atomic_write(path, json.dumps({"last": when.isoformat(timespec="seconds")}) + "\n", 0o600)


def start(path: Path, expression: str | None, now: datetime) -> None:
    """With DIGEST_CRON set and no record yet, record the latest cron time before now, so that the first digest is
    the next one (a new install does not send one at its first start)."""
    if expression is not None and load(path) is None:
        record(path, latest_time(expression, now))


def send_if_due(
    path: Path, expression: str | None, now: datetime, host: str, make: Callable[[], Digest], directory: Path,
    settings: notify.Notify, timeout: float,
) -> datetime | None:  # fmt: skip
    """Queue and deliver the digest due now, if one is (make builds it), and record its cron time; return the cron
    time sent for, or None. A new record starts the count (start()); NOTIFY_ON without digest sends none.

    The digest is queued before its time is recorded: a kill between the two sends it again rather than never.
    Raise OSError if the outbox or the record cannot be written.
    """
    if expression is None:
        return None
    last = load(path)
    if last is None:
        start(path, expression, now)
        return None
    when = due(expression, now, last)
    if when is None:
        return None
    if settings.wants("digest"):
        notify.queue(directory, make().message(key(host, when)), settings)
        logger.info("digest: the digest for %s is in the outbox", when.isoformat(timespec="minutes"))
    record(path, when)
    notify.flush(directory, settings, timeout)
    return when


def send_now(made: Digest, host: str, directory: Path, settings: notify.Notify, timeout: float) -> int:
    """Print the digest (`borg-server digest`, `borg-client digest`), queue and deliver it to NOTIFY_URLS whatever
    NOTIFY_ON says; return the exit code: 0 when it was queued (delivered, or kept for the next attempt), 1 when
    NOTIFY_URLS is unset."""
    body = made.body()
    print(f"{made.title}\n\n{body}")
    if not settings.urls:
        print(f"digest: {NOT_SENT}", file=sys.stderr)
        return 1
    asked = dataclasses.replace(settings, on=settings.on | {"digest"})
    notify.queue(directory, made.message(f"digest-{host}-{uuid.uuid4().hex}"), asked)
    result = notify.flush(directory, settings, timeout)
    if result is not None and result.pending:
        print("digest: kept in the outbox; it is sent again at the next attempt (see the log above)", file=sys.stderr)
    else:
        print(f"digest: sent to {len(settings.urls)} URL(s) of NOTIFY_URLS", file=sys.stderr)
    return 0
