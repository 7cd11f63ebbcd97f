"""The run journal and the run lock: runs never overlap, and the last runs are kept for status and health.

Also the clean-up only the run lock makes safe: borg cache locks a killed run left behind.
"""

from __future__ import annotations

import fcntl
import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from borg_client.paths import Paths
from borg_common.files import atomic_write

logger = logging.getLogger(__name__)

RUN_HISTORY = 50


@contextmanager
def run_lock(paths: Paths, wait: bool = False) -> Iterator[bool]:
    """Hold the run lock while inside; yield False at once if another run holds it, unless wait."""
    paths.state.mkdir(parents=True, exist_ok=True)
    with open(paths.run_lock, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                yield False
                return
            logger.info("another backup is running: waiting for it to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield True


def record_run(paths: Paths, report: dict) -> None:
    """Given a run's report (as shipped), keep it with the last runs in the state volume."""
    with open(paths.runs_lock, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a skipped report and a manual run may finish at once
        runs = (last_runs(paths) + [report])[-RUN_HISTORY:]
        atomic_write(paths.runs, json.dumps(runs, indent=1), 0o600)


def last_runs(paths: Paths) -> list[dict]:
    """Return the recorded runs' reports, oldest first (none if the journal is missing or unreadable)."""
    try:
        return json.loads(paths.runs.read_text())
    except (OSError, ValueError):
        return []


def last_success_age(runs: list[dict], current: datetime) -> timedelta | None:
    """Given recorded runs, return how long ago the last successful backup finished (None: never); not prunes."""
    for entry in reversed(runs):
        if (
            entry.get("kind", "backup") == "backup"
            and entry.get("status") in ("success", "warning")
            and entry.get("finished_at")
        ):
            return current - datetime.fromisoformat(entry["finished_at"])
    return None


def clear_stale_cache_locks(cache: Path) -> None:
    """Remove borg's local cache locks that a killed run left behind.

    Called while holding the run lock, so no other backup of this sidecar is running. borg would
    not clear them itself: it tells a stale lock by host id and pid, and in a new container the
    dead borg's pid usually belongs to a live process again, so the next run would wait forever.
    """
    for lock in [*cache.glob("*/lock.exclusive"), *cache.glob("*/lock.roster")]:
        if lock.is_dir():
            shutil.rmtree(lock, ignore_errors=True)
        else:
            lock.unlink(missing_ok=True)
        logger.warning("removed %s, left by a run that was killed", lock)
