"""Who owns a client's files: its directory, home and snapshots belong to its own uid, re-owned once on upgrade.

Before one account per client, every repository belonged to the borg account (PUID). At the first
start of this version (and whenever a client's directory does not belong to its uid, e.g. after a
restore) everything in it is re-owned to the client's uid, once; the registry remembers it, so the
tree is not walked at every start.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

from borg_common.files import describe, move_aside
from borg_server.system.accounts import Account
from borg_server.system.paths import Paths

logger = logging.getLogger(__name__)


def reown(top: Path, uid: int, gid: int, include_top: bool = True) -> int:
    """Given a directory, lchown everything in it (and itself) not owned by uid:gid; return how many entries changed.

    Symbolic links are changed themselves, never followed; a top that is not a directory itself is left alone.
    """
    changed = 0
    if describe(top) != "a directory":
        return 0

    def fix(path: str) -> None:
        nonlocal changed
        status = os.lstat(path)
        if (status.st_uid, status.st_gid) != (uid, gid):
            os.lchown(path, uid, gid)
            changed += 1

    if include_top:
        fix(str(top))
    for directory, subdirectories, files in os.walk(top):
        for name in subdirectories + files:
            fix(os.path.join(directory, name))
    return changed


def owned_by(path: Path, account: Account) -> bool:
    status = os.lstat(path)
    return (status.st_uid, status.st_gid) == (account.uid, account.gid)


def ensure_private_directory(path: Path, account: Account) -> bool:
    """Create path (mode 700, owned by the account) if missing; fix its mode; return whether it was created.

    Anything else in its place (a symlink, a file, a FIFO) is moved aside with a warning, never followed.
    """
    kind = describe(path)
    if kind not in ("nothing", "a directory"):
        logger.warning("client %s: %s was %s, not a directory; moved it to %s and made a new one",
                       account.client, path, kind, move_aside(path))  # fmt: skip
    created = kind != "a directory"
    if created:
        path.mkdir(mode=0o700, parents=True)
        os.chown(path, account.uid, account.gid)
    if os.lstat(path).st_mode & 0o777 != 0o700:
        os.chmod(path, 0o700)
        logger.info("client %s: %s mode set to 700", account.client, path)
    return created


def ensure_client_tree(account: Account, paths: Paths) -> Account:
    """Given a client's account, make its directory and home its own (re-owned once); return the account to record."""
    directory = paths.client_directory(account.client)
    created = ensure_private_directory(directory, account)
    if created:
        logger.info("client %s: created %s (owner %s, uid %d)", account.client, directory, account.user, account.uid)
    home = paths.client_home(account.client)
    created = ensure_private_directory(home, account) and created
    snapshots = paths.snapshot_directory(account.client)
    if created and describe(snapshots) != "a directory":
        return replace(account, reowned=True)  # both made just now, empty and the account's: nothing to walk
    if account.reowned and owned_by(directory, account) and owned_by(home, account):
        return account
    counts = [reown(directory, account.uid, account.gid), reown(home, account.uid, account.gid)]
    if describe(snapshots) == "a directory":
        counts.append(reown(snapshots, account.uid, account.gid, include_top=False))  # the top stays root's
    if sum(counts):
        logger.info(
            "client %s: re-owned %d entries to %s (uid %d): %d in %s, %d in its home, %d in snapshots",
            account.client, sum(counts), account.user, account.uid, counts[0], directory, counts[1],
            counts[2] if len(counts) > 2 else 0,
        )  # fmt: skip
    return replace(account, reowned=True)


def own_replica_copy(paths: Paths, name: str, gid: int) -> None:
    """Make the client's copy root's, readable by gid: directories 750 (the repository's own 770, for borg's
    lock files alone), files 640. Walked only when the top directory's group is not gid yet."""
    top = paths.client_directory(name)
    if os.path.islink(top):  # never walked through: what it points at is not the client's copy
        logger.warning("client %s: %s is a symlink, not its copy; left as it is", name, top)
        return
    top.mkdir(mode=0o750, parents=True, exist_ok=True)
    if (os.lstat(top).st_uid, os.lstat(top).st_gid) == (0, gid):
        return
    for directory, subdirectories, files in os.walk(top):
        os.lchown(directory, 0, gid)
        os.chmod(directory, 0o770 if Path(directory) == paths.client_repository(name) else 0o750)
        for entry in files:
            path = os.path.join(directory, entry)
            if not os.path.islink(path):
                os.lchown(path, 0, gid)
                os.chmod(path, 0o640)
        subdirectories[:] = [d for d in subdirectories if not os.path.islink(os.path.join(directory, d))]
    logger.info("client %s: its copy belongs to root, readable by gid %d", name, gid)
