"""What a replica knows about one client's copy: typed, kept in the client's state file (records/state_file.py)
beside its baseline.

The baseline itself (state.segments: a SegmentPrint per copied segment) is the monitor's record, so the
replica judges the primary's segments with the same prints the primary's monitor takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MISMATCH_KINDS = ("changed", "truncated", "removed", "unreadable")  # unreadable: the primary cannot read it


@dataclass(frozen=True)
class Held:
    """A copied segment the primary no longer has (compacted away, or accepted): kept aside until removed_at + keep."""

    segment: int
    removed_at: str
    file: str  # its name in the client's directory of held segments


@dataclass(frozen=True)
class ReplicaState:
    """The copy of one client: when it was last complete, how far behind, what is held and what mismatched."""

    last_copy_at: str | None = None  # the end of the last round that brought the copy up to the primary's commit
    copied_commit: int | None = None
    primary_commit: int | None = None  # the primary's last commit, as last seen
    primary_seen_at: str | None = None
    lag_segments: int = 0  # committed segments of the primary not copied yet, as last seen
    compacted_at: str | None = None  # the primary's last audited compaction, as last seen
    bytes: int = 0  # bytes of the copied segments
    mismatch: dict[int, str] = field(default_factory=dict)  # segment -> one of MISMATCH_KINDS
    held: tuple[Held, ...] = ()
    reviewed_through: int | None = None  # the primary's monitor had reviewed the copy's deletes through this segment
    last_round_at: str | None = None  # when the last round that reached the primary looked at this client
    last_outcome: str | None = None  # what that round did ("copied 3 segment(s), …", "up to date", "not copied …")


def to_json(replica: ReplicaState | None) -> dict | None:
    if replica is None:
        return None
    document = vars(replica) | {"mismatch": {str(n): kind for n, kind in sorted(replica.mismatch.items())}}
    return document | {"held": [vars(held).copy() for held in replica.held]}


def from_json(document: dict | None) -> ReplicaState | None:
    """Given to_json's object (or None), return the state; raise TypeError/KeyError/ValueError if it is another."""
    if document is None:
        return None
    mismatch = {int(n): kind for n, kind in document.get("mismatch", {}).items()}
    held = tuple(Held(**entry) for entry in document.get("held", []))
    return ReplicaState(**document | {"mismatch": mismatch, "held": held})
