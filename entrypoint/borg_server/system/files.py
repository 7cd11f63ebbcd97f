"""Reading and writing the state volume without trusting what else is in it.

Whoever can write /var/lib/borg-server may leave anything there: a stray file, a directory where a
file belongs, a FIFO, a symlink to /etc/shadow. Root never follows a symlink there to read, write,
chmod or chown; an entry that is not what the server expects is skipped (or, for the server's own
directories, moved aside) with one warning line, and a start never fails because of it.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import IO

from borg_common import files
from borg_common.files import describe, holds, move_aside  # noqa: F401 (the state volume's readers use them here)

logger = logging.getLogger(__name__)

READ_LIMIT = files.READ_LIMIT
Unexpected = files.NotRegular  # the entry is not a regular file (or not a directory) where the server expects one


def read_regular(path: Path, limit: int = READ_LIMIT) -> str:
    """Given a path, return the text of the regular file there; raise Unexpected if it is a symlink,
    directory, FIFO or device, or bigger than limit; FileNotFoundError if there is nothing."""
    return files.read_regular(path, limit).decode(errors="replace")


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
