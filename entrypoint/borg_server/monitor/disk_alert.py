"""The server's `disk` alert: the repositories' file system is nearly full, or too full for the next backup.

It is raised when the file system is DISK_ALERT_USED full (default 90%) or when less is free than
the largest last backup of any client added: the bytes of the segments its last writing session
committed (the audit record's committed range, measured when the monitor reads the record). The
alert is the server's own (its "client" is null) and goes through the same transitions and outbox
as the clients' alerts; its state lives in the monitor's server.json.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from borg_common import files
from borg_common.files import atomic_write
from borg_common.values import human_size
from borg_server.monitor import alerts
from borg_server.records.client_state import RaisedAlert
from borg_server.records.state_file import now_text
from borg_server.repository import audit_log, segments
from borg_server.repository.disk_space import DiskUsage

logger = logging.getLogger(__name__)

LABEL = "repositories' disk nearly full"


@dataclass
class ServerState:
    """What the monitor keeps about the server itself: its raised alerts, each client's last backup size."""

    alerts: dict[str, RaisedAlert] = field(default_factory=dict)
    added: dict[str, int] = field(default_factory=dict)  # client -> bytes its last backup committed


def load(path: Path) -> ServerState:
    """Given the server state file, return its state (a new one if missing or damaged)."""
    try:
        document = json.loads(files.read_regular(path).decode(errors="replace"))
        return ServerState(
            alerts={kind: RaisedAlert(**alert) for kind, alert in document.get("alerts", {}).items()},
            added={str(name): int(size) for name, size in document.get("added", {}).items()},
        )
    except FileNotFoundError:
        return ServerState()
    except (OSError, ValueError, TypeError, AttributeError) as error:
        logger.error("monitor state %s is damaged (%s); starting afresh", path, error)
        return ServerState()


@contextlib.contextmanager
def locked(path: Path) -> Iterator[ServerState]:
    """Hold the server state's lock; yield the state and save it afterwards."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with files.held_lock(path.with_suffix(".lock")):
        found = load(path)
        yield found
        document = {"alerts": {kind: vars(alert) for kind, alert in found.alerts.items()}, "added": found.added}
        atomic_write(path, json.dumps(document, indent=1, sort_keys=True), 0o600)


def committed_bytes(repository: Path, before: int | None, after: int | None) -> int:
    """Given a repository and a session's committed range, return the bytes of the segments in (before, after]."""
    if after is None:
        return 0
    low = -1 if before is None else before
    return sum(
        path.stat().st_size for number, path in segments.segment_files(repository).items() if low < number <= after
    )


def last_added(records: list[dict], client: str, repository: Path) -> int | None:
    """Given new session records, return what the client's last writing session committed (None: none wrote)."""
    wrote = [r for r in records if r.get("client") == client and audit_log.wrote(r) and "committed_after" in r]
    if not wrote:
        return None
    last = max(wrote, key=lambda r: str(r.get("finished_at")))
    return committed_bytes(repository, last.get("committed_before"), last.get("committed_after"))


def conditions(usage: DiskUsage, alert_used: float, added: dict[str, int]) -> dict[str, tuple[str, dict]]:
    """Given the disk's figures, DISK_ALERT_USED and each client's last backup size, return the disk condition."""
    largest = max(added.items(), key=lambda item: item[1], default=(None, 0))
    details = {"path": usage.path, "free_bytes": usage.free_bytes, "total_bytes": usage.total_bytes,
               "used_ratio": usage.used_ratio, "largest_last_backup_bytes": largest[1],
               "largest_client": largest[0]}  # fmt: skip
    free = f"{human_size(usage.free_bytes)} free of {human_size(usage.total_bytes)}"
    if usage.used_ratio >= alert_used:
        message = f"server: {usage.path} is {usage.used_ratio:.0%} full ({free}; DISK_ALERT_USED {alert_used:.0%})"
        return {"disk": (message, details)}
    if largest[0] is not None and usage.free_bytes < largest[1]:
        message = (
            f"server: {usage.path} has {free}, less than the last backup of client {largest[0]} added "
            f"({human_size(largest[1])}); its next backup may not fit"
        )
        return {"disk": (message, details)}
    return {}


def watch(path: Path, usage: DiskUsage, alert_used: float, added: dict[str, int | None], server: str) -> list[dict]:
    """Record the clients' new backup sizes, update the disk alert; return the alert documents to emit."""
    with locked(path) as found:
        found.added |= {name: size for name, size in added.items() if size is not None}
        active = conditions(usage, alert_used, found.added)
        documents = alerts.transitions(found, active, None, server, now_text())
    for document in documents:
        if document["state"] == "cleared":
            document["message"] = f"server: cleared: {LABEL}"
    return documents
