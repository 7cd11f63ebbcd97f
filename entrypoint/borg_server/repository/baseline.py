"""Tamper detection: the baseline of an append-only repository's committed files, and what changed since.

Borg never rewrites a committed segment of an append-only repository (see repository/segments.py), so every
segment changed, truncated or removed since the monitor first saw it, and any change of the
repository's config file, is damage or tampering.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from pathlib import Path

from borg_server.records.client_state import ClientState, SegmentPrint, Tampering
from borg_server.repository import segments


def stat_print(path: Path) -> SegmentPrint:
    """Given a segment file, return its print: size, sha256 and stat (reads all of it)."""
    status = path.stat()
    fingerprint = segments.fingerprint(path)
    return SegmentPrint(fingerprint.size, fingerprint.sha256, status.st_mtime_ns, status.st_ctime_ns, status.st_ino)


def unchanged_stat(path: Path, recorded: SegmentPrint) -> bool:
    """Return whether the file's size, times and inode are still the recorded ones (cheap: no read)."""
    status = path.stat()
    return recorded.same_stat(SegmentPrint(status.st_size, "", status.st_mtime_ns, status.st_ctime_ns, status.st_ino))


def config_digest(repository: Path) -> str | None:
    """Given a repository, return the sha256 of its config file (None if it cannot be read)."""
    try:
        return hashlib.sha256((repository / "config").read_bytes()).hexdigest()
    except OSError:
        return None


def rebaseline(state: ClientState, repository: Path) -> None:
    """Take the segment and config baseline again from what is on disk now; forget the tampering seen."""
    state.segments = {}
    state.tampering = None
    state.config_digest = config_digest(repository)
    extend_baseline(state, repository)


def extend_baseline(state: ClientState, repository: Path) -> None:
    """Add the committed segments not yet in the baseline."""
    last = segments.last_commit(repository)
    if last is None:
        return
    for number, path in segments.segment_files(repository).items():
        if number <= last and number not in state.segments:
            with contextlib.suppress(FileNotFoundError):
                state.segments[number] = stat_print(path)


def check_tampering(state: ClientState, repository: Path, now: str, compacted: bool = False) -> Tampering | None:
    """Compare the committed segments and the config with the baseline; record and return what changed.

    A segment whose size, times and inode are unchanged is not read again; any other is hashed.
    Segments committed since are added to the baseline. The baseline of a changed segment is kept,
    so the finding stays until the file is restored or `borg-server audit --acknowledge` accepts it.
    compacted (an admin session changed the repository): removed segments are expected and leave
    the baseline; changed and truncated ones are still reported.
    """
    files = segments.segment_files(repository)
    changed, truncated, removed = [], [], []
    for number, recorded in sorted(state.segments.items()):
        path = files.get(number)
        try:
            if path is None:
                removed.append(number)
            elif not unchanged_stat(path, recorded):
                current = stat_print(path)
                if current.size < recorded.size:
                    truncated.append(number)
                elif not current.same_content(recorded):
                    changed.append(number)
                else:
                    state.segments[number] = current  # touched, not changed
        except FileNotFoundError:
            removed.append(number)
    if compacted:  # segments that disappear now were compacted away; ones reported before stay reported
        known = set(state.tampering.removed if state.tampering else ())
        for number in [number for number in removed if number not in known]:
            del state.segments[number]
        removed = [number for number in removed if number in known]
    extend_baseline(state, repository)
    config = config_digest(repository)
    if state.config_digest is None:
        state.config_digest = config
    config_changed = config != state.config_digest
    if changed or truncated or removed or config_changed:
        seen_at = state.tampering.seen_at if state.tampering else now
        state.tampering = Tampering(tuple(changed), tuple(truncated), tuple(removed), config_changed, None, seen_at)
    else:
        state.tampering = None
    return state.tampering


def record_unreadable(state: ClientState, error: Exception, now: str) -> None:
    """Record that a committed segment cannot be read (damage or tampering), first seen at now unless seen before."""
    previous = state.tampering or Tampering(seen_at=now)
    state.tampering = dataclasses.replace(previous, unreadable=str(error))


def describe_tampering(tampering: Tampering) -> str:
    """Given tampering, return it in one line for people."""
    parts = [f"segments {kind} {', '.join(map(str, numbers))}"
             for kind, numbers in (("changed", tampering.changed), ("truncated", tampering.truncated),
                                   ("removed", tampering.removed)) if numbers]  # fmt: skip
    if tampering.config:
        parts.append("the repository config changed (a replaced repokey or settings)")
    if tampering.unreadable:
        parts.append(f"unreadable: {tampering.unreadable}")
    return "; ".join(parts)
