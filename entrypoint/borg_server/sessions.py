"""The audit log of SSH sessions: reading it (whole or from a position) and telling backups from reads.

The forced command (serve.py) appends one JSON line per session, with the repository's last
committed segment before and after it. A session that ended with exit code 0 and left a higher
committed segment behind wrote to the repository: for a client's own key, that is a backup.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

WRITE_ROLES = ("append", "full")
ROTATE_AT = 16 * 1024 * 1024  # bytes; about 60,000 sessions
KEEP_ROTATED = 5


def read_sessions(audit_log: Path, offset: int = 0) -> tuple[list[dict], int]:
    """Given the audit log and a byte position, return the session records after it and the new position.

    Only complete lines are read; lines that are not JSON objects are skipped. A log that is now
    shorter than offset (replaced or truncated) is read from the start; a missing one is empty.
    """
    try:
        with open(audit_log, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size < offset:
                offset = 0
            file.seek(offset)
            data = file.read(size - offset)
    except OSError:
        return [], 0
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

    Only a session that left the same committed segment behind is known not to have.
    """
    if record.get("role") != "admin":
        return False
    before, after = record.get("committed_before"), record.get("committed_after")
    return "committed_after" not in record or after is None or before != after


def last_backup(known: str | None, records: list[dict], client: str) -> str | None:
    """Given the client's last backup known so far and newer session records, return when its last backup ended."""
    return max(filter(None, (known, last_write(records, client))), default=None)


def last_write(records: list[dict], client: str) -> str | None:
    """Given session records, return when the client's last backup session finished (ISO time), or None."""
    times = [record.get("finished_at") for record in records if record.get("client") == client and wrote(record)]
    times = [time for time in times if isinstance(time, str)]
    return max(times) if times else None


def rotated(audit_log: Path, number: int) -> Path:
    return audit_log.with_name(f"{audit_log.name}.{number}")


def rotate(audit_log: Path, uid: int, gid: int) -> None:
    """Move the audit log to <log>.1 (shifting older ones, keeping KEEP_ROTATED) and start an empty one.

    The log is never missing: the old file is hard-linked to .1 before a new one replaces the name,
    so a session that opens the log meanwhile writes to one of the two. The new file belongs to the
    borg user (uid, gid), which appends to it.
    """
    rotated(audit_log, KEEP_ROTATED).unlink(missing_ok=True)
    for number in range(KEEP_ROTATED - 1, 0, -1):
        if rotated(audit_log, number).exists():
            os.replace(rotated(audit_log, number), rotated(audit_log, number + 1))
    os.link(audit_log, rotated(audit_log, 1))
    fresh = audit_log.with_name(f"{audit_log.name}.new")
    fresh.touch(mode=0o600)
    os.chown(fresh, uid, gid)
    os.chmod(fresh, 0o600)
    os.replace(fresh, audit_log)


def read_all(audit_log: Path) -> list[dict]:
    """Return the records of the rotated logs (oldest first) and of the current one."""
    records = []
    for number in range(KEEP_ROTATED, 0, -1):
        records += read_sessions(rotated(audit_log, number))[0]
    return records + read_sessions(audit_log)[0]
