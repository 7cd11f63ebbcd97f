"""The server's digest (DIGEST_CRON, `borg-server digest`): every client as the status page shows it, in plain text.

The facts are those of `borg-server status --json` and the page (status/facts.py, the size history of
status/history.py); the words for ages, trends and compaction are the page's (status/page.py). One short
block per client, those that need a person first; when they do not all fit in one notification, the healthy
clients become one line (borg_common.digest.Digest). A replica adds its copies' blocks (replica/status.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from borg_common import digest
from borg_common.digest import Digest
from borg_common.values import human_size
from borg_server.records.configuration import ServerConfig
from borg_server.status import facts, history, page
from borg_server.status.facts import ClientStatus, ServerStatus
from borg_server.status.history import History
from borg_server.system.paths import Paths

logger = logging.getLogger(__name__)

Extra = Callable[[], tuple[list[str], list[str]]]  # more blocks: those that need a person, the healthy ones
REPORT_TIMEOUT = 10  # seconds per delivery attempt
LISTED_NAMES = 1500  # characters of healthy clients' names the one line lists before "and N more"


def needs_a_person(status: ClientStatus, now: datetime) -> list[str]:
    """Return why a client needs a person: "stale" or "no backup yet" first, then its open alerts (none: healthy)."""
    reasons = [kind for kind in status.alerts if kind != "stale"]
    kind = page.freshness(status, page.age_now(status, now))
    if kind in ("stale", "never") or "stale" in status.alerts:
        reasons.insert(0, "no backup yet" if kind == "never" else "stale")
    return reasons


def client_block(status: ClientStatus, samples: list[tuple[float, int]], now: datetime) -> str:
    """Return a client's lines: its last backup against MAX_AGE, size and its change since the oldest of samples,
    quota, open alerts, check and compaction."""
    age = page.age_now(status, now)
    reasons = needs_a_person(status, now)
    parts = [", ".join(reasons).upper()] if reasons else []  # a client never backed up has "no backup yet" here
    parts += [f"last backup {page.age_cell(status, age)}"] if age is not None else []
    head = f"{status.client}: {', '.join(parts)}"
    quota = f"{status.quota_used:.0%} of its {human_size(status.quota_bytes)} quota" if status.quota_bytes else (
        "no quota")  # fmt: skip
    check = "never" if status.last_check is None else f"{status.last_check}, {page.shown_time(status.last_check_at)}"
    trend = [*samples, (now.timestamp(), status.repository_bytes)]  # from the oldest sample to the size now
    lines = [
        head,
        f"Size {human_size(status.repository_bytes)} ({page.size_text(trend)}), {quota}",
        *(f"Alert {kind}: {message_of(status, kind)}" for kind in status.alerts if kind != "stale"),  # head says it
        f"Last check: {check}. Compaction: {page.compaction_cell(status)}",
    ]
    return "\n".join(lines)


def message_of(status: ClientStatus, kind: str) -> str:
    """Return an open alert's message without its "client <name>: " prefix (the block names the client)."""
    message = status.alert_messages.get(kind) or kind
    return message.removeprefix(f"client {status.client}: ")


def build(
    name: str,
    clients: list[ClientStatus],
    server: ServerStatus | None,
    history: History,
    now: datetime,
    schedule: str | None,
    extra: tuple[list[str], list[str]] = ([], []),
) -> Digest:
    """Given the server's name, the clients' facts, the server's, the size history, the time and DIGEST_CRON
    (None: off), return the digest; extra are more blocks that need a person and more healthy ones (a replica's
    copies)."""
    ranked = sorted(clients, key=lambda s: (-len(needs_a_person(s, now)), s.client))
    problems = [client_block(s, history.get(s.client, []), now) for s in ranked if needs_a_person(s, now)]
    healthy_names = [s.client for s in ranked if not needs_a_person(s, now)]
    healthy = [client_block(s, history.get(s.client, []), now) for s in ranked if not needs_a_person(s, now)]
    stale = sum(1 for s in clients if needs_a_person(s, now)[:1] in (["stale"], ["no backup yet"]))
    alerts = sum(len([kind for kind in s.alerts if kind != "stale"]) for s in clients)
    if server and server.alerts:
        alerts += len(server.alerts)
        messages = {kind: server.alert_messages.get(kind, kind).removeprefix("server: ") for kind in server.alerts}
        problems.insert(0, "\n".join(f"Server alert {kind}: {message}" for kind, message in messages.items()))
    problems += extra[0]
    healthy += extra[1]
    return Digest(
        title=title(name, len(clients) + len(extra[0]) + len(extra[1]), stale, alerts + len(extra[0]), schedule),
        problems=problems,
        healthy=healthy,
        healthy_summary=healthy_line(healthy_names, len(extra[1])),
        closing=closing(name, server, now, schedule),
    )


def title(name: str, clients: int, stale: int, alerts: int, schedule: str | None) -> str:
    """Return the digest's title: how many clients, how many stale, how many alerts open, on which server."""
    what = digest.called(schedule)
    counted = f"{clients} client{'s' if clients != 1 else ''}"
    if clients == 0 and alerts == 0:
        return f"{what}: no clients on {name}"
    if stale == 0 and alerts == 0:
        return f"{what}: {counted}, all backed up, no alerts on {name}"
    parts = [counted, *([f"{stale} stale"] if stale else []), *([f"{alerts} alert{'s' if alerts != 1 else ''} open"]
             if alerts else [])]  # fmt: skip
    return f"{what}: {', '.join(parts)} on {name}"


def healthy_line(names: list[str], more: int = 0) -> str:
    """Return the one line that stands for every healthy client when their blocks do not fit."""
    count = len(names) + more
    listed, shown = [], 0
    for client in names:
        if shown + len(client) > LISTED_NAMES:
            break
        listed.append(client)
        shown += len(client) + 2
    rest = count - len(listed)
    names_text = ", ".join(listed) + (f" and {rest} more" if rest else "")
    return f"{count} client{'s' if count != 1 else ''} backed up within their limits, no alerts: {names_text}"


def closing(name: str, server: ServerStatus | None, now: datetime, schedule: str | None) -> list[str]:
    """Return the closing lines: the server's disk, when the figures are from, and when the next digest comes."""
    lines = []
    if server is not None:
        lines.append(
            f"Server disk {server.path}: {human_size(server.free_bytes)} free of "
            f"{human_size(server.total_bytes)} ({server.used_ratio:.0%} used)."
        )
    lines.append(f"Figures of {page.shown_time(now.isoformat())}; borg-server status shows them now.")
    lines.append(digest.next_line(schedule, now, f"notifications from {name}"))
    return lines


def gather(config: ServerConfig, paths: Paths, now: datetime, extra: Extra | None = None) -> Digest:
    """Given the configuration, return the digest of the figures now (a replica's: its copies, from extra)."""
    clients = [] if config.replication else facts.collect(config, paths, now)
    return build(config.server_host, clients, facts.server_status(config, paths), history.load(paths.size_history),
                 now, config.digest_cron, extra() if extra else ([], []))  # fmt: skip


def send_if_due(config: ServerConfig, paths: Paths, now: datetime, extra: Extra | None = None) -> None:
    """Send the digest due now (DIGEST_CRON), once per cron time (borg_common.digest); never raises for the disk."""
    try:
        digest.send_if_due(paths.digest_record, config.digest_cron, now, config.server_host,
                           lambda: gather(config, paths, now, extra), paths.notify_outbox, config.notify,
                           REPORT_TIMEOUT)  # fmt: skip
    except OSError as error:
        logger.error("digest: cannot be kept in %s (%s); it is tried again at the next scan", paths.monitor, error)
