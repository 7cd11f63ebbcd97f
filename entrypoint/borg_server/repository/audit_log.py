"""The audit log of SSH sessions: its records, appending, reading (whole or from a position), rotating.

The session broker (sessions/session.py, as root) appends one JSON line per session, with the repository's last
committed segment before and after it; `borg-server compact` appends one for each compaction. A session
refused before its borg serve started (MAX_SESSIONS) has `refused` and the `message` the client was given.
A session that ended with exit code 0 and left a higher committed segment behind wrote to the
repository; for a client's own key it is a backup only if those new segments hold data besides the
manifest (manifest.added_data: `with-lock`, `break-lock`, `list`, `prune` commit the manifest alone).
The monitor keeps its position in the log (paths.monitor_position), so each scan reads only what was
appended since.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from borg_common.files import OPEN_FLAGS, atomic_write, read_regular
from borg_server.repository import manifest, segments

REQUESTED_COMMAND_LIMIT = 200
WRITE_ROLES = ("append", "full")
ROTATE_AT = 16 * 1024 * 1024  # bytes; about 60,000 sessions
KEEP_ROTATED = 5
SLACK = timedelta(seconds=2)  # a segment's mtime and the session's end are taken apart


def session_record(
    client: str,
    role: str,
    fingerprint: str,
    started: float,
    finished: float,
    exit_code: int,
    environ: dict,
    committed: tuple[int | None, int | None] = (None, None),
) -> dict:
    """Given what is known about a finished session, return its audit record.

    committed is the repository's last committed segment before and after the session: a
    higher one afterwards means the session wrote (see wrote).
    """
    requested = environ.get("SSH_ORIGINAL_COMMAND", "")
    return {
        "event": "borg-session",
        "client": client,
        "role": role,
        "fingerprint": fingerprint,
        "source": environ.get("SSH_CONNECTION", "").split(" ")[0],
        "requested": requested[:REQUESTED_COMMAND_LIMIT],
        "started_at": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "finished_at": datetime.fromtimestamp(finished, UTC).isoformat(timespec="seconds"),
        "duration_s": round(finished - started, 3),
        "exit_code": exit_code,
        "committed_before": committed[0],
        "committed_after": committed[1],
    }


def append_record(path: Path, record: dict) -> None:
    """Append record as one JSON line; a line this short is written in one piece (O_APPEND)."""
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    try:
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:  # neither the log nor its directory through a symlink
            descriptor = os.open(path.name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o600, dir_fd=directory)  # fmt: skip
        finally:
            os.close(directory)
        try:
            os.write(descriptor, line)
        finally:
            os.close(descriptor)
    except OSError:
        pass  # an unwritable audit log must not take the backup down; the monitor notices the gap


def read_position(path: Path) -> dict:
    """Given the monitor's position file, return it: the audit log offset read up to, its last scan ({} if none)."""
    try:
        position = json.loads(read_regular(path, 64 * 1024))  # never through a symlink, never a FIFO
    except (OSError, ValueError):
        return {}
    return position if isinstance(position, dict) else {}


def write_position(path: Path, audit_offset: int, last_scan: float, scan_seconds: float) -> None:
    """Record how far the monitor read the audit log, when its scan ended and how long it took."""
    position = {"audit_offset": audit_offset, "last_scan": last_scan, "scan_seconds": round(scan_seconds, 3)}
    atomic_write(path, json.dumps(position), 0o600)


def read_sessions(audit_log: Path, offset: int = 0) -> tuple[list[dict], int]:
    """Given the audit log and a byte position, return the session records after it and the new position.

    Only complete lines are read; lines that are not JSON objects are skipped. A log that is now
    shorter than offset (replaced or truncated) is read from the start; a missing one is empty.
    """
    try:
        descriptor = os.open(audit_log, OPEN_FLAGS)  # never through a symlink, never waiting on a FIFO
    except OSError:
        return [], 0
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            return [], 0
        offset = 0 if status.st_size < offset else offset
        data = os.pread(descriptor, status.st_size - offset, offset)
    except OSError:
        return [], 0
    finally:
        os.close(descriptor)
    complete = data[: data.rfind(b"\n") + 1]
    records = []
    for line in complete.decode(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records, offset + len(complete)


def refused(records: list[dict], client: str) -> list[dict]:
    """Given session records, return the client's sessions that were refused (MAX_SESSIONS), oldest first."""
    return [r for r in records if r.get("event") == "borg-session" and r.get("client") == client and r.get("refused")]


def wrote(record: dict) -> bool:
    """Given a session record, return whether it was a successful write by a client's own key.

    Records written before the committed segments were logged count when they succeeded.
    """
    if record.get("role") not in WRITE_ROLES or record.get("exit_code") != 0:
        return False
    if "committed_after" not in record:
        return True
    before, after = record.get("committed_before"), record.get("committed_after")
    return after is not None and (before is None or after > before)


def may_have_compacted(record: dict) -> bool:
    """Given a session record, return whether it was an admin session that may have changed the repository.

    Only a session that left the same committed segment behind, or was refused, is known not to have.
    """
    if record.get("role") != "admin" or record.get("refused"):
        return False
    before, after = record.get("committed_before"), record.get("committed_after")
    return "committed_after" not in record or after is None or before != after


def last_backup(known: str | None, records: list[dict], client: str, repository: Path | None = None) -> str | None:
    """Given the client's last backup known so far and newer session records, return when its last backup ended.

    With its repository, only sessions that added data count (see last_write).
    """
    return max(filter(None, (known, last_write(records, client, repository))), default=None)


def last_write(records: list[dict], client: str, repository: Path | None = None) -> str | None:
    """Given session records, return when the client's last backup session finished (ISO time), or None.

    With the client's repository, a session counts only if a segment it committed holds a PUT of
    another key than the manifest; only its own new segments are read, newest session first, until
    one counts. A range compacted away since counts as no backup. Records from before the committed
    segments were logged count when they succeeded.
    """
    sessions = [r for r in records if r.get("client") == client and wrote(r) and isinstance(r.get("finished_at"), str)]
    files = None
    for record in sorted(sessions, key=lambda r: r["finished_at"], reverse=True):
        if repository is None or "committed_after" not in record:
            return record["finished_at"]
        files = segments.segment_files(repository) if files is None else files
        if manifest.added_data(files, record.get("committed_before"), record.get("committed_after")):
            return record["finished_at"]
    return None


def sessions_of(records: list[dict], client: str, segment: int, committed_at: str | None) -> list[dict]:
    """Return the client's sessions that may have written segment: by the committed segments each one
    logged before and after it, or (records without them) by the segment's time."""
    found = []
    moment = datetime.fromisoformat(committed_at) if committed_at else None
    for record in records:
        if record.get("event") != "borg-session" or record.get("client") != client:
            continue  # the log also holds the server's own records (server-compact): not a client session
        if record.get("committed_after") is not None:
            before = record.get("committed_before")
            if (-1 if before is None else before) < segment <= record["committed_after"]:
                found.append(record)
        elif moment and "committed_after" not in record and "started_at" in record and "finished_at" in record:
            started, finished = (datetime.fromisoformat(record[key]) for key in ("started_at", "finished_at"))
            if started - SLACK <= moment <= finished + SLACK:
                found.append(record)
    return found


def rotated(audit_log: Path, number: int) -> Path:
    return audit_log.with_name(f"{audit_log.name}.{number}")


def rotate(audit_log: Path, uid: int, gid: int) -> None:
    """Move the audit log to <log>.1 (shifting older ones, keeping KEEP_ROTATED) and start an empty one.

    The log is never missing: the old file is hard-linked to .1 before a new one replaces the name,
    so a record appended meanwhile goes to one of the two. The new file belongs to uid, gid (root:
    only the session broker and the server's commands append to it).
    """
    rotated(audit_log, KEEP_ROTATED).unlink(missing_ok=True)
    for number in range(KEEP_ROTATED - 1, 0, -1):
        if rotated(audit_log, number).exists():
            os.replace(rotated(audit_log, number), rotated(audit_log, number + 1))
    os.link(audit_log, rotated(audit_log, 1), follow_symlinks=False)
    fresh = audit_log.with_name(f"{audit_log.name}.new")
    fresh.unlink(missing_ok=True)  # whatever was left there (a symlink: the link itself)
    os.close(os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
    os.chown(fresh, uid, gid)  # the file just made: only root can write in the log's directory (mode 700)
    os.chmod(fresh, 0o600)
    os.replace(fresh, audit_log)


def read_all(audit_log: Path) -> list[dict]:
    """Return the records of the rotated logs (oldest first) and of the current one."""
    records = []
    for number in range(KEEP_ROTATED, 0, -1):
        records += read_sessions(rotated(audit_log, number))[0]
    return records + read_sessions(audit_log)[0]
