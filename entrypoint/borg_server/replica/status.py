"""What a replica shows (`borg-server status`, metrics, the status page's section): per client its last copy, lag,
bytes, held segments, mismatches, alerts and last round; for the replica, its primary and how the rounds reach it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from borg_common import outbox
from borg_common.values import human_duration, human_size
from borg_server.monitor.alerts import REPLICA_ALERTS
from borg_server.records import state_file
from borg_server.records.configuration import ServerConfig
from borg_server.records.replica_state import ReplicaState
from borg_server.replica import alerts as replica_alerts
from borg_server.status import tables
from borg_server.status.page import Section
from borg_server.status.prometheus import family, per_client
from borg_server.system.paths import Paths


@dataclass(frozen=True)
class CopyStatus:
    """One client's copy on this replica."""

    client: str
    last_copy_at: str | None
    lag_s: int | None  # since the last complete copy
    lag_segments: int  # committed segments of the primary not copied, as last seen
    copied_commit: int | None
    primary_commit: int | None
    bytes: int
    held_segments: int
    mismatched_segments: int
    alerts: list[str]
    alert_messages: dict[str, str] = field(default_factory=dict)  # each raised alert's message, as sent
    last_round_at: str | None = None  # the last round that reached the primary
    last_outcome: str | None = None  # what it did for this client


@dataclass(frozen=True)
class PrimaryStatus:
    """The replica's own figures: the primary it pulls from, how the last rounds went, notifications waiting."""

    primary: str  # host:port
    last_round_at: str | None
    failed_rounds: int  # rounds in a row that could not reach the primary
    failing_since: str | None
    last_error: str | None
    alerts: list[str]
    alert_messages: dict[str, str]
    notifications_waiting: int


def collect(paths: Paths, now: datetime | None = None) -> list[CopyStatus]:
    """Return every copy's figures as the replica's state files hold them, the lag measured at now."""
    now = now or datetime.now(UTC)
    result = []
    for name in replica_alerts.known_clients(paths):
        found = state_file.load(paths.monitor_state(name))
        copy = found.replica or ReplicaState()
        since = copy.last_copy_at
        result.append(CopyStatus(
            client=name,
            last_copy_at=since,
            lag_s=int((now - datetime.fromisoformat(since)).total_seconds()) if since else None,
            lag_segments=copy.lag_segments,
            copied_commit=copy.copied_commit,
            primary_commit=copy.primary_commit,
            bytes=copy.bytes,
            held_segments=len(copy.held),
            mismatched_segments=len(copy.mismatch),
            alerts=sorted(found.alerts),
            alert_messages={kind: found.alerts[kind].message for kind in sorted(found.alerts)},
            last_round_at=copy.last_round_at,
            last_outcome=copy.last_outcome,
        ))  # fmt: skip
    return result


def primary_status(server: ServerConfig, paths: Paths) -> PrimaryStatus:
    """Return the primary this replica pulls from (REPLICATE_FROM), how its rounds reach it, and the notifications
    waiting for delivery."""
    contact = replica_alerts.load_contact(paths)
    return PrimaryStatus(
        primary=f"{server.replication.host}:{server.replication.port}",
        last_round_at=contact.last_round_at,
        failed_rounds=contact.failed_rounds,
        failing_since=contact.failing_since,
        last_error=contact.last_error,
        alerts=sorted(contact.alerts),
        alert_messages={kind: contact.alerts[kind].message for kind in sorted(contact.alerts)},
        notifications_waiting=outbox.size(paths.notify_outbox),
    )


def rounds_text(primary: PrimaryStatus) -> str:
    """Return how the last rounds reached the primary, for people."""
    if primary.last_round_at is None:
        return "no round yet"
    if primary.failed_rounds:
        return (f"the last {primary.failed_rounds} round(s) could not reach it (since {primary.failing_since}): "
                f"{primary.last_error}")  # fmt: skip
    return f"the last round reached it at {primary.last_round_at}"


def primary_line(primary: PrimaryStatus) -> str:
    """Return the primary, how the rounds reach it, the replica's own alerts and the notifications waiting."""
    alerts = ",".join(primary.alerts) or "-"
    return (f"PRIMARY {primary.primary}: {rounds_text(primary)}; alerts: {alerts}; "
            f"notifications waiting: {primary.notifications_waiting}")  # fmt: skip


def render(statuses: list[CopyStatus], as_json: bool = False, primary: PrimaryStatus | None = None) -> str:
    """Return the copies as a table (or JSON); with primary, its line follows the table.

    JSON with primary is {"primary": ..., "clients": [...]}; without, the list of copies alone (as before).
    """
    if as_json:
        copies = [asdict(s) for s in statuses]
        return json.dumps(copies if primary is None else {"primary": asdict(primary), "clients": copies}, indent=1)
    table = render_table(statuses)
    return table if primary is None else f"{table}\n\n{primary_line(primary)}"


def render_table(statuses: list[CopyStatus]) -> str:
    """Return the copies as an aligned table, or what to do when there is none yet."""
    rows = [("CLIENT", "LAST COPY", "LAG", "LAG SEGMENTS", "COMMIT (PRIMARY)", "BYTES", "HELD", "MISMATCHED",
             "ALERTS")]  # fmt: skip
    for s in statuses:
        lag = human_duration(s.lag_s) if s.lag_s is not None else "never copied"
        commit = f"{s.copied_commit} ({s.primary_commit})"
        rows.append((s.client, s.last_copy_at or "-", lag, str(s.lag_segments), commit, str(s.bytes),
                     str(s.held_segments), str(s.mismatched_segments), ",".join(s.alerts) or "-"))  # fmt: skip
    if len(rows) == 1:
        return "no copy yet: the replica has not reached its primary (borg-server replicate copies now)"
    return tables.render(rows)


REPLICA_METRICS = (  # name, help, value of a CopyStatus (None: no sample)
    ("last_copy_timestamp_seconds", "When the client's copy was last brought up to the primary's commit.",
     lambda s: datetime.fromisoformat(s.last_copy_at).timestamp() if s.last_copy_at else None),
    ("lag_seconds", "Seconds since the client's last complete copy.", lambda s: s.lag_s),
    ("lag_segments", "Committed segments of the primary not copied yet.", lambda s: s.lag_segments),
    ("bytes", "Bytes of the client's copied segments.", lambda s: s.bytes),
    ("held_segments", "Segments removed on the primary, kept for now.", lambda s: s.held_segments),
    ("mismatched_segments", "Copied segments that differ on the primary.", lambda s: s.mismatched_segments),
)  # fmt: skip


def section(statuses: list[CopyStatus], primary: PrimaryStatus) -> Section:
    """Return the status page's part of a replica: its primary and rounds, then per copy its lag, mismatches
    with their messages, and the last round's outcome."""
    lines = (f"This server is a replica: it pulls every client's committed segments from {primary.primary}; "
             f"{rounds_text(primary)}.",)  # fmt: skip
    if primary.alerts:
        lines += tuple(f"{kind}: {message}" for kind, message in primary.alert_messages.items())
    rows = []
    for s in statuses:
        behind = "never copied" if s.lag_s is None else f"last complete copy {human_duration(s.lag_s)} ago"
        if s.lag_segments:
            behind += f"; {s.lag_segments} segment(s) of the primary not copied yet"
        commit = f"{s.copied_commit} (primary {s.primary_commit})"
        mismatch = f"{s.mismatched_segments} segment(s)" if s.mismatched_segments else "none"
        last = "no round yet" if s.last_round_at is None else f"{s.last_round_at}: {s.last_outcome}"
        rows.append((s.client, (s.client, behind, commit, mismatch, s.alert_messages, last)))
    attention = tuple(f"{s.client} ({', '.join(s.alerts)})" for s in statuses if s.alerts)
    attention += (f"the replica ({', '.join(primary.alerts)})",) if primary.alerts else ()
    return Section(
        key="replica",
        title=f"Copies from the primary {primary.primary}",
        lines=lines,
        headings=("Client", "Lag", "Commit", "Mismatches", "Open alerts", "Last round"),
        rows=tuple(rows),
        document={"primary": asdict(primary), "copies": [asdict(s) for s in statuses]},
        attention=attention,
        empty="No copy yet: the replica has not reached its primary (borg-server replicate copies now).",
    )


def metrics(paths: Paths) -> str:
    """Return the copies' figures as Prometheus text."""
    lines: list[str] = []
    per_client(lines, "replica", REPLICA_METRICS, collect(paths), REPLICA_ALERTS)
    contact = replica_alerts.load_contact(paths)
    family(lines, "replica_primary_failed_rounds", "Replication rounds in a row that could not reach the primary.",
           [("", contact.failed_rounds)])  # fmt: skip
    raised = int(replica_alerts.UNREACHABLE in contact.alerts)
    family(lines, "replica_server_alert", "1 while the replica's own alert of the server is raised.",
           [(f'{{alert="{replica_alerts.UNREACHABLE}"}}', raised)])  # fmt: skip
    family(
        lines,
        "replica_outbox_reports",
        "Alert reports waiting for delivery.",
        [("", outbox.size(paths.monitor_outbox))],
    )
    family(lines, "replica_outbox_notifications", "Notifications waiting in the outbox for delivery to NOTIFY_URLS.",
           [("", outbox.size(paths.notify_outbox))])  # fmt: skip
    return "\n".join(lines) + "\n"


def digest_blocks(paths: Paths, max_lag: int, now: datetime | None = None) -> tuple[list[str], list[str]]:
    """Return the copies' blocks for the digest (status/digest.py): those with an open alert (lag, mismatches),
    worst first, and the others."""
    problems, healthy = [], []
    for copy in sorted(collect(paths, now), key=lambda s: (-len(s.alerts), s.client)):
        messages = {
            kind: alert.message for kind, alert in state_file.load(paths.monitor_state(copy.client)).alerts.items()
        }
        lag = "never copied" if copy.lag_s is None else f"last complete copy {human_duration(copy.lag_s)} ago"
        lines = [
            f"{copy.client} (copy): {', '.join(copy.alerts).upper() + ', ' if copy.alerts else ''}{lag} "
            f"(REPLICA_MAX_LAG {human_duration(max_lag)}), {copy.lag_segments} segment(s) behind",
            f"{human_size(copy.bytes)} copied; {copy.held_segments} segment(s) held, "
            f"{copy.mismatched_segments} differ on the primary",
            *(
                f"Alert {kind}: {messages.get(kind, kind).removeprefix(f'client {copy.client}: ')}"
                for kind in copy.alerts
            ),
        ]
        (problems if copy.alerts else healthy).append("\n".join(lines))
    return problems, healthy
