"""A private SSH key file as ssh will use it, whatever mode its mount gave it.

Orchestrators mount secrets readable by everyone (Docker Swarm: 0444, Kubernetes: 0644, both owned by root);
ssh refuses a private key that belongs to the user it runs as and that others may read ("UNPROTECTED PRIVATE
KEY FILE"). Such a key is used through a private copy (mode 600, this user's) on a tmpfs, made for one ssh
session and removed after it; a key ssh accepts as it is is used where it is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

# A tmpfs in every container (Docker and Kubernetes alike), writable whatever the user and the root file system:
# a copy there never reaches a disk or a volume, and goes with the container.
TMPFS = Path("/dev/shm")
KEY_LIMIT = 64 * 1024  # an RSA 16384-bit private key is about 13 kB


def refused_for_mode(path: Path) -> bool:
    """Given a private key file, return whether ssh would refuse it for its mode and owner: it is this user's and
    its group or others may read it (OpenSSH's sshkey_perm_ok). False if it cannot be looked at."""
    try:
        status = os.stat(path)  # followed, as ssh opens it: a Kubernetes secret is a symlink into ..data
    except OSError:
        return False
    return stat.S_ISREG(status.st_mode) and status.st_uid == os.getuid() and bool(status.st_mode & 0o077)


@contextlib.contextmanager
def usable(path: Path, directory: Path | None = None) -> Iterator[Path]:
    """Given a private key file, yield the file for ssh -i: the file itself if ssh accepts its mode, else a private
    copy (mode 600) in directory (default TMPFS), removed on exit.

    A key that cannot be copied is yielded as it is, with a warning: ssh then says why it refuses it, and the
    caller's report with it.
    """
    if not refused_for_mode(path):
        yield path
        return
    try:
        copy = _private_copy(path, directory or TMPFS)
    except OSError as error:
        logger.warning("cannot make a private copy of the private key %s for ssh: %s", path, error.strerror or error)
        yield path
        return
    try:
        yield copy
    finally:
        copy.unlink(missing_ok=True)


def _private_copy(path: Path, directory: Path) -> Path:
    """Copy the key into a new file of directory (mode 600, this user's); return it. Raise OSError if it cannot."""
    with open(path, "rb") as source:
        if os.fstat(source.fileno()).st_size > KEY_LIMIT:
            raise OSError(f"it has more than {KEY_LIMIT} bytes: not a private key")
        descriptor, name = tempfile.mkstemp(prefix="ssh-key-", dir=directory)  # mode 600, O_EXCL
        try:
            with os.fdopen(descriptor, "wb") as target:
                shutil.copyfileobj(source, target)
        except BaseException:
            os.unlink(name)
            raise
    return Path(name)
