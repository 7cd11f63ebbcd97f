"""Writing files so that a crash or a full disk never leaves half a file behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: str | bytes, mode: int = 0o644, durable: bool = True) -> bool:
    """Given a path and its new content, replace the file atomically with that mode.

    Return False (and touch nothing) when the file already has exactly that content and mode,
    True when it was written. The content is fsynced before the rename, the directory after; not
    durable: neither, for many files made durable at once afterwards (sync_filesystem).
    """
    content = data.encode() if isinstance(data, str) else data
    try:
        if path.read_bytes() == content and (path.stat().st_mode & 0o7777) == mode:
            return False
    except OSError:
        pass
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
