"""Automatic compaction of admin deletes: what the monitor keeps about it, and the decision when it may run.

A client's deletes compact by themselves (AUTO_COMPACT=admin) only when every delete not acknowledged
was written by the client's admin sessions, nothing is tampered, no manifest shrank, the last check did
not fail, and the newest of them (or the newest acknowledgement) is COMPACT_DELAY old: time to read the
deletes alert first.
decide() is pure: the monitor (auto_compact.py) gathers its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

ADMIN = "admin"


@dataclass(frozen=True)
class Compacted:
    """The client's last compaction: when it ended, its sizes, who started it, and why it failed (if so)."""

    at: str
    bytes_before: int
    bytes_after: int
    automatic: bool
    snapshot_until: str | None = None  # an automatic compaction's snapshot is removed then
    failed: str | None = None

    @property
    def bytes_freed(self) -> int:
        return max(0, self.bytes_before - self.bytes_after)


@dataclass(frozen=True)
class Retention:
    """What the monitor keeps about compaction: the last one, the snapshots kept (path → until), its last decision."""

    last: Compacted | None = None
    snapshots: dict[str, str] = field(default_factory=dict)
    pending_admin: int = 0
    next_at: str | None = None
    blocked: str | None = None


@dataclass(frozen=True)
class Decision:
    """Whether to compact now; else when it may (next_at) or why it may not by itself (blocked)."""

    compact: bool
    pending_admin: int
    next_at: str | None
    blocked: str | None


@dataclass(frozen=True)
class Group:
    """One segment's unacknowledged deletes as decide() sees them: how many, when, and the roles that wrote it."""

    segment: int
    count: int
    committed_at: str
    roles: tuple[str, ...]

    @property
    def by_admin(self) -> bool:
        """Only admin sessions may have written it (a segment no session is known for counts as unknown)."""
        return bool(self.roles) and all(role == ADMIN for role in self.roles)


def decide(
    name: str,
    policy: str,
    groups: list[Group],
    acknowledged_at: str | None,
    blocker: str | None,
    now: datetime,
    delay: int,
) -> Decision:
    """Given a client's pending delete groups, its latest acknowledgement of deletes since the last compaction,
    what else holds compaction back (blocker: tampering, a shrunk manifest, a failed compaction) and the
    policy, return whether the monitor compacts now, or when it may, or why it may not by itself."""
    pending_admin = sum(group.count for group in groups if group.by_admin)
    others = [group for group in groups if not group.by_admin]
    if policy != ADMIN:
        return Decision(False, pending_admin, None, f"AUTO_COMPACT is {policy}: compact by hand")
    if blocker:
        return Decision(False, pending_admin, None, blocker)
    if others:
        first, last = others[0].segment, others[-1].segment
        count = sum(group.count for group in others)
        return Decision(
            False,
            pending_admin,
            None,
            f"{count} delete(s) in segments {first}..{last} not written by an admin session; "
            f"review them with borg-server audit {name}",
        )
    moments = [group.committed_at for group in groups] + ([acknowledged_at] if acknowledged_at else [])
    if not moments:
        return Decision(False, 0, None, None)
    next_at = max(datetime.fromisoformat(moment) for moment in moments) + timedelta(seconds=delay)
    return Decision(now >= next_at, pending_admin, next_at.isoformat(timespec="seconds"), None)


def snapshots_expired(snapshots: dict[str, str], now: datetime) -> list[str]:
    """Given the snapshots kept (path → until), return the paths whose time is up, oldest first."""
    return sorted(path for path, until in snapshots.items() if datetime.fromisoformat(until) <= now)


def to_json(retention: Retention) -> dict:
    """Given the retention record, return it as the state file keeps it."""
    last = retention.last
    return {
        "last": None if last is None else dict(sorted(vars(last).items())),
        "snapshots": dict(sorted(retention.snapshots.items())),
        "pending_admin": retention.pending_admin,
        "next_at": retention.next_at,
        "blocked": retention.blocked,
    }


def from_json(document: dict | None) -> Retention:
    """Given the record as to_json wrote it (None: none yet), return it; raise TypeError on other fields."""
    if not document:
        return Retention()
    last = document.get("last")
    return Retention(
        last=None if last is None else Compacted(**last),
        snapshots=dict(document.get("snapshots", {})),
        pending_admin=document.get("pending_admin", 0),
        next_at=document.get("next_at"),
        blocked=document.get("blocked"),
    )
