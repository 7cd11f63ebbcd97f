"""The status page (STATUS_PORT): every client's figures as one HTML page with inline SVG, and as /status.json.

The facts are those of `borg-server status` (status/facts.py), taken by the monitor after each scan, plus
the size history (status/history.py); the page computes only the ages, against the time it is asked.
A layer above this one adds its own part as a Section (a replica's copies: replica/status.py), so the page
knows how to show a table, never what a replica is. Nothing here runs JavaScript or takes an action.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from borg_common.values import human_duration, human_size
from borg_server.records.configuration import ServerConfig
from borg_server.status import history
from borg_server.status.facts import ClientStatus, ServerStatus
from borg_server.status.history import History
from borg_server.status.metrics import Latest

DUE_SHARE = 0.75  # past this share of MAX_AGE the age is shown as due (amber), past MAX_AGE as stale (red)
CHART_WIDTH, CHART_HEIGHT = 120, 28


Cell = str | dict[str, str]  # a Section's cell: plain text, or alerts (kind -> message; empty: "none")


@dataclass(frozen=True)
class Section:
    """A part of the page another layer adds: a heading, sentences, a table with one row per item, its place in
    /status.json, and what in it needs a person (for the page's first sentence)."""

    key: str  # its id on the page and its key in /status.json
    title: str
    lines: tuple[str, ...]  # sentences under the heading
    headings: tuple[str, ...]
    rows: tuple[tuple[str, tuple[Cell, ...]], ...]  # (row id, cells), one cell per heading
    document: dict  # what /status.json has under key
    attention: tuple[str, ...] = ()  # e.g. "app (replica_mismatch)"
    empty: str = "nothing yet"  # said instead of an empty table


@dataclass(frozen=True)
class Snapshot:
    """What the page shows: the server's name, the facts after a scan (Unix time), the size history, and the
    sections another layer adds; source says what took the figures."""

    server_name: str
    scanned_at: float | None = None
    monitor_interval: int | None = None
    clients: list[ClientStatus] = field(default_factory=list)
    server: ServerStatus | None = None
    history: History = field(default_factory=dict)
    sections: tuple[Section, ...] = ()
    source: str = "the monitor's scan"


class Board(Latest[Snapshot]):
    """The last snapshot, shared between the monitor thread and the page's HTTP server."""


def publish(board: Board, path: Path, config: ServerConfig, found: tuple[list[ClientStatus], ServerStatus],
            scanned_at: float) -> None:  # fmt: skip
    """Add the clients' sizes to the history at path and show the facts found by a scan at scanned_at."""
    clients, server = found
    sizes = history.record(path, {status.client: status.repository_bytes for status in clients}, scanned_at)
    board.update(Snapshot(config.server_host, scanned_at, config.monitor_interval, clients, server, sizes))


def age_now(status: ClientStatus, now: datetime) -> int | None:
    """Return the seconds since the client's last backup ended, at now (None: never backed up)."""
    if status.last_backup is None:
        return None
    return max(0, int((now - datetime.fromisoformat(status.last_backup)).total_seconds()))


def freshness(status: ClientStatus, age: int | None) -> str:
    """Return how the age compares with the client's MAX_AGE: fresh, due, stale or never."""
    if age is None:
        return "never"
    if status.max_age_s is None or age <= status.max_age_s * DUE_SHARE:
        return "fresh"
    return "due" if age <= status.max_age_s else "stale"


def trend(samples: list[tuple[float, int]]) -> dict:
    """Given a client's size samples, return the change from the oldest to the newest and since when."""
    if len(samples) < 2:
        return {"since": None, "change_bytes": 0}
    return {"since": iso(samples[0][0]), "change_bytes": samples[-1][1] - samples[0][1]}


def document(snapshot: Snapshot, now: datetime) -> dict:
    """Given a snapshot and the time, return /status.json: the facts of status --json, ages now, the history."""
    clients = []
    for status in snapshot.clients:
        age = age_now(status, now)
        samples = snapshot.history.get(status.client, [])
        clients.append(
            asdict(status)
            | {"age_s": age, "freshness": freshness(status, age), "size_trend": trend(samples)}
            | {"size_history": [[iso(t), size] for t, size in samples]}
        )
    return {
        "server_name": snapshot.server_name,
        "generated_at": now.isoformat(timespec="seconds"),
        "scanned_at": iso(snapshot.scanned_at) if snapshot.scanned_at else None,
        "server": asdict(snapshot.server) if snapshot.server else None,
        "clients": clients,
    } | {section.key: section.document for section in snapshot.sections}


def render_json(snapshot: Snapshot, now: datetime) -> str:
    return json.dumps(document(snapshot, now), indent=2) + "\n"


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


def shown_time(moment: str | None) -> str:
    """Return an ISO time as people read it ("2026-12-05 03:01 UTC"), or "never"."""
    if moment is None:
        return "never"
    return datetime.fromisoformat(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def age_cell(status: ClientStatus, age: int | None) -> str:
    """Return the last backup's age for people, against MAX_AGE."""
    limit = human_duration(status.max_age_s) if status.max_age_s is not None else None
    if age is None:
        return "no backup yet"
    if freshness(status, age) == "stale":
        return f"{human_duration(age)} ago, over the {limit} limit"
    return f"{human_duration(age)} ago" + (f", limit {limit}" if limit else "")


def size_text(samples: list[tuple[float, int]]) -> str:
    """Return the size's change over the history ("+1.2 MB since 2026-11-05"), or "no trend yet"."""
    change = trend(samples)
    if change["since"] is None:
        return "no trend yet"
    sign = "+" if change["change_bytes"] >= 0 else "-"
    return f"{sign}{human_size(abs(change['change_bytes']))} since {change['since'][:10]}"


def chart(samples: list[tuple[float, int]], label: str) -> str:
    """Return a small inline SVG line of the sizes over their time span (empty below two samples)."""
    if len(samples) < 2:
        return ""
    (t0, t1), sizes = (samples[0][0], samples[-1][0]), [size for _, size in samples]
    low, high = min(sizes), max(sizes)
    span_t, span_b = (t1 - t0) or 1, (high - low) or 1
    xs = [(t - t0) / span_t * (CHART_WIDTH - 2) + 1 for t, _ in samples]
    ys = [CHART_HEIGHT - 1 - (b - low) / span_b * (CHART_HEIGHT - 2) for b in sizes]
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    return (
        f'<svg class="chart" width="{CHART_WIDTH}" height="{CHART_HEIGHT}" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}"'
        f' role="img" aria-label="{escape(label)}"><polyline fill="none" stroke="currentColor" stroke-width="1.5"'
        f' points="{points}"/></svg>'
    )


def compaction_cell(status: ClientStatus) -> str:
    """Return the client's compaction state for people: off, held (why), when next, and the last one."""
    if status.auto_compact is None:
        state = "by the client (not append-only)"
    elif status.auto_compact == "off":
        state = "by hand only"
    elif status.compaction_blocked:
        state = f"held: {status.compaction_blocked}"
    elif status.pending_admin_deletes and status.next_compaction_at:
        state = f"{status.pending_admin_deletes} admin delete(s), not before {shown_time(status.next_compaction_at)}"
    else:
        state = "nothing to compact"
    if status.last_compaction_at is None:
        return state
    freed = (
        ""
        if status.last_compaction_freed_bytes is None
        else f", freed {human_size(status.last_compaction_freed_bytes)}"
    )
    return f"{state}; last {shown_time(status.last_compaction_at)}{freed}"


def alerts_cell(messages: dict[str, str], kinds: list[str]) -> str:
    if not kinds:
        return "none"
    items = "".join(f"<li><b>{escape(kind)}</b>: {escape(messages.get(kind, ''))}</li>" for kind in kinds)
    return f'<ul class="alerts">{items}</ul>'


def row(status: ClientStatus, samples: list[tuple[float, int]], now: datetime) -> str:
    age = age_now(status, now)
    quota = f"{status.quota_used:.0%} of {human_size(status.quota_bytes)}" if status.quota_bytes else "no quota"
    check = "never" if status.last_check is None else f"{status.last_check}, {shown_time(status.last_check_at)}"
    size = human_size(status.repository_bytes)
    cells = (
        ("Client", f"<b>{escape(status.client)}</b>"),
        ("Last backup", f'<span class="age {freshness(status, age)}">{escape(age_cell(status, age))}</span>'),
        ("Size", f"{size} {chart(samples, f'size of {status.client} over 30 days')}"
                 f'<br><small>{escape(size_text(samples))}</small>'),
        ("Quota", escape(quota)),
        ("Open alerts", alerts_cell(status.alert_messages, status.alerts)),
        ("Last check", f'<span class="check {status.last_check or "never"}">{escape(check)}</span>'),
        ("Compaction", escape(compaction_cell(status))),
    )  # fmt: skip
    tds = "".join(f'<td data-label="{label}">{content}</td>' for label, content in cells)
    return f'<tr id="client-{escape(status.client)}" class="{"alerting" if status.alerts else ""}">{tds}</tr>'


def summary(snapshot: Snapshot, now: datetime) -> str:
    """Return the page's first sentence: all is well, or which clients need a person and why."""
    attention = []
    for status in snapshot.clients:
        reasons = list(status.alerts)
        kind = freshness(status, age_now(status, now))
        if kind in ("stale", "never") and "stale" not in reasons:
            reasons.insert(0, "no backup yet" if kind == "never" else "stale")
        if reasons:
            attention.append(f"{status.client} ({', '.join(reasons)})")
    attention += [item for section in snapshot.sections for item in section.attention]
    server_alerts = snapshot.server.alerts if snapshot.server else []
    if not attention and not server_alerts:
        if not snapshot.clients and snapshot.sections:
            return "No open alerts."
        count = len(snapshot.clients)
        return f"All {count} client{'s' if count != 1 else ''} backed up within their limits; no open alerts."
    parts = [f"Needs attention: {'; '.join(attention)}."] if attention else []
    parts += [f"Server alert: {', '.join(server_alerts)}."] if server_alerts else []
    return " ".join(parts)


def server_section(server: ServerStatus | None) -> str:
    if server is None:
        return ""
    disk = (
        f"{human_size(server.free_bytes)} free of {human_size(server.total_bytes)} ({server.used_ratio:.0%} used), "
        f"{human_size(server.reserve_bytes)} kept for clean-up"
    )
    waiting = f"{server.notifications_waiting} waiting in the outbox for delivery"
    return (
        f'<section id="server"><h2>Server disk</h2><p>{escape(server.path)}: {escape(disk)}</p>'
        f"<p>Server alerts: {alerts_cell(server.alert_messages, server.alerts)}</p>"
        f"<p>Notifications: {waiting}</p></section>"
    )


def cell(content: Cell) -> str:
    """Return a Section's cell as HTML: text escaped, alerts as a list with their messages."""
    return alerts_cell(content, sorted(content)) if isinstance(content, dict) else escape(content)


def section_html(section: Section) -> str:
    """Return a Section: its heading, its sentences, and its table (or what it says when it has no rows)."""
    head = f'<section id="{escape(section.key)}"><h2>{escape(section.title)}</h2>'
    head += "".join(f"<p>{escape(line)}</p>" for line in section.lines)
    if not section.rows:
        return f"{head}<p>{escape(section.empty)}</p></section>"
    heads = "".join(f"<th>{escape(h)}</th>" for h in section.headings)
    rows = "".join(
        f'<tr id="{escape(section.key)}-{escape(name)}">'
        + "".join(f'<td data-label="{escape(h)}">{cell(c)}</td>' for h, c in zip(section.headings, cells, strict=True))
        + "</tr>"
        for name, cells in section.rows
    )
    return f"{head}<table><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table></section>"


STYLE = """
body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;max-width:78rem;padding:1rem;color:#1b1b1b;background:#fff}
h1{font-size:1.3rem;margin:0 0 .3rem}h2{font-size:1.1rem;margin:1.2rem 0 .3rem}
.meta{color:#555;margin:0 0 .8rem}.summary{font-weight:600;padding:.5rem .7rem;border-radius:4px;background:#eef6ee}
.summary.attention{background:#fdecea}
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;padding:.45rem .5rem;
border-bottom:1px solid #ddd}th{background:#f3f3f3}
tr.alerting{background:#fff8f7}.age,.check{font-weight:600}.fresh,.ok{color:#1a7f37}.due{color:#9a6700}
.stale,.never,.failed{color:#c62828}.check.never{color:#555}td{overflow-wrap:anywhere}.chart{vertical-align:middle;color:#3463a8}ul.alerts{margin:0;padding-left:1.1rem}
small{color:#555}
@media (max-width:44rem){thead{display:none}table,tbody,tr,td{display:block}tr{border:1px solid #ddd;
border-radius:4px;margin:0 0 .8rem}td{border:0;padding:.25rem .6rem}td::before{content:attr(data-label) ": ";
color:#555;font-weight:600}}
"""


def render_html(snapshot: Snapshot, now: datetime) -> str:
    """Given a snapshot and the time, return the status page."""
    title = f"Backups on {snapshot.server_name}"
    if snapshot.scanned_at is None:
        body = "<p class=summary>The monitor has not finished its first scan yet; this page fills in after it.</p>"
    else:
        every = f" (it scans every {human_duration(snapshot.monitor_interval)})" if snapshot.monitor_interval else ""
        attention = "" if summary(snapshot, now).startswith("All ") else " attention"
        heads = "".join(
            f"<th>{h}</th>"
            for h in ("Client", "Last backup", "Size", "Quota", "Open alerts", "Last check", "Compaction")
        )
        rows = "".join(row(s, snapshot.history.get(s.client, []), now) for s in snapshot.clients)
        table = f"<table><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>"
        if not snapshot.clients and snapshot.sections:
            table = ""  # a replica: its clients are its copies, shown in its section
        sections = "".join(section_html(section) for section in snapshot.sections)
        body = (
            f'<p class="summary{attention}">{escape(summary(snapshot, now))}</p>'
            f'<p class="meta">Figures from {escape(snapshot.source)} at {shown_time(iso(snapshot.scanned_at))}{every}; '
            f'ages as of {shown_time(now.isoformat())}. Also as <a href="status.json">status.json</a>.</p>'
            f"{table}{sections}{server_section(snapshot.server)}"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>\n"
    )
