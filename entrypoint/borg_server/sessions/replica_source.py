"""The primary's side of replication: a reader of committed segments, the forced command of the replica key.

The replica key's session is handed to the broker like a client's (sessions/forced_command.py), and the broker runs
this reader (as root, so it can read every client's directory) on the session's stdin and stdout
instead of borg serve. It can only answer two requests, one JSON line each:

- {"op": "list"}: every configured client's repository as it is committed now: its last commit N,
  each committed segment (number ≤ N) with its size and sha256, and whether borg's index, hints and
  integrity files of transaction N are there. The sha256 comes from the monitor's baseline
  (repository/baseline.py's SegmentPrint) when the file's size, times and inode are unchanged; only a new or
  changed segment is read. Every segment the monitor finds changed, truncated, removed or unreadable (its
  tampering) is read again and listed under "damaged" with that finding, so the replica learns of damage that
  left the file's stat as it was (a disk's). "reviewed_through": the segment through which the monitor reviewed
  the deletes (none pending up to it), which a promoted replica's monitor takes as its own
  (repository/watch.py adopt_copy).
- {"op": "get", "client": c, "file": f}: the bytes of one file the last list named: a committed
  segment ("segment:12"), "config", "README", or "index.N" / "hints.N" / "integrity.N" of that
  list's last commit.

Each answer is a JSON line ({"ok": true, "size": n}, then n bytes; or {"ok": false, "error": …}).
Nothing else can be asked: no path from the request is ever opened (a request names a listed file by
its name, and the reader opens the path it built itself, never through a symlink), nothing after a
commit (half a transaction) is ever listed, and nothing is ever written. The session is audited
like a client's (role "replica").
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from borg_common import files as safe_files
from borg_server.records import state_file
from borg_server.records.client_state import ClientState, SegmentPrint
from borg_server.records.configuration import ServerConfig
from borg_server.repository import audit_log, baseline, segments
from borg_server.system.paths import Paths

logger = logging.getLogger(__name__)

MAX_REQUEST = 4096
BLOCK = 1024 * 1024
TRANSACTION_FILES = ("hints", "index", "integrity")  # borg's files of one transaction, named <kind>.<N>


@dataclass
class Listing:
    """One client's committed repository as listed: its last commit, segment prints and the files it may send."""

    append_only: bool
    last_commit: int | None
    prints: dict[int, SegmentPrint] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    compacted_at: str | None = None
    damaged: dict[int, str] = field(default_factory=dict)  # segment -> the monitor's finding: changed, truncated, …
    reviewed_through: int | None = None

    def to_json(self) -> dict:
        complete = self.last_commit is not None and all(f"{kind}.{self.last_commit}" in self.files
                                                        for kind in TRANSACTION_FILES)  # fmt: skip
        return {
            "append_only": self.append_only,
            "last_commit": self.last_commit,
            "segments": {str(n): [p.size, p.sha256] for n, p in self.prints.items()},
            "complete": complete and "config" in self.files,
            "compacted_at": self.compacted_at,
            "damaged": {str(n): kind for n, kind in sorted(self.damaged.items())},
            "reviewed_through": self.reviewed_through,
        }


def monitor_state(paths: Paths, client: str) -> ClientState | None:
    """Return what the monitor knows of the client (read only, never moved aside); None if it cannot be read."""
    try:
        return state_file.from_json(json.loads(safe_files.read_regular(paths.monitor_state(client), 1 << 30)), "")
    except (OSError, ValueError):
        return None


def damaged(found: ClientState) -> dict[int, str]:
    """Given the monitor's state, return the committed segments it finds changed, truncated, removed or unreadable."""
    tampering = found.tampering
    if tampering is None:
        return {}
    unreadable = segments.segment_named(tampering.unreadable or "")
    kinds = (("unreadable", () if unreadable is None else (unreadable,)), ("changed", tampering.changed),
             ("truncated", tampering.truncated), ("removed", tampering.removed))  # fmt: skip
    return {number: kind for kind, numbers in kinds for number in numbers}


def reviewed_through(found: ClientState) -> int | None:
    """Given the monitor's state, return the segment through which its review of deletes is done (None: not begun)."""
    pending = [group.segment for group in found.deletes] + [shrink.segment for shrink in found.manifest_shrinks]
    if found.scanned is None:
        return None
    return min([found.scanned, *(segment - 1 for segment in pending)])


def list_client(paths: Paths, client: str, append_only: bool) -> Listing:
    """Given a client, return its repository's committed state now (see the module docstring)."""
    repository = paths.client_repository(client)
    found = monitor_state(paths, client)
    recorded = found.segments if found else {}
    last_compaction = found.retention.last if found else None
    compacted_at = last_compaction.at if last_compaction and not last_compaction.failed else None
    files = segments.segment_files(repository)
    last = segments.last_commit(repository)
    listing = Listing(append_only, last, compacted_at=compacted_at)
    if last is None:
        return listing
    if found:
        listing.damaged = {n: kind for n, kind in damaged(found).items() if n <= last}
        listing.reviewed_through = reviewed_through(found)
    for number, path in files.items():
        if number > last:
            break
        try:
            known = recorded.get(number) if number not in listing.damaged else None
            listing.prints[number] = (
                known if known and baseline.unchanged_stat(path, known) else baseline.stat_print(path)
            )
        except FileNotFoundError:
            continue  # removed meanwhile (a compaction): not listed, so not copied
        listing.files[f"segment:{number}"] = path
    names = ["config", "README", *(f"{kind}.{last}" for kind in TRANSACTION_FILES)]
    listing.files |= {name: repository / name for name in names if (repository / name).is_file()}
    return listing


def open_listed(path: Path) -> tuple[BinaryIO, int]:
    """Open a listed regular file for reading, never through a symlink; return it and its size."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode):
        os.close(descriptor)
        raise FileNotFoundError(f"{path} is no longer a file")
    return os.fdopen(descriptor, "rb"), status.st_size


def answer(writer: BinaryIO, header: dict) -> None:
    writer.write(json.dumps(header, sort_keys=True).encode() + b"\n")


def send_file(writer: BinaryIO, path: Path) -> None:
    """Answer with one listed file: its size, then exactly that many bytes (a file growing meanwhile is cut)."""
    try:
        file, size = open_listed(path)
    except OSError:
        answer(writer, {"ok": False, "error": "gone"})  # the primary moved on (a new commit, a compaction)
        return
    with file:
        answer(writer, {"ok": True, "size": size})
        left = size
        while left:
            block = file.read(min(BLOCK, left)) or bytes(min(BLOCK, left))  # shrank meanwhile: the hash tells
            writer.write(block)
            left -= len(block)


def serve(server: ServerConfig, paths: Paths, reader: BinaryIO, writer: BinaryIO) -> int:
    """Answer the replica's requests until it closes the session; return 0, or 2 after a malformed request."""
    listed: dict[str, Listing] = {}
    while line := reader.readline(MAX_REQUEST + 1):
        try:
            request = json.loads(line) if len(line) <= MAX_REQUEST else None
        except ValueError:
            request = None
        if not isinstance(request, dict) or request.get("op") not in ("list", "get"):
            answer(writer, {"ok": False, "error": 'a request is one JSON line: {"op": "list"} or {"op": "get", …}'})
            writer.flush()
            return 2
        if request["op"] == "list":
            listed = {c.name: list_client(paths, c.name, c.append_only) for c in server.clients
                      if segments.has_repository(paths.client_repository(c.name))}  # fmt: skip
            body = json.dumps({name: listing.to_json() for name, listing in listed.items()}).encode()
            answer(writer, {"ok": True, "size": len(body)})
            writer.write(body)
        else:
            listing = listed.get(request.get("client"))
            path = listing.files.get(request.get("file")) if listing and isinstance(request.get("file"), str) else None
            if path is None:
                answer(writer, {"ok": False, "error": "not a file of the last list"})
            else:
                send_file(writer, path)
        writer.flush()
    return 0


def run(server: ServerConfig, fingerprint: str, environ: dict, stdio: tuple[int, int, int], paths: Paths) -> int:
    """Run one replica session on stdio (in the broker, as root); write its audit record; return its exit code."""
    started = time.time()
    try:
        with open(stdio[0], "rb", closefd=False) as reader, open(stdio[1], "wb", closefd=False) as writer:
            code = serve(server, paths, reader, writer)
    except OSError as error:  # the replica went away
        logger.info("replica session from %s ended: %s", environ.get("SSH_CONNECTION", "?").split(" ")[0], error)
        code = 1
    record = audit_log.session_record(None, "replica", fingerprint, started, time.time(), code, environ)
    audit_log.append_record(paths.audit_log, record | {"event": "replica-session"})
    return code
