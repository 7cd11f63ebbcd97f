"""What a replica shows per client (`borg-server status`, metrics): last copy, lag, bytes, held, mismatches, alerts."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from borg_common import outbox
from borg_common.values import human_duration, human_size
from borg_server.monitor.alerts import REPLICA_ALERTS
from borg_server.records import state_file
from borg_server.records.replica_state import ReplicaState
from borg_server.replica import alerts as replica_alerts
from borg_server.status import tables
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


def collect(paths: Paths, now: datetime | None = None) -> list[CopyStatus]:
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
        ))  # fmt: skip
    return result


def render(statuses: list[CopyStatus], as_json: bool = False) -> str:
    """Return the copies as a table (or JSON)."""
    if as_json:
        return json.dumps([asdict(s) for s in statuses], indent=1)
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
