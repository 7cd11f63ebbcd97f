"""Repository locks left by a borg serve that died (a killed or crashed server), removed before the next session.

borg tells a stale lock by host id and pid, which after a server restart misleads it three ways:
the dead borg serve's pid may belong to a live process again (borg then waits out --lock-wait and
fails), a re-created container has another host id (the same), and even when borg does remove the
lock, borg 1.4.0 first sleeps one poll interval (a tenth of --lock-wait, at most 60 s). The
broker knows better: every borg of a client runs as the client's own account, so when no process
of that account is alive, no lock in its directory has a live holder. The check and the start of
the session's borg serve are one step per client (start_guard), so two sessions starting at once
cannot remove each other's lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

PROC = Path("/proc")
LOCK_FILES = ("lock.roster",)
LOCK_DIRECTORIES = ("lock.exclusive",)
OPEN_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW

_guards: dict[str, threading.Lock] = {}
_guards_lock = threading.Lock()


@contextlib.contextmanager
def start_guard(client: str) -> Iterator[None]:
    """Hold the client's start guard: one session of a client at a time checks its locks and starts borg serve."""
    with _guards_lock:
        guard = _guards.setdefault(client, threading.Lock())
    with guard:
        yield


def live_processes(uid: int, proc: Path = PROC) -> list[int]:
    """Given a uid, return the pids of the live processes with it as any of their uids (zombies do not count)."""
    pids = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue  # it ended meanwhile
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if str(uid) in fields.get("Uid", "").split() and not fields.get("State", "").strip().startswith(("Z", "X")):
            pids.append(int(entry.name))
    return pids


def repositories(client_directory: Path) -> list[Path]:
    """Given a client's directory, return the repositories in it that hold a lock (real directories only)."""
    found = []
    try:
        candidates = sorted(client_directory.iterdir())
    except OSError:
        return []
    for candidate in candidates:
        if candidate.is_symlink() or not candidate.is_dir():
            continue
        if any(os.path.lexists(candidate / name) for name in (*LOCK_FILES, *LOCK_DIRECTORIES)):
            found.append(candidate)
    return found


def remove_lock(repository: Path) -> list[str]:
    """Remove borg's lock (lock.roster, lock.exclusive and what is in it) from repository; return what held it.

    Works through directory descriptors and never follows a symbolic link.
    """
    holders: list[str] = []
    directory = os.open(repository, OPEN_DIRECTORY)
    try:
        for name in LOCK_DIRECTORIES:
            try:
                inner = os.open(name, OPEN_DIRECTORY, dir_fd=directory)
            except FileNotFoundError:
                continue
            except OSError:  # not a directory: a file or a link in its place
                os.unlink(name, dir_fd=directory)
                continue
            try:
                for holder in os.listdir(inner):
                    os.unlink(holder, dir_fd=inner)
                    holders.append(holder)
            finally:
                os.close(inner)
            os.rmdir(name, dir_fd=directory)
        for name in LOCK_FILES:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=directory)
    finally:
        os.close(directory)
    return holders


def remove_locks(client: str, client_directory: Path) -> list[Path]:
    """Given a client and its directory, remove the repository locks in it; return where.

    Call it holding start_guard(client), before the session's borg serve starts, and only when no
    process of the client's account is alive (live_processes; another session or the monitor's check
    means borg's own rules apply). A lock that cannot be removed is logged and left to borg.
    """
    cleared = []
    for repository in repositories(client_directory):
        try:
            holders = remove_lock(repository)
        except OSError as error:
            logger.warning("client %s: the stale lock in %s cannot be removed: %s", client, repository, error)
            continue
        logger.warning(
            "client %s: removed the lock of %s left by a borg serve that is gone (%s); the next session does not wait",
            client, repository, ", ".join(holders) or "no holder",
        )  # fmt: skip
        cleared.append(repository)
    return cleared
