"""Writing files so that a crash or a full disk never leaves half a file behind; reading them without
following a symlink or blocking on a FIFO that someone left in their place.

Whoever can write a state volume (/var/lib/borg-server) may leave anything there: a stray file, a directory
where a file belongs, a FIFO, a symlink to /etc/shadow. Root never follows a symlink there to read, write,
chmod or chown; an entry that is not what the server expects is skipped (or, for the server's own
directories, moved aside) with one warning line, and a start never fails because of it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import logging
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

READ_LIMIT = 64 * 1024 * 1024  # bytes; far above any state file, key or export the images write
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # never through a link, never waiting


class NotRegular(OSError):
    """The entry is not a regular file (a symlink, directory, FIFO, device), or too big to read."""


def describe(path: Path) -> str:
    """Given a path, return what is there ("a symlink", "a directory", "a FIFO", ...), never following it."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "nothing"
    kinds = ((stat.S_ISLNK, "a symlink"), (stat.S_ISDIR, "a directory"), (stat.S_ISREG, "a file"),
             (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "a device")


def read_regular(path: Path, limit: int = READ_LIMIT) -> bytes:
    """Given a path, return the bytes of the regular file there; raise NotRegular if it is a symlink,
    directory, FIFO or device, or bigger than limit; FileNotFoundError if there is nothing."""
    try:
        descriptor = os.open(path, OPEN_FLAGS)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            raise NotRegular(errno.EINVAL, f"{path} is {describe(path)}, not a file") from None
        raise
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode):
        os.close(descriptor)  # before fdopen, which refuses a directory
        raise NotRegular(errno.EINVAL, f"{path} is {describe(path)}, not a file")
    with os.fdopen(descriptor, "rb") as file:
        if status.st_size > limit:
            raise NotRegular(errno.EFBIG, f"{path} has {status.st_size} bytes, more than {limit}")
        return file.read(limit + 1)


def holds(path: Path, content: bytes, mode: int) -> bool:
    """Return whether path is a regular file (not through a symlink) with exactly that content and mode.

    One open and one fstat: what a start that changes nothing needs to know about each file it keeps.
    """
    try:
        descriptor = os.open(path, OPEN_FLAGS)
    except OSError:
        return False
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode) or stat.S_IMODE(status.st_mode) != mode or status.st_size != len(content):
        os.close(descriptor)  # a directory, a FIFO, another mode or size: not what is kept
        return False
    with os.fdopen(descriptor, "rb") as file:
        return file.read(len(content) + 1) == content


def move_aside(path: Path) -> Path:
    """Rename an unexpected entry to <name>.unexpected-<time>[-<n>] (the entry itself, never over another one);
    return the new path."""
    stem = f"{path.name}.unexpected-{time.strftime('%Y%m%dT%H%M%S')}"
    names = (f"{stem}-{number}" if number else stem for number in itertools.count())
    target = next(path.with_name(name) for name in names if not os.path.lexists(path.with_name(name)))
    os.rename(path, target)
    return target


def atomic_write(path: Path, data: str | bytes, mode: int = 0o644, durable: bool = True) -> bool:
    """Given a path and its new content, replace the file atomically with that mode.

    Return False (and touch nothing) when the file already has exactly that content and mode,
    True when it was written. The content is fsynced before the rename, the directory after; not
    durable: neither, for many files made durable at once afterwards (sync_filesystem). What is at
    path is never read through a symlink or waited on (a FIFO); a symlink or FIFO there is replaced
    (the entry itself), a directory moved aside to <name>.unexpected-<time> with a warning.
    """
    content = data.encode() if isinstance(data, str) else data
    if holds(path, content, mode):
        return False
    kind = describe(path)
    if kind == "a directory":
        logger.warning("%s was a directory where a file belongs; moved it to %s", path, move_aside(path))
    elif kind not in ("nothing", "a file"):
        logger.warning("%s was %s where a file belongs; replaced it (the entry itself)", path, kind)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(content)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    if durable:
        fsync_directory(path.parent)
    return True


def fsync_directory(directory: Path) -> None:
    """Make a rename or unlink in directory durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def sync_filesystem(path: Path) -> None:
    """Make everything written on path's file system durable with one syncfs(2) (os.sync where there is none)."""
    import ctypes  # only here: the one caller syncs once per start

    descriptor = os.open(path, os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).syncfs(descriptor) != 0:
            os.sync()
    except AttributeError:
        os.sync()
    finally:
        os.close(descriptor)


def is_real_directory(path: Path) -> bool:
    """Return whether path is a directory itself (not a symlink to one)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def clear_for_write(path: Path) -> bool:
    """Make room to write a regular file at path: remove a symlink, FIFO, socket or device there (the
    entry itself, never what it points at). Return False, with a warning, if a directory is in the way."""
    kind = describe(path)
    if kind in ("nothing", "a file"):
        return True
    if kind == "a directory":
        logger.warning("%s is a directory where a file belongs; it is left as it is and not written", path)
        return False
    os.unlink(path)
    logger.warning("%s was %s where a file belongs; removed it", path, kind)
    return True


def ensure_real_directories(directories: list[Path]) -> None:
    """Given the server's own directories, move aside any that is a symlink or not a directory (with a
    warning), so that creating, chmod and chown afterwards reach the real directory only."""
    for directory in directories:
        kind = describe(directory)
        if kind not in ("nothing", "a directory"):
            target = move_aside(directory)
            logger.warning("%s was %s, not a directory; moved it to %s and made a new one", directory, kind, target)


def open_lock(path: Path) -> IO[str]:
    """Open (creating it) the lock file at path for appending, never through a symlink; a symlink or
    FIFO in its place is removed first, a directory moved aside (the lock is the server's own file)."""
    if describe(path) == "a directory":
        logger.warning("%s was a directory where a lock file belongs; moved it to %s", path, move_aside(path))
    clear_for_write(path)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    return os.fdopen(descriptor, "a")


@contextlib.contextmanager
def held_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the lock file at path (open_lock) until the block ends."""
    with open_lock(path) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_file(path: Path, mode: int) -> None:
    """Make path a regular file of root's with mode (created empty if missing), never through a symlink:
    a symlink, FIFO or device there is removed, a directory moved aside, each with a warning."""
    if describe(path) == "a directory":
        logger.warning("%s was a directory where a file belongs; moved it to %s", path, move_aside(path))
    clear_for_write(path)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        if os.geteuid() == 0:  # the server runs as root; a test as whoever runs it
            os.fchown(descriptor, 0, 0)
        os.fchmod(descriptor, mode)
    finally:
        os.close(descriptor)
