"""What the monitor knows about one client's repository, kept in one JSON file per client.

The state (a plain dict, saved atomically under a per-client lock that `audit` and `compact`
take too) holds:
- first_seen, last_backup: when the client appeared and when its last backup session ended;
- scanned: the last committed segment whose DELETE entries were read;
- deletes: the deletes found and not yet acknowledged, one group per segment (count per kind,
  the first few object ids), so a prune of a million objects stays a few lines;
  acknowledged: a history of acknowledgements;
- segments: the baseline of committed segments (size, sha256 and stat) and config: the sha256 of
  the repository's config file, for tamper detection; tampering: what changed since;
- check: the last `borg check --repository-only` (time, result, message);
- alerts: the conditions currently raised, by kind.

Deletes and tampering are watched for append-only clients only: a client allowed to delete
compacts its own repository, which removes segments and deletes legitimately.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from borg_common.files import atomic_write
from borg_server import segments

logger = logging.getLogger(__name__)

LOCK_NAME = "lock.exclusive"  # borg's repository lock directory: present while a session writes
KEYS_KEPT = 10  # object ids kept per segment group, for people to compare; the count has them all
ALERTING_KINDS = ("delete", "overwrite")  # checkpoint clean-ups are listed but raise no alert


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


VERSION = 2  # version 1 (never released) kept one entry per delete


def new_state(now: str) -> dict:
    return {
        "version": VERSION,
        "first_seen": now,
        "last_backup": None,
        "scanned": None,
        "deletes": [],
        "acknowledged": [],
        "segments": {},
        "config": None,
        "tampering": None,
        "check": None,
        "alerts": {},
    }


def load(path: Path) -> dict:
    """Given a client's state file, return its state (a new one if the file does not exist or is damaged)."""
    try:
        state = json.loads(path.read_text())
        if not isinstance(state, dict):
            raise ValueError(f"a JSON {type(state).__name__}, not an object")
    except FileNotFoundError:
        return new_state(now_text())
    except ValueError as error:
        damaged = path.with_suffix(".damaged")
        path.replace(damaged)
        logger.error("monitor state %s is damaged (%s); moved to %s, starting afresh", path, error, damaged)
        return new_state(now_text())
    if state.get("version") != VERSION:  # deletes were kept another way: find them again
        state = {key: value for key, value in state.items() if key not in ("scanned", "deletes", "known")}
        state["version"] = VERSION
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
    """Return whether a borg session holds the repository's lock."""
    return (repository / LOCK_NAME).exists()


def committed_at(path: Path) -> str | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
    except OSError:
        return None


def scan_deletes(state: dict, repository: Path, now: str) -> int:
    """Record the client deletes committed since the last scan, grouped by segment; return how many are new.

    Raise SegmentError (or OSError) if a committed segment cannot be read; nothing is recorded then.
    """
    last = segments.last_commit(repository)
    if last is None or (state["scanned"] is not None and last <= state["scanned"]):
        if state["scanned"] is not None and (last is None or last < state["scanned"]):
            state["scanned"] = last  # rolled back: borg numbers the next segments from here again
        return 0
    groups: dict[int, dict] = {}
    for delete in segments.deletes_since(repository, -1 if state["scanned"] is None else state["scanned"], last):
        group = groups.setdefault(delete.segment, {"segment": delete.segment, "count": 0, "kinds": {}, "keys": []})
        group["count"] += 1
        group["kinds"][delete.kind] = group["kinds"].get(delete.kind, 0) + 1
        if len(group["keys"]) < KEYS_KEPT:
            group["keys"].append(delete.key.hex())
    files = segments.segment_files(repository)
    for number, group in groups.items():
        group["committed_at"] = committed_at(files[number]) if number in files else None
        group["seen_at"] = now
        state["deletes"].append(group)
    state["scanned"] = last
    return sum(group["count"] for group in groups.values())


def watch_repository(name: str, state: dict, repository: Path, admin_session: bool, now: str) -> None:
    """Update an append-only client's deletes and tamper findings from its repository.

    admin_session: an admin key changed the repository since the last scan (it may have compacted,
    which removes segments legitimately). A segment that cannot be read is recorded as tampering.
    """
    before = state["tampering"]
    if not segments.has_repository(repository):
        if state["segments"]:  # it existed: removing a repository is the biggest change of all
            record_unreadable(state, FileNotFoundError(f"{repository / 'config'} is missing"), now)
        return
    try:
        check_tampering(state, repository, now, compacted=admin_session)
        new = scan_deletes(state, repository, now)
        if new:
            logger.warning("client %s: %d new delete(s) found in its repository", name, new)
    except (segments.SegmentError, OSError) as error:
        record_unreadable(state, error, (before or {}).get("seen_at", now))


def pending_deletes(state: dict, alerting_only: bool = False) -> int:
    """Return how many deletes wait for acknowledgement (only the kinds that raise an alert, if asked)."""
    if not alerting_only:
        return sum(group["count"] for group in state["deletes"])
    return sum(group["kinds"].get(kind, 0) for group in state["deletes"] for kind in ALERTING_KINDS)


def acknowledge(state: dict, through: int, tampering: bool, now: str) -> int:
    """Acknowledge the deletes in segments up to through (and the tampering seen, if asked); return how many.

    The caller takes the segment baseline again (rebaseline) when it acknowledges tampering.
    """
    done = [group for group in state["deletes"] if group["segment"] <= through]
    state["deletes"] = [group for group in state["deletes"] if group["segment"] > through]
    count = sum(group["count"] for group in done)
    if done or tampering:
        state["acknowledged"].append({"at": now, "through": through, "deletes": count, "tampering": tampering})
    return count


def stat_print(path: Path) -> list:
    """Return [size, sha256, mtime_ns, ctime_ns, inode] of a segment file (reads all of it)."""
    status = path.stat()
    fingerprint = segments.fingerprint(path)
    return [fingerprint.size, fingerprint.sha256, status.st_mtime_ns, status.st_ctime_ns, status.st_ino]


def unchanged_stat(path: Path, recorded: list) -> bool:
    """Return whether the file's size, times and inode are still the recorded ones (cheap: no read)."""
    status = path.stat()
    return [status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino] == [recorded[0], *recorded[2:]]


def config_digest(repository: Path) -> str | None:
    try:
        return hashlib.sha256((repository / "config").read_bytes()).hexdigest()
    except OSError:
        return None


def rebaseline(state: dict, repository: Path) -> None:
    """Take the segment and config baseline again from what is on disk now; forget the tampering seen."""
    state["segments"] = {}
    state["tampering"] = None
    state["config"] = config_digest(repository)
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


def check_tampering(state: dict, repository: Path, now: str, compacted: bool = False) -> dict | None:
    """Compare the committed segments and the config with the baseline; record and return what changed.

    A segment whose size, times and inode are unchanged is not read again; any other is hashed.
    Segments committed since are added to the baseline. The baseline of a changed segment is kept,
    so the finding stays until the file is restored or `borg-server audit --acknowledge` accepts it.
    compacted (an admin session changed the repository): removed segments are expected and leave
    the baseline; changed and truncated ones are still reported.
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
    if compacted:  # segments that disappear now were compacted away; ones reported before stay reported
        known = set((state["tampering"] or {}).get("removed", []))
        for number in [number for number in removed if number not in known]:
            del state["segments"][str(number)]
        removed = [number for number in removed if number in known]
    extend_baseline(state, repository)
    config = config_digest(repository)
    if state["config"] is None:
        state["config"] = config
    config_changed = config != state["config"]
    previous = state["tampering"] or {}
    if changed or truncated or removed or config_changed:
        state["tampering"] = {
            "changed": changed,
            "truncated": truncated,
            "removed": removed,
            "config": config_changed,
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
        "config": previous.get("config", False),
        "unreadable": str(error),
        "seen_at": previous.get("seen_at", now),
    }


def tampered_segments(state: dict) -> int:
    """Return how many committed files changed (segments, and the config counted as one)."""
    tampering = state.get("tampering") or {}
    count = sum(len(tampering.get(kind, [])) for kind in ("changed", "truncated", "removed"))
    count += bool(tampering.get("config"))
    return count or (1 if tampering.get("unreadable") else 0)


def describe_tampering(tampering: dict) -> str:
    parts = [f"segments {kind} {', '.join(map(str, tampering[kind]))}" for kind in ("changed", "truncated", "removed")
             if tampering.get(kind)]  # fmt: skip
    if tampering.get("config"):
        parts.append("the repository config changed (a replaced repokey or settings)")
    if tampering.get("unreadable"):
        parts.append(f"unreadable: {tampering['unreadable']}")
    return "; ".join(parts)
