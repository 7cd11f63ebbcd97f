"""What the monitor knows about one client's repository, kept in one JSON file per client.

The state (a plain dict, saved atomically under a per-client lock that `audit` and `compact`
take too) holds:
- first_seen, last_backup: when the client appeared and when its last backup session ended;
- scanned: the last committed segment whose DELETE entries were read;
- deletes: the deletes found and not yet acknowledged; known: keys of every delete ever
  reported (compaction copies DELETE entries, which must not be reported twice); acknowledged:
  a history of acknowledgements;
- segments: the baseline of committed segments (size, sha256 and stat) for tamper detection;
  tampering: the segments found changed, truncated, removed or unreadable;
- check: the last `borg check --repository-only` (time, result, message);
- alerts: the conditions currently raised, by kind.

Deletes and tampering are watched for append-only clients only: a client allowed to delete
compacts its own repository, which removes segments and deletes legitimately.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from borg_common.files import atomic_write
from borg_server import segments

logger = logging.getLogger(__name__)

LOCK_NAME = "lock.exclusive"  # borg's repository lock directory: present while a session writes


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_state(now: str) -> dict:
    return {
        "first_seen": now,
        "last_backup": None,
        "scanned": None,
        "deletes": [],
        "known": [],
        "acknowledged": [],
        "segments": {},
        "tampering": None,
        "check": None,
        "alerts": {},
    }


def load(path: Path) -> dict:
    """Given a client's state file, return its state (a new one if the file does not exist)."""
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return new_state(now_text())
    return new_state(state.get("first_seen") or now_text()) | state


def save(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(state, indent=1, sort_keys=True), 0o600)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[dict]:
    """Hold the client's state lock; yield its state and save it afterwards (unless an exception escapes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = load(path)
        yield state
        save(path, state)


def busy(repository: Path) -> bool:
    """Return whether a borg session holds the repository's lock (it may be compacting)."""
    return (repository / LOCK_NAME).exists()


def committed_at(path: Path) -> str | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
    except OSError:
        return None


def scan_deletes(state: dict, repository: Path, now: str) -> int:
    """Record the client deletes committed since the last scan; return how many are new.

    Raise SegmentError (or OSError) if a committed segment cannot be read.
    """
    last = segments.last_commit(repository)
    if last is None or (state["scanned"] is not None and last <= state["scanned"]):
        if state["scanned"] is not None and (last is None or last < state["scanned"]):
            state["scanned"] = last  # rolled back: borg numbers the next segments from here again
        return 0
    found = segments.deletes_since(repository, -1 if state["scanned"] is None else state["scanned"])
    files = segments.segment_files(repository)
    known = set(state["known"])
    new = [delete for delete in found if delete.key.hex() not in known]
    for delete in new:
        state["deletes"].append(
            {
                "segment": delete.segment,
                "offset": delete.offset,
                "key": delete.key.hex(),
                "checkpoint": delete.checkpoint,
                "committed_at": committed_at(files[delete.segment]) if delete.segment in files else None,
                "seen_at": now,
            }
        )
        known.add(delete.key.hex())
    state["known"] = sorted(known)
    state["scanned"] = last
    return len(new)


def unacknowledged(state: dict, include_checkpoints: bool = True) -> list[dict]:
    """Return the deletes not acknowledged yet (without borg's own checkpoint clean-ups unless asked)."""
    return [delete for delete in state["deletes"] if include_checkpoints or not delete["checkpoint"]]


def acknowledge(state: dict, through: int, now: str) -> list[dict]:
    """Acknowledge the deletes in segments up to through, and the tampering seen; return the deletes acknowledged.

    The caller takes the segment baseline again (rebaseline) when tampering was acknowledged.
    """
    done = [delete for delete in state["deletes"] if delete["segment"] <= through]
    state["deletes"] = [delete for delete in state["deletes"] if delete["segment"] > through]
    tampering = state["tampering"]
    if done or tampering:
        state["acknowledged"].append(
            {"at": now, "through": through, "deletes": len(done), "tampering": tampering is not None}
        )
    return done


def stat_print(path: Path) -> list:
    """Return [size, sha256, mtime_ns, ctime_ns, inode] of a segment file (reads all of it)."""
    status = path.stat()
    fingerprint = segments.fingerprint(path)
    return [fingerprint.size, fingerprint.sha256, status.st_mtime_ns, status.st_ctime_ns, status.st_ino]


def unchanged_stat(path: Path, recorded: list) -> bool:
    """Return whether the file's size, times and inode are still the recorded ones (cheap: no read)."""
    status = path.stat()
    return [status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino] == [recorded[0], *recorded[2:]]


def rebaseline(state: dict, repository: Path) -> None:
    """Take the segment baseline again from what is on disk now; forget the tampering seen."""
    state["segments"] = {}
    state["tampering"] = None
    extend_baseline(state, repository)


def extend_baseline(state: dict, repository: Path) -> None:
    """Add the committed segments not yet in the baseline."""
    last = segments.last_commit(repository)
    if last is None:
        return
    for number, path in segments.segment_files(repository).items():
        if number <= last and str(number) not in state["segments"]:
            with contextlib.suppress(FileNotFoundError):
                state["segments"][str(number)] = stat_print(path)


def check_tampering(state: dict, repository: Path, now: str) -> dict | None:
    """Compare the committed segments with the baseline; record and return what changed (None: nothing).

    A segment whose size, times and inode are unchanged is not read again; any other is hashed.
    Segments committed since are added to the baseline. The baseline of a changed segment is kept,
    so the finding stays until the file is restored or `borg-server audit --acknowledge` accepts it.
    """
    files = segments.segment_files(repository)
    changed, truncated, removed = [], [], []
    for number_text, recorded in sorted(state["segments"].items(), key=lambda item: int(item[0])):
        number = int(number_text)
        path = files.get(number)
        try:
            if path is None:
                removed.append(number)
            elif not unchanged_stat(path, recorded):
                current = stat_print(path)
                if current[0] < recorded[0]:
                    truncated.append(number)
                elif current[:2] != recorded[:2]:
                    changed.append(number)
                else:
                    state["segments"][number_text] = current  # touched, not changed
        except FileNotFoundError:
            removed.append(number)
    extend_baseline(state, repository)
    if changed or truncated or removed:
        previous = state["tampering"] or {}
        state["tampering"] = {
            "changed": changed,
            "truncated": truncated,
            "removed": removed,
            "seen_at": previous.get("seen_at", now),
        }
    else:
        state["tampering"] = None
    return state["tampering"]


def record_unreadable(state: dict, error: Exception, now: str) -> None:
    """Record that a committed segment cannot be read (damage or tampering), first seen at now unless seen before."""
    previous = state["tampering"] or {}
    state["tampering"] = {
        "changed": previous.get("changed", []),
        "truncated": previous.get("truncated", []),
        "removed": previous.get("removed", []),
        "unreadable": str(error),
        "seen_at": previous.get("seen_at", now),
    }


def tampered_segments(state: dict) -> int:
    tampering = state.get("tampering") or {}
    count = sum(len(tampering.get(kind, [])) for kind in ("changed", "truncated", "removed"))
    return count or (1 if tampering.get("unreadable") else 0)


def describe_tampering(tampering: dict) -> str:
    parts = [f"{kind} {', '.join(map(str, tampering[kind]))}" for kind in ("changed", "truncated", "removed")
             if tampering.get(kind)]  # fmt: skip
    if tampering.get("unreadable"):
        parts.append(f"unreadable: {tampering['unreadable']}")
    return "segments " + "; ".join(parts)
