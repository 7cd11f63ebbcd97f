"""The deletes a client committed to its repository: found per segment, counted by kind, acknowledged.

A prune of a million objects stays a few lines: one DeleteGroup per segment holds a count per kind
and only the first KEYS_KEPT object ids, for people to compare.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from borg_server.records.client_state import Acknowledgement, ClientState, DeleteGroup
from borg_server.repository import segments

KEYS_KEPT = 10  # object ids kept per segment group; the count has them all
MAX_GROUPS = 1000  # unacknowledged groups kept; beyond, the oldest are merged (nothing is lost from the counts)
KEEP_ACKNOWLEDGED = 100  # acknowledgements kept as history


def committed_at(path: Path) -> str | None:
    """Given a segment file, return when it was written (its mtime, ISO time), or None if it is gone."""
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
    except OSError:
        return None


def scan_deletes(state: ClientState, repository: Path, now: str) -> int:
    """Record the client deletes committed since the last scan, grouped by segment; return how many are new.

    Raise SegmentError (or OSError) if a committed segment cannot be read; nothing is recorded then.
    """
    last = segments.last_commit(repository)
    if last is None or (state.scanned is not None and last <= state.scanned):
        if state.scanned is not None and (last is None or last < state.scanned):
            state.scanned = last  # rolled back: borg numbers the next segments from here again
        return 0
    kinds: dict[int, dict[str, int]] = {}
    keys: dict[int, list[str]] = {}
    for delete in segments.deletes_since(repository, -1 if state.scanned is None else state.scanned, last):
        counted = kinds.setdefault(delete.segment, {})
        counted[delete.kind] = counted.get(delete.kind, 0) + 1
        kept = keys.setdefault(delete.segment, [])
        if len(kept) < KEYS_KEPT:
            kept.append(delete.key.hex())
    files = segments.segment_files(repository)
    for number, counted in kinds.items():
        written = committed_at(files[number]) if number in files else None
        state.deletes.append(DeleteGroup(number, sum(counted.values()), counted, tuple(keys[number]), written, now))
    state.deletes = merged(state.deletes, MAX_GROUPS)
    state.scanned = last
    return sum(sum(counted.values()) for counted in kinds.values())


def acknowledge(state: ClientState, through: int, tampering: bool, now: str) -> int:
    """Acknowledge the deletes and manifest shrinks in segments up to through (and the tampering seen, if
    asked); return how many deletes.

    The caller takes the segment baseline again (baseline.rebaseline) when it acknowledges tampering.
    """
    done = [group for group in state.deletes if group.segment <= through]
    state.deletes = [group for group in state.deletes if group.segment > through]
    count = sum(group.count for group in done)
    shrinks = [shrink for shrink in state.manifest_shrinks if shrink.segment <= through]
    state.manifest_shrinks = [shrink for shrink in state.manifest_shrinks if shrink.segment > through]
    if done or tampering or shrinks:
        state.acknowledged.append(Acknowledgement(now, through, count, tampering))
        state.acknowledged = state.acknowledged[-KEEP_ACKNOWLEDGED:]
    return count


def merged(groups: list[DeleteGroup], limit: int) -> list[DeleteGroup]:
    """Given delete groups in segment order, return at most limit: the oldest merged into the one after them.

    A merged group carries the later segment number, so acknowledging through an earlier segment
    leaves it pending (never the other way round); counts and kinds add up, the first ids are kept.
    """
    if len(groups) <= limit:
        return groups
    first, rest = groups[: len(groups) - limit + 1], groups[len(groups) - limit + 1 :]
    kinds: dict[str, int] = {}
    for group in first:
        for kind, count in group.kinds.items():
            kinds[kind] = kinds.get(kind, 0) + count
    keys = tuple(key for group in first for key in group.keys)[:KEYS_KEPT]
    last = first[-1]
    oldest = DeleteGroup(
        last.segment, sum(g.count for g in first), kinds, keys, first[0].committed_at, first[0].seen_at,
        sum(g.archives for g in first), any(g.newest for g in first),
    )  # fmt: skip
    return [oldest, *rest]
