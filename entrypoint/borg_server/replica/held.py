"""Segments a compaction on the primary removed: kept aside on the replica, deleted REPLICA_KEEP_REMOVED later.

A set-aside segment lives in paths.replica_held(client) under a name that says when it was set
aside (held_name), so a file whose record the state lost (a round that failed after moving it) is
still found and deleted in time (adopt_orphans).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime

from borg_common import files
from borg_server.records.replica_state import Held
from borg_server.system.paths import Paths

logger = logging.getLogger(__name__)


def held_name(number: int, now: str) -> str:
    """Return the file name a set-aside segment gets: its number and when it was set aside."""
    return f"{number}.{now.replace(':', '-')}"


def adopt_orphans(paths: Paths, name: str, held: tuple[Held, ...]) -> tuple[Held, ...]:
    """Return held plus the set-aside files the state does not know (a round that failed after moving them)."""
    directory, known = paths.replica_held(name), {entry.file for entry in held}
    orphans = []
    for file in sorted(directory.iterdir()) if files.is_real_directory(directory) else []:
        number, _, moment = file.name.partition(".")
        if file.name not in known and number.isdigit() and held_name(int(number), moment) == file.name:
            date, _, time = moment.partition("T")
            with contextlib.suppress(ValueError):
                orphans.append(Held(int(number), datetime.fromisoformat(f"{date}T{time.replace('-', ':')}").isoformat(),
                                    file.name))  # fmt: skip
    return held + tuple(orphans)


def expire_held(paths: Paths, name: str, held: tuple[Held, ...], keep: int, now: datetime) -> tuple[Held, ...]:
    """Delete the held segments older than keep seconds; return those still kept."""
    kept = []
    for entry in adopt_orphans(paths, name, held):
        if (now - datetime.fromisoformat(entry.removed_at)).total_seconds() >= keep:
            (paths.replica_held(name) / entry.file).unlink(missing_ok=True)
            logger.info("client %s: deleted segment %d, removed on the primary at %s", name, entry.segment,
                        entry.removed_at)  # fmt: skip
        else:
            kept.append(entry)
    return tuple(kept)
