"""The gate between a client's sessions and `borg-server compact` of its repository.

Every session holds the client's gate lock shared for its whole length; a compaction holds it
exclusively. A compaction first creates its marker file, then waits for the exclusive lock: the
sessions already running finish, and every session that starts meanwhile sees the marker (it looks
only after it holds the lock, so it cannot miss it) and steps back until the compaction is over.
So no delete can be written between the compaction's last scan and the compaction itself, and a
stream of new sessions cannot starve the compaction. The compaction holds its marker locked, so a
marker left behind by a killed compaction holds nothing back.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

from borg_server.system.paths import Paths

POLL = 1.0
MARKER_WAIT = 2.0  # seconds to get the marker's lock from a session that checks it


class GateClosed(Exception):
    """The gate stayed closed for longer than allowed; the message says why."""


def try_lock(file, operation: int) -> bool:
    try:
        fcntl.flock(file, operation | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def compacting(paths: Paths, client: str) -> bool:
    """Return whether a compaction of the client runs: its marker exists and its creator holds it locked.

    A marker left by a compaction that was killed is not locked and does not count.
    """
    try:
        with open(paths.compaction_marker(client), "rb") as marker:
            if try_lock(marker, fcntl.LOCK_SH):
                return False
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: hold the session back rather than let it run into a compaction
    return True


@contextlib.contextmanager
def session(paths: Paths, client: str, limit: float, stderr: TextIO | None = None) -> Iterator[BinaryIO | None]:
    """Hold the client's gate for a session; wait while a compaction runs; raise GateClosed after limit seconds.

    While it waits it says so on stderr (the session's own, which the SSH client shows).

    Yield the locked gate file (hand it to the session's process so the gate stays held as long as it
    runs). Without a gate file (the server has not set the client up yet), the session is not held back.
    """
    try:
        lock = open(paths.gate_lock(client), "rb")  # noqa: SIM115 (closed below, after the session)
    except FileNotFoundError:
        yield None
        return
    except OSError as error:
        raise GateClosed(f"the gate of {client} cannot be opened: {error}") from None
    with lock:
        deadline = time.monotonic() + limit
        told = False
        while True:
            if try_lock(lock, fcntl.LOCK_SH):
                if not compacting(paths, client):
                    break
                fcntl.flock(lock, fcntl.LOCK_UN)
            if not told:
                print(
                    "borg-server: the server is compacting this repository; this session waits",
                    file=stderr or sys.stderr,
                )
                told = True
            if time.monotonic() > deadline:
                raise GateClosed(f"the compaction of {client} still runs after {limit:.0f}s; try again later")
            time.sleep(POLL)
        yield lock


@contextlib.contextmanager
def compaction(paths: Paths, client: str, limit: float) -> Iterator[None]:
    """Close the client's gate: new sessions wait, running ones are waited for (up to limit seconds).

    The marker is held locked for the whole compaction, so a killed compaction leaves nothing that
    holds sessions back. Raise GateClosed if another compaction of the client runs or the sessions
    do not end in time.
    """
    with open(paths.compaction_marker(client), "a") as marker:
        os.fchmod(marker.fileno(), 0o644)
        deadline = time.monotonic() + MARKER_WAIT  # a session may be looking at a stale marker this moment
        while not try_lock(marker, fcntl.LOCK_EX):
            if time.monotonic() > deadline:
                raise GateClosed(f"a compaction of {client} is already running")
            time.sleep(POLL / 10)
        try:
            with open(paths.gate_lock(client), "rb") as lock:
                deadline = time.monotonic() + limit
                while not try_lock(lock, fcntl.LOCK_EX):
                    if time.monotonic() > deadline:
                        raise GateClosed(f"sessions of {client} still run after {limit:.0f}s; nothing was changed")
                    time.sleep(POLL)
                yield
        finally:
            paths.compaction_marker(client).unlink(missing_ok=True)


def prepare(paths: Paths, clients: list[str]) -> None:
    """Create the gate directory and one gate file per client (root-owned, readable by all)."""
    directory = paths.gate_directory
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    for client in clients:
        lock: Path = paths.gate_lock(client)
        lock.touch(exist_ok=True)
        os.chmod(lock, 0o644)  # the broker opens it for each session, borg serve only inherits it
