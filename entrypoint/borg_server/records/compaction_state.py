"""What the monitor keeps about compaction in a client's state file: the last compaction, the snapshots an
automatic one keeps, and the monitor's last decision (compaction/policy.py makes it)."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    """What the monitor keeps about compaction: the last one, the snapshots kept (path → until), its last decision
    (held: blocked because the admin's deletes are unusual, compaction/policy.py)."""

    last: Compacted | None = None
    snapshots: dict[str, str] = field(default_factory=dict)
    pending_admin: int = 0
    next_at: str | None = None
    blocked: str | None = None
    held: bool = False


def to_json(retention: Retention) -> dict:
    """Given the retention record, return it as the state file keeps it."""
    last = retention.last
    return {
        "last": None if last is None else dict(sorted(vars(last).items())),
        "snapshots": dict(sorted(retention.snapshots.items())),
        "pending_admin": retention.pending_admin,
        "next_at": retention.next_at,
        "blocked": retention.blocked,
        "held": retention.held,
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
        held=bool(document.get("held", False)),
    )
