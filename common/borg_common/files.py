"""Writing files so that a crash or a full disk never leaves half a file behind; reading them without
following a symlink or blocking on a FIFO that someone left in their place."""

from __future__ import annotations

import errno
import itertools
import logging
import os
import stat
import tempfile
import time
from pathlib import Path

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
