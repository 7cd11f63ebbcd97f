"""A replica's alerts per client: replica_mismatch and replica_lag, raised and cleared through monitor/alerts.py,
and shipped.

Every round (scheduled or `borg-server replicate`) and every look of the replicator between rounds
updates them; ship() delivers what waits in the outbox to REPORT_URLS, so an alert a manual round
raises reaches the receivers when the command ends, as a scheduled round's does.
"""

from __future__ import annotations

import fcntl
from datetime import UTC, datetime

from borg_common import files, reports
from borg_common.settings import CLIENT_NAME
from borg_server.monitor import alerts
from borg_server.records import state_file
from borg_server.records.client_state import ClientState
from borg_server.records.configuration import ServerConfig
from borg_server.records.replica_state import ReplicaState
from borg_server.system.paths import Paths

REPORT_TIMEOUT, REPORT_BUDGET = 10, 20  # seconds per delivery attempt, and in all per shipping


def conditions(name: str, found: ClientState, now: datetime, max_lag: int) -> dict[str, tuple[str, dict]]:
    """Given a client's copy, return the replica's conditions that hold: replica_mismatch, replica_lag."""
    active = {}
    replica = found.replica or ReplicaState()
    if replica.mismatch:
        listed = ", ".join(f"{n} {kind}" for n, kind in sorted(replica.mismatch.items()))
        active["replica_mismatch"] = (
            f"client {name}: committed segments differ on the primary ({listed}); the replica keeps its copies "
            f"and copies none of them (borg-server replicate --accept {name} takes the primary's)",
            {
                "segments": {str(n): kind for n, kind in sorted(replica.mismatch.items())},
                "count": len(replica.mismatch),
            },
        )
    since = replica.last_copy_at or found.first_seen
    lag = (now - datetime.fromisoformat(since)).total_seconds()
    if lag > max_lag:
        active["replica_lag"] = (
            f"client {name}: the replica's copy is {alerts.human_duration(lag)} behind (REPLICA_MAX_LAG "
            f"{alerts.human_duration(max_lag)}); last complete copy {replica.last_copy_at or 'never'}",
            {"last_copy_at": replica.last_copy_at, "lag_s": int(lag), "lag_segments": replica.lag_segments,
             "max_lag_s": max_lag},
        )  # fmt: skip
    return active


def emit_alerts(server: ServerConfig, paths: Paths, name: str, found: ClientState, now: datetime) -> None:
    """Update and emit the client's replica alerts (under its state lock): printed, and put in the outbox."""
    active = conditions(name, found, now, server.replication.max_lag)
    documents = alerts.transitions(found, active, name, server.server_host, now.isoformat(timespec="seconds"))
    alerts.emit(documents, paths.monitor_outbox, server.report_urls)


def known_clients(paths: Paths) -> list[str]:
    """Return the clients this replica has a copy (a state file) of."""
    directory = paths.monitor_state("x").parent
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.json") if CLIENT_NAME.match(p.stem))


def watch_lag(server: ServerConfig, paths: Paths) -> None:
    """Raise or clear replica_lag for every copy (also while the primary cannot be reached)."""
    for name in known_clients(paths):
        with state_file.locked(paths.monitor_state(name)) as found:
            emit_alerts(server, paths, name, found, datetime.now(UTC))


def ship(server: ServerConfig, paths: Paths, wait: bool = True) -> None:
    """Deliver the alerts waiting in the outbox to REPORT_URLS, one shipper at a time (the replicator and a manual
    round); without wait, leave it to the one shipping now. What cannot be delivered waits for the next time."""
    if not server.report_urls:
        return
    with files.open_lock(paths.replica_outbox_lock) as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return
        reports.flush(paths.monitor_outbox, server.report_urls, REPORT_TIMEOUT, REPORT_BUDGET)
