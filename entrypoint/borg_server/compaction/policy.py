"""Automatic compaction of admin deletes: the decision when it may run (records/compaction_state.py: what is kept).

A client's deletes compact by themselves (AUTO_COMPACT=admin) only when every delete not acknowledged
was written by the client's admin sessions, nothing is tampered, no manifest shrank, the last check did
not fail, the admin's deletes are ones a normal retention policy makes (unusual), and the newest of them
(or the newest acknowledgement) is COMPACT_DELAY old: time to read the deletes alert first.

Unusual, from the archives the server tells apart (repository/archives.py): the unacknowledged admin
deletes took every archive, or the newest archive there was when they ran (every KEEP_* rule keeps the
newest), or more archives than they left. Such deletes wait for a person (Decision.held): acknowledging
them (`borg-server audit CLIENT --acknowledge N`) approves them, and they compact COMPACT_DELAY later.
decide() is pure: the monitor (monitor/auto_compact.py) gathers its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

ADMIN = "admin"


@dataclass(frozen=True)
class Decision:
    """Whether to compact now; else when it may (next_at) or why it may not by itself (blocked; held: the admin's
    deletes are unusual and wait for a person)."""

    compact: bool
    pending_admin: int
    next_at: str | None
    blocked: str | None
    held: bool = False


@dataclass(frozen=True)
class Group:
    """One segment's unacknowledged deletes as decide() sees them: how many, when, the roles that wrote it (and
    their keys), how many archives they took and whether one was the newest then."""

    segment: int
    count: int
    committed_at: str
    roles: tuple[str, ...]
    archives: int = 0
    newest: bool = False
    writers: tuple[tuple[str, str], ...] = ()  # (role, key fingerprint) of each session that may have written it

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
    remaining: int | None = None,
) -> Decision:
    """Given a client's pending delete groups, its latest acknowledgement of deletes since the last compaction,
    what else holds compaction back (blocker: tampering, a shrunk manifest, a failed compaction), the
    policy and how many archives the server knows are left (None: not known), return whether the monitor
    compacts now, or when it may, or why it may not by itself."""
    admin = [group for group in groups if group.by_admin]
    pending_admin = sum(group.count for group in admin)
    others = [group for group in groups if not group.by_admin]
    if policy != ADMIN:
        return Decision(False, pending_admin, None, f"AUTO_COMPACT is {policy}: compact by hand")
    if blocker:
        return Decision(False, pending_admin, None, blocker)
    reason = unusual(admin, remaining)
    if reason:
        first, last = admin[0].segment, admin[-1].segment
        return Decision(
            False,
            pending_admin,
            None,
            f"the admin key's {pending_admin} delete(s) in segments {first}..{last} {reason}, which a normal "
            f"retention policy never does; nothing compacts until a person decides. If you ran them, approve them "
            f"with borg-server audit {name} (it prints the --acknowledge command; they compact COMPACT_DELAY "
            "later). If not, the admin key may be stolen: do not compact, roll back as "
            "docs/how-to/roll-back-a-compromised-client.md says and replace the admin key",
            held=True,
        )
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


def unusual(admin: list[Group], remaining: int | None) -> str | None:
    """Given the unacknowledged delete groups of admin sessions and how many archives are left (None: not known),
    return what makes them deletes no retention policy makes ("take every archive (3)"), or None."""
    deleted = sum(group.archives for group in admin)
    if remaining is None or deleted == 0:
        return None
    if remaining == 0:
        return f"take every archive ({deleted})"
    if any(group.newest for group in admin):
        return "take the newest archive"
    if deleted > remaining:
        return f"take {deleted} archives and leave {remaining}"
    return None


def snapshots_expired(snapshots: dict[str, str], now: datetime) -> list[str]:
    """Given the snapshots kept (path → until), return the paths whose time is up, oldest first."""
    return sorted(path for path, until in snapshots.items() if datetime.fromisoformat(until) <= now)
