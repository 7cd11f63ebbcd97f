"""The gate between a client's sessions and `borg-server compact` of its repository.

Every session holds the client's gate lock shared for its whole length; a compaction holds it
exclusively. A compaction first creates its marker file, then waits for the exclusive lock: the
sessions already running finish, and every session that starts meanwhile sees the marker (it looks
only after it holds the lock, so it cannot miss it) and steps back until the compaction is over.
So no delete can be written between the compaction's last scan and the compaction itself, and a
stream of new sessions cannot starve the compaction. Both files live under the run-time directory,
which `borg-server start` empties of markers: no compaction survives a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from borg_server.paths import Paths

POLL = 1.0


class GateClosed(Exception):
    """The gate stayed closed for longer than allowed; the message says why."""


def try_lock(file, operation: int) -> bool:
    try:
        fcntl.flock(file, operation | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def session(paths: Paths, client: str, limit: float) -> Iterator[None]:
    """Hold the client's gate for a session; wait while a compaction runs; raise GateClosed after limit seconds.

    Without a gate file (the server has not set the client up), the session is not held back.
    """
    try:
        lock = open(paths.gate_lock(client), "rb")  # noqa: SIM115 (closed below, after the session)
    except OSError:
        yield
        return
    with lock:
        deadline = time.monotonic() + limit
        told = False
        while True:
            if try_lock(lock, fcntl.LOCK_SH):
                if not paths.compaction_marker(client).exists():
                    break
                fcntl.flock(lock, fcntl.LOCK_UN)
            if not told:
                print("borg-server: the server is compacting this repository; this session waits", file=sys.stderr)
                told = True
            if time.monotonic() > deadline:
                raise GateClosed(f"the compaction of {client} still runs after {limit:.0f}s; try again later")
            time.sleep(POLL)
        yield


@contextlib.contextmanager
def compaction(paths: Paths, client: str, limit: float) -> Iterator[None]:
    """Close the client's gate: new sessions wait, running ones are waited for (up to limit seconds).

    Raise GateClosed if another compaction of the client runs or the sessions do not end in time.
    """
    marker = paths.compaction_marker(client)
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        raise GateClosed(f"a compaction of {client} is already running ({marker} exists)") from None
    try:
        with open(paths.gate_lock(client), "rb") as lock:
            deadline = time.monotonic() + limit
            while not try_lock(lock, fcntl.LOCK_EX):
                if time.monotonic() > deadline:
                    raise GateClosed(f"sessions of {client} still run after {limit:.0f}s; nothing was changed")
                time.sleep(POLL)
            yield
    finally:
        marker.unlink(missing_ok=True)


def prepare(paths: Paths, clients: list[str]) -> None:
    """Create the gate directory and one gate file per client (root-owned, readable by all); drop stale markers."""
    directory = paths.gate_directory
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    for entry in directory.iterdir():
        if entry.suffix != ".lock":
            entry.unlink()  # a compaction marker left by a killed container: nothing compacts now
    for client in clients:
        lock: Path = paths.gate_lock(client)
        lock.touch(mode=0o644, exist_ok=True)
