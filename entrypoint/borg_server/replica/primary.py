"""The replica's SSH session to the primary's reader (sessions/replica_source.py): list the committed state,
fetch listed files.

One session per round, with the replica key and the pinned host key only (no agent, no other
identity, no prompt). What the reader answers is checked before it is used: a header that is no
JSON, a size that is no number or a listing over MAX_LISTING is a PrimaryError; an answer the
reader gives when the primary moved on meanwhile (a new commit, a compaction) is Moved.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import BinaryIO

from borg_common import private_key
from borg_common.process import converse
from borg_server.records.configuration import Replication
from borg_server.system.paths import Paths

BLOCK = 1024 * 1024
MAX_LISTING = 256 * 1024 * 1024


class PrimaryError(Exception):
    """The primary could not be reached or answered what its reader never sends; the message says which."""


class Moved(Exception):
    """The primary changed a client's repository during the round (a new commit, a compaction): next round."""


def ssh_argv(replication: Replication, key: Path, known_hosts: Path) -> list[str]:
    """Given the settings and where the key and pinned host key are, return the ssh command to the reader."""
    return [
        "ssh", "-T", "-i", str(key), "-p", str(replication.port),
        "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=30", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4",
        f"{replication.user}@{replication.host}", "replica",
    ]  # fmt: skip


def open_new(path: Path, gid: int) -> BinaryIO:
    """Create (replace) a file for writing, root:gid, mode 640, never through a symlink."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)
    os.fchown(descriptor, 0, gid)
    return os.fdopen(descriptor, "wb")


class Primary:
    """One SSH session to the primary's reader: list, then get files (see replica_source)."""

    def __init__(self, replication: Replication, paths: Paths):
        paths.replica_ssh.mkdir(mode=0o700, parents=True, exist_ok=True)
        known_hosts = paths.replica_ssh / "known_hosts"
        known_hosts.write_text(replication.known_hosts_line)
        (paths.replica_ssh / "id_replica").unlink(missing_ok=True)  # the key copy earlier versions kept in /run
        # ssh refuses a key others may read (a Swarm or Kubernetes secret): then it reads a private copy on the
        # tmpfs, kept for the session
        self.key = contextlib.ExitStack()
        key = self.key.enter_context(private_key.usable(replication.ssh_key_file, paths.volatile))
        self.errors = tempfile.TemporaryFile()
        try:
            self.process = converse(ssh_argv(replication, key, known_hosts), self.errors)
        except BaseException:
            self.key.close()
            self.errors.close()
            raise

    def request(self, message: dict) -> int:
        """Send one request; return the size of the answer's body; raise Moved or PrimaryError."""
        try:
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline(4096)
        except OSError:
            line = b""
        if not line:
            raise PrimaryError(f"the primary closed the session: {self.ssh_errors()}")
        try:
            header = json.loads(line)
        except ValueError:
            raise PrimaryError("the primary answered what its reader never sends") from None
        if header.get("ok") is not True:
            raise Moved(str(header.get("error")))
        if not isinstance(header.get("size"), int) or header["size"] < 0:
            raise PrimaryError("the primary answered what its reader never sends")
        return header["size"]

    def listing(self) -> dict:
        """Return every client's committed state on the primary, as the reader lists it."""
        size = self.request({"op": "list"})
        if size > MAX_LISTING:
            raise PrimaryError(f"the primary's list has {size} bytes")
        body = self.read_exactly(size)
        try:
            return json.loads(body)
        except ValueError:
            raise PrimaryError("the primary's list is not JSON") from None

    def fetch(self, client: str, name: str, target: Path, gid: int) -> tuple[int, str]:
        """Fetch one listed file into target (root:gid, mode 640); return its size and sha256."""
        size = self.request({"op": "get", "client": client, "file": name})
        digest = hashlib.sha256()
        with open_new(target, gid) as file:
            left = size
            while left:
                block = self.read_exactly(min(BLOCK, left))
                digest.update(block)
                file.write(block)
                left -= len(block)
        return size, digest.hexdigest()

    def read_exactly(self, size: int) -> bytes:
        data = self.process.stdout.read(size)
        if len(data) != size:
            raise PrimaryError(f"the primary's answer was cut short: {self.ssh_errors()}")
        return data

    def ssh_errors(self) -> str:
        self.errors.seek(0)
        lines = self.errors.read().decode(errors="replace").strip().splitlines()
        return " / ".join(lines[-3:]) or "no message"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.errors.close()
        self.key.close()
