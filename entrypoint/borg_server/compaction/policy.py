"""Automatic compaction of admin deletes: the decision when it may run (records/compaction_state.py: what is kept).

A client's deletes compact by themselves (AUTO_COMPACT=admin) only when every delete not acknowledged
was written by the client's admin sessions, nothing is tampered, no manifest shrank, the last check did
not fail, and the newest of them (or the newest acknowledgement) is COMPACT_DELAY old: time to read the
deletes alert first.
decide() is pure: the monitor (monitor/auto_compact.py) gathers its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

ADMIN = "admin"


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
