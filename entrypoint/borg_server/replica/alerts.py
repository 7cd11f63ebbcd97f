"""A replica's alerts: per client replica_mismatch and replica_lag, and the server's replica_unreachable (the
primary could not be reached in UNREACHABLE_ROUNDS rounds in a row), raised and cleared through monitor/alerts.py,
and shipped.

Every round (scheduled or `borg-server replicate`) and every look of the replicator between rounds
updates them; ship() delivers what waits in the outbox to REPORT_URLS, so an alert a manual round
raises reaches the receivers when the command ends, as a scheduled round's does.
"""

from __future__ import annotations

import fcntl
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from borg_common import files, notify, reports
from borg_common.settings import CLIENT_NAME
from borg_common.values import human_duration
from borg_server.monitor import alerts
from borg_server.records import state_file
from borg_server.records.client_state import ClientState, RaisedAlert
from borg_server.records.configuration import ServerConfig
from borg_server.records.replica_state import ReplicaState
from borg_server.system.paths import Paths

logger = logging.getLogger(__name__)

REPORT_TIMEOUT, REPORT_BUDGET = 10, 20  # seconds per delivery attempt, and in all per shipping
UNREACHABLE = "replica_unreachable"  # the replica's alert of the server itself (its "client" is null)
UNREACHABLE_LABEL = "the replica cannot reach its primary"
UNREACHABLE_ROUNDS = 3  # rounds in a row that cannot reach the primary before replica_unreachable is raised


@dataclass
class PrimaryContact:
    """How the last rounds went at reaching the primary: failed rounds in a row, since when, the last error."""

    failed_rounds: int = 0
    failing_since: str | None = None
    last_error: str | None = None
    alerts: dict[str, RaisedAlert] = field(default_factory=dict)
    last_round_at: str | None = None  # when the last round ended (reaching the primary or not)


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
            f"client {name}: the replica's copy is {human_duration(lag)} behind (REPLICA_MAX_LAG "
            f"{human_duration(max_lag)}); last complete copy {replica.last_copy_at or 'never'}",
            {"last_copy_at": replica.last_copy_at, "lag_s": int(lag), "lag_segments": replica.lag_segments,
             "max_lag_s": max_lag},
        )  # fmt: skip
    return active


def emit_alerts(server: ServerConfig, paths: Paths, name: str, found: ClientState, now: datetime) -> None:
    """Update and emit the client's replica alerts (under its state lock): printed, and put in the outbox."""
    active = conditions(name, found, now, server.replication.max_lag)
    documents = alerts.transitions(found, active, name, server.server_host, now.isoformat(timespec="seconds"))
    alerts.emit(documents, server, paths)


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


def load_contact(paths: Paths) -> PrimaryContact:
    """Return the replica's record of reaching its primary (a new one if missing or damaged)."""
    try:
        document = json.loads(files.read_regular(paths.replica_primary_state).decode(errors="replace"))
        raised = {kind: RaisedAlert(**alert) for kind, alert in document.pop("alerts", {}).items()}
        return PrimaryContact(**document, alerts=raised)
    except FileNotFoundError:
        return PrimaryContact()
    except (OSError, ValueError, TypeError, AttributeError) as error:
        logger.error("replica state %s is damaged (%s); starting afresh", paths.replica_primary_state, error)
        return PrimaryContact()


def unreachable(server: ServerConfig, contact: PrimaryContact) -> dict[str, tuple[str, dict]]:
    """Given the record of the last rounds, return the replica_unreachable condition if it holds."""
    if contact.failed_rounds < UNREACHABLE_ROUNDS:
        return {}
    where = f"{server.replication.host}:{server.replication.port}"
    message = (
        f"server: the replica could not reach its primary {where} in {contact.failed_rounds} replication rounds in a "
        f"row (since {contact.failing_since}): {contact.last_error}; the copies stay as they were. Check that the "
        "primary runs and that this replica reaches it (REPLICATE_FROM), then run borg-server replicate"
    )
    details = {"primary": where, "failed_rounds": contact.failed_rounds, "failing_since": contact.failing_since,
               "error": contact.last_error}  # fmt: skip
    return {UNREACHABLE: (message, details)}


def watch_primary(server: ServerConfig, paths: Paths, error: str | None, now: datetime) -> None:
    """Record whether this round reached the primary (error: why not), raise or clear replica_unreachable."""
    moment = now.isoformat(timespec="seconds")
    paths.replica_primary_state.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with files.held_lock(paths.replica_primary_state.with_suffix(".lock")):
        contact = load_contact(paths)
        contact.last_round_at = moment
        if error is None:
            contact.failed_rounds, contact.failing_since, contact.last_error = 0, None, None
        else:
            contact.failed_rounds += 1
            contact.failing_since = contact.failing_since or moment
            contact.last_error = error
        documents = alerts.transitions(contact, unreachable(server, contact), None, server.server_host, moment)
        for document in documents:
            if document["state"] == "cleared":
                document["message"] = f"server: cleared: {UNREACHABLE_LABEL}"
        alerts.emit(documents, server, paths)
        record = vars(contact) | {"alerts": {kind: vars(alert) for kind, alert in contact.alerts.items()}}
        files.atomic_write(paths.replica_primary_state, json.dumps(record, indent=1, sort_keys=True), 0o600)


def ship(server: ServerConfig, paths: Paths, wait: bool = True) -> None:
    """Deliver the alerts waiting in the outbox to REPORT_URLS, one shipper at a time (the replicator and a manual
    round); without wait, leave it to the one shipping now. What cannot be delivered waits for the next time."""
    if not server.report_urls and not server.notify.urls:
        return
    with files.open_lock(paths.replica_outbox_lock) as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return
        reports.flush(paths.monitor_outbox, server.report_urls, REPORT_TIMEOUT, REPORT_BUDGET)
        notify.flush(paths.notify_outbox, server.notify, REPORT_TIMEOUT, REPORT_BUDGET)
