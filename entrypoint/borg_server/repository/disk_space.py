"""Free space of the repositories' file system: the figure, the room kept for clean-up, failed transactions removed.

A backup that does not fit fills the disk with the segments of a transaction that never commits.
Borg 1.4 deletes them itself at the next write, but only after it took the repository lock, and
taking the lock writes a file: on a full disk nothing can, and every further run (and `borg check`)
fails with ENOSPC. So the server keeps two things:

1. borg's own `additional_free_space` in every repository's config (DISK_RESERVE): borg refuses a
   commit that would leave less than that free (Repository.InsufficientFreeSpaceError) and removes
   that transaction's segments at once. After every commit the lock, index and hints have room.
2. the clean-up of a failed transaction: the segments a repository holds after its last commit,
   deleted exactly as borg's LoggedIO.cleanup would, when no borg holds the repository's lock.
   Nothing committed is touched. It runs at the start of the client's next session, before its borg
   serve, when no process of the client's account is alive (sessions/session.py, under the same
   guard as the stale locks), so the run right after space is back succeeds; and in the monitor's
   scan when the file system has less than DISK_RESERVE free (the client's gate is closed for the
   moment, as for a compaction), so the space comes back even when no client connects.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from borg_common.values import human_size
from borg_server.records.client_state import ClientState
from borg_server.repository import gate, segments
from borg_server.system.paths import Paths

logger = logging.getLogger(__name__)

DEFAULT_RESERVE = (
    1000**3
)  # 1G, decimal like every size setting; borg's documentation suggests keeping about 1-2 GB free
RESERVE_SHARE = 0.02  # the default never takes more than this share of the file system
GATE_WAIT = 1.0  # seconds the clean-up waits for a client's sessions; a running session means: not now
FREE_SPACE_LINE = re.compile(r"^additional_free_space\s*=.*$", re.MULTILINE)


@dataclass(frozen=True)
class DiskUsage:
    """The file system holding the repositories: its size, what is free for the borg user, the share used."""

    path: str
    total_bytes: int
    free_bytes: int
    used_ratio: float
    reserve_bytes: int  # kept free in every repository's config (additional_free_space)


def measure(path: Path, reserve: int | None) -> DiskUsage:
    """Given the repositories' directory and DISK_RESERVE (None: the default), return its file system's figures."""
    existing = next((place for place in (path, *path.parents) if place.exists()), Path("/"))
    figures = os.statvfs(existing)  # a directory not made yet: the file system it will be made on
    total = figures.f_blocks * figures.f_frsize
    free = figures.f_bavail * figures.f_frsize
    used = round(1 - free / total, 4) if total else 0.0
    return DiskUsage(str(path), total, free, used, reserve_size(reserve, total))


def reserve_size(configured: int | None, total: int) -> int:
    """Given DISK_RESERVE (None: unset) and the file system's size, return the bytes to keep free."""
    if configured is not None:
        return configured
    return min(DEFAULT_RESERVE, int(total * RESERVE_SHARE))


def set_free_space(config_text: str, reserve: int) -> str:
    """Given a repository's config text, return it with [repository] additional_free_space = reserve."""
    line = f"additional_free_space = {reserve}"
    if FREE_SPACE_LINE.search(config_text):
        return FREE_SPACE_LINE.sub(line, config_text, count=1)
    return re.sub(r"^\[repository\]\s*$", f"[repository]\n{line}", config_text, count=1, flags=re.MULTILINE)


def keep_free_space(found: ClientState | None, repository: Path, reserve: int) -> bool:
    """Write additional_free_space = reserve into the repository's config if it differs; return whether it did.

    found: the client's monitor state (None: the client is not watched for tampering). The config is
    changed only if it still is the one the baseline knows (a changed config waits for `borg-server
    audit`), and the baseline then takes the new digest, so the server's own change is no tampering.
    Nothing is written while borg holds the repository's lock. The file keeps its owner and mode.
    The client's account owns the repository directory, so every step goes through a descriptor of
    it and none follows a symlink: what a session planted there is never written, read or chowned.
    """
    if segments.busy(repository):
        return False
    try:
        directory = open_repository_directory(repository)
    except OSError:
        return False
    try:
        return _keep_free_space(found, directory, repository, reserve)
    except (OSError, UnicodeDecodeError):
        return False
    finally:
        os.close(directory)


def open_repository_directory(repository: Path) -> int:
    """Given /srv/borg/<client>/main, return a descriptor of it; raise OSError if it, or the client's directory
    (whose entries the client's account may change), is not a directory itself."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    parent = os.open(repository.parent, flags)
    try:
        return os.open(repository.name, flags, dir_fd=parent)
    finally:
        os.close(parent)


def _keep_free_space(found: ClientState | None, directory: int, repository: Path, reserve: int) -> bool:
    """keep_free_space in the repository directory open as directory."""
    config = os.open("config", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=directory)
    try:
        status = os.fstat(config)
        data = os.read(config, 1024 * 1024) if stat.S_ISREG(status.st_mode) else b""  # a config is 200 bytes
    finally:
        os.close(config)
    text = data.decode()
    digest = hashlib.sha256(data).hexdigest()
    if found is not None and found.config_digest not in (None, digest):
        return False
    changed = set_free_space(text, reserve)
    if changed == text or "[repository]" not in text:
        return False
    temporary = ".config.borg-server"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary, dir_fd=directory)  # whatever is there: the entry itself, never what it points at
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with os.fdopen(os.open(temporary, flags, 0o600, dir_fd=directory), "wb") as file:
        file.write(changed.encode())
        os.fchown(file.fileno(), status.st_uid, status.st_gid)
        os.fchmod(file.fileno(), status.st_mode & 0o777)
    os.replace(temporary, "config", src_dir_fd=directory, dst_dir_fd=directory)
    if found is not None:
        found.config_digest = hashlib.sha256(changed.encode()).hexdigest()
    logger.info("repository %s: additional_free_space set to %d bytes (DISK_RESERVE)", repository, reserve)
    return True


def ends_with_commit(path: Path) -> bool:
    """Return whether a segment file ends with a COMMIT entry (borg's own test, LoggedIO.is_committed_segment)."""
    try:
        with open(path, "rb") as file:
            if file.seek(0, 2) < len(segments.MAGIC) + len(segments.COMMIT_ENTRY):
                return False
            file.seek(-len(segments.COMMIT_ENTRY), 2)
            return file.read() == segments.COMMIT_ENTRY
    except OSError:
        return False


def uncommitted(repository: Path) -> dict[int, Path]:
    """Given a repository, return its segment files after the last one that ends with a commit, as borg finds them.

    None are returned if no segment ends with a commit (not a repository borg could clean up either).
    """
    files = segments.segment_files(repository)
    last = next((number for number, path in reversed(files.items()) if ends_with_commit(path)), None)
    return {} if last is None else {number: path for number, path in files.items() if number > last}


def remove_failed_transaction(paths: Paths, client: str, known: set[int] = frozenset()) -> int:
    """Delete the client's segments after its last commit if no session and no borg lock holds the repository.

    known: the committed segments of the monitor's baseline; if any would be deleted, nothing is.
    The gate is closed meanwhile (new sessions wait a moment). Return the bytes freed (0: nothing done).
    """
    repository = paths.client_repository(client)
    if not segments.has_repository(repository) or segments.busy(repository) or not uncommitted(repository):
        return 0
    try:
        with gate.compaction(paths, client, GATE_WAIT):
            return remove_uncommitted(paths, client, known)
    except gate.GateClosed:
        return 0


def remove_uncommitted(paths: Paths, client: str, known: set[int] = frozenset()) -> int:
    """Delete the client's segments after its last commit unless a borg lock holds the repository or known
    (the baseline's committed segments) holds one of them; return the bytes freed (0: nothing done).

    The caller makes sure no borg of the client starts meanwhile (the closed gate, or the session start
    guard with no process of the client's account alive).
    """
    repository = paths.client_repository(client)
    if not segments.has_repository(repository) or segments.busy(repository):
        return 0
    failed = uncommitted(repository)
    if not failed or known & set(failed):
        return 0
    freed = 0
    for _number, path in sorted(failed.items(), reverse=True):
        freed += path.stat().st_size
        path.unlink()
    logger.warning(
        "client %s: removed %s of segments a failed backup left after its last commit (%d segment files); "
        "nothing committed was touched",
        client, human_size(freed), len(failed),
    )  # fmt: skip
    return freed
