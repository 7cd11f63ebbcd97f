"""Reading and writing the state volume without trusting what else is in it.

Whoever can write /var/lib/borg-server may leave anything there: a stray file, a directory where a
file belongs, a FIFO, a symlink to /etc/shadow. Root never follows a symlink there to read, write,
chmod or chown; an entry that is not what the server expects is skipped (or, for the server's own
directories, moved aside) with one warning line, and a start never fails because of it.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

READ_LIMIT = 64 * 1024 * 1024  # bytes; far above any state file, key or export the server writes


class Unexpected(OSError):
    """The entry is not a regular file (or not a directory) where the server expects one."""


def describe(path: Path) -> str:
    """Given a path, return what is there ("a symlink", "a directory", "a FIFO", ...), never following it."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "nothing"
    kinds = ((stat.S_ISLNK, "a symlink"), (stat.S_ISDIR, "a directory"), (stat.S_ISREG, "a file"),
             (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "a device")


def read_regular(path: Path, limit: int = READ_LIMIT) -> str:
    """Given a path, return the text of the regular file there; raise Unexpected if it is a symlink,
    directory, FIFO or device, or bigger than limit; FileNotFoundError if there is nothing."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            raise Unexpected(errno.EINVAL, f"{path} is {describe(path)}, not a file") from None
        raise
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode):
        os.close(descriptor)
        raise Unexpected(errno.EINVAL, f"{path} is {describe(path)}, not a file")
    with os.fdopen(descriptor, "rb") as file:
        if status.st_size > limit:
            raise Unexpected(errno.EFBIG, f"{path} has {status.st_size} bytes, more than {limit}")
        return file.read(limit + 1).decode(errors="replace")


def holds(path: Path, content: bytes, mode: int) -> bool:
    """Return whether path is a regular file (not through a symlink) with exactly that content and mode.

    One open and one fstat: what a start that changes nothing needs to know about each file it keeps.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode) or stat.S_IMODE(status.st_mode) != mode or status.st_size != len(content):
        os.close(descriptor)  # a directory, a FIFO, another mode or size: not what is kept
        return False
    with os.fdopen(descriptor, "rb") as file:
        return file.read(len(content) + 1) == content


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


def move_aside(path: Path) -> Path:
    """Rename an unexpected entry to <name>.unexpected-<time> (the entry itself); return the new path."""
    target = path.with_name(f"{path.name}.unexpected-{time.strftime('%Y%m%dT%H%M%S')}")
    os.rename(path, target)
    return target


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
    FIFO in its place is removed first. Raise Unexpected if a directory is in the way."""
    if not clear_for_write(path):
        raise Unexpected(errno.EISDIR, f"{path} is a directory, not a lock file")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    return os.fdopen(descriptor, "a")
