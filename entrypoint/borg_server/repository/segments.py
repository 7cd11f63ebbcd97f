"""Read a borg 1.x repository's segment files without any key: commits, deletes and tampering.

Format, checked against borg 1.4.0 (`borg/repository.py`, class LoggedIO): a segment file
`data/<n // segments_per_dir>/<n>` starts with b"BORG_SEG" and holds entries, each a header
struct "<IIB" (crc32, size including the header, tag) and a body: PUT (0) = 32-byte key + data,
DELETE (1) = 32-byte key (size 41), COMMIT (2) = nothing (size 9). The crc32 covers every byte of
the entry after the crc field. Borg 1.4 has no other tags (PUT2 exists only in borg 2). A segment
whose last entry is a COMMIT is committed; everything up to it is the committed state, and borg
deletes the segments after the last commit before it next writes. A commit closes its segment (a
client's commit gets a 17-byte segment of its own), so borg never writes a committed segment
again; only compaction (`borg compact`, or `commit` without append-only) removes them, and borg
never compacts an append-only repository: for append-only clients every change of a committed
segment is damage or tampering (baseline.check_tampering).

When borg writes DELETE entries (observed: init, create one, create two, delete one gives
PUT(M) C | PUT PUT PUT D(M) P(M) C | PUT D(M) P(M) C | D(archive one) D(M) P(M) C, M = manifest):
- `Repository.put` of an existing key writes DELETE then PUT of that key, adjacent in the log.
  This is how the manifest (key of 32 zero bytes) is rewritten at every commit (borg puts each
  manifest DELETE and PUT in a segment of its own); `borg recreate --recompress` does it for chunks.
- Checkpoints of `borg create` (default every 30 minutes): the checkpoint archive is saved and
  committed, then its archive object is deleted as the first entry of the next transaction. That
  object was the last PUT before the manifest rewrite of the transaction just before.
- Client deletes: `borg delete`/`prune` delete each archive object plus every chunk no longer used,
  `rename` deletes the old archive object, `check --repair` deletes orphans and defect chunks.
- Compaction (never in append-only) copies still-needed DELETE entries into new segments, where
  `deletes_since` would report them again: `borg-server compact` moves the scan position past them;
  a compaction with an admin key makes them show up once more
  (docs/how-to/prune-safely.md#never-compact-from-the-client advises against it).

- `borg rename` (the sidecar renames the archive of a run whose dump failed to `….checkpoint`) PUTs
  the archive object under its new id, then deletes the old one: COMMIT | PUT(new) D(old) D(M) P(M) C.

Rule implemented by `deletes_since`: every committed DELETE of a key other than the manifest's is
reported, as one of four kinds. "overwrite": the next entry is a PUT of the same key (`put` of an
existing key; a client that overwrites a chunk with garbage destroys it at the next compaction, and
normal backups never do it). "checkpoint": it matches borg's checkpoint clean-up above and the PUT
it removes was that key's first (not an overwrite), so it can only remove an object added by the
transaction just before. "rename": the transaction opened with one new PUT (not an overwrite), this
DELETE came next and the manifest rewrite right after it, as `borg rename` writes it (it removes no data:
the renamed archive object was just written). "delete": every other, a client deleting archives or chunks.
Segments are read as a stream: memory does not grow with their size or the number of entries.
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LOCK_NAME = "lock.exclusive"  # borg's repository lock directory: present while a session writes
MAGIC = b"BORG_SEG"
HEADER = struct.Struct("<IIB")  # crc32, size including the header, tag
KEY_SIZE = 32
MAX_OBJECT_SIZE = 20 * 1024 * 1024  # borg's constants.MAX_OBJECT_SIZE
MANIFEST_KEY = bytes(KEY_SIZE)
TAGS = {0: "put", 1: "delete", 2: "commit"}
COMMIT_BODY = struct.pack("<IB", HEADER.size, 2)  # size and tag: what the crc of a COMMIT covers
COMMIT_ENTRY = struct.pack("<I", zlib.crc32(COMMIT_BODY)) + COMMIT_BODY  # every COMMIT is these 9 bytes


class SegmentError(Exception):
    """A segment file or the transactions log is not what borg writes; a segment's message starts with its path."""


SEGMENT_IN_MESSAGE = re.compile(r"/data/\d+/(\d+): ")


def segment_named(message: str) -> int | None:
    """Given a SegmentError's message (as a tamper finding keeps it), return the number of the segment it names."""
    found = SEGMENT_IN_MESSAGE.search(message)
    return int(found.group(1)) if found else None


@dataclass(frozen=True)
class Entry:
    """One log entry: where it starts, its tag ("put", "delete" or "commit"), key and size."""

    segment: int
    offset: int
    tag: str
    key: bytes | None
    size: int


@dataclass(frozen=True)
class Delete:
    """A DELETE a client wrote; kind is "delete", "overwrite", "checkpoint" or "rename" (see the module docstring)."""

    segment: int
    offset: int
    key: bytes
    kind: str


@dataclass(frozen=True)
class Fingerprint:
    """The size and sha256 (hex) of one segment file."""

    size: int
    sha256: str


def iter_segment(path: Path) -> Iterator[Entry]:
    """Given a segment file named by its number, yield its entries; raise SegmentError if it is damaged."""
    path = Path(path)
    if not is_number(path.name):
        raise SegmentError(f"{path}: a segment file is named by its number")
    segment = int(path.name)
    with open(path, "rb") as file:
        if file.read(len(MAGIC)) != MAGIC:
            raise SegmentError(f"{path}: bad magic, not a borg segment file")
        offset = len(MAGIC)
        while header := file.read(HEADER.size):
            if len(header) < HEADER.size:
                raise SegmentError(f"{path}: truncated entry header at offset {offset}")
            crc, size, tag = HEADER.unpack(header)
            if not HEADER.size <= size <= MAX_OBJECT_SIZE:
                raise SegmentError(f"{path}: impossible entry size {size} at offset {offset}")
            body = file.read(size - HEADER.size)
            if len(body) < size - HEADER.size:
                raise SegmentError(f"{path}: truncated entry at offset {offset}: {size} bytes expected")
            if zlib.crc32(body, zlib.crc32(header[4:])) != crc:
                raise SegmentError(f"{path}: crc32 mismatch at offset {offset}")
            if tag not in TAGS:
                raise SegmentError(f"{path}: unknown tag {tag} at offset {offset}")
            if tag != 2 and len(body) < KEY_SIZE:
                raise SegmentError(f"{path}: {TAGS[tag].upper()} without a key at offset {offset}")
            yield Entry(segment, offset, TAGS[tag], body[:KEY_SIZE] if tag != 2 else None, size)
            offset += size


def is_number(name: str) -> bool:
    """Return whether a file name is a number as borg writes them (ASCII digits only)."""
    return name.isascii() and name.isdigit()


def has_repository(repository: Path) -> bool:
    """Return whether a borg repository exists in the directory (its config file does)."""
    return (Path(repository) / "config").exists()


def busy(repository: Path) -> bool:
    """Return whether a borg session holds the repository's lock."""
    return (Path(repository) / LOCK_NAME).exists()


def segment_files(repository: Path) -> dict[int, Path]:
    """Given a repository directory, return its segment files by number, in ascending order (symlinks are none)."""
    files, data = {}, Path(repository) / "data"
    for directory in data.iterdir() if data.is_dir() and not data.is_symlink() else ():
        if is_number(directory.name) and directory.is_dir() and not directory.is_symlink():
            found = (file for file in directory.iterdir() if is_number(file.name) and not file.is_symlink())
            files.update((int(file.name), file) for file in found if file.is_file())
    return dict(sorted(files.items()))


def is_committed(path: Path) -> bool:
    """Given a segment file, return whether it is intact and its only COMMIT is its last entry (as borg decides)."""
    try:
        with open(path, "rb") as file:
            if file.seek(0, 2) < len(MAGIC) + len(COMMIT_ENTRY):
                return False
            file.seek(-len(COMMIT_ENTRY), 2)
            if file.read() != COMMIT_ENTRY:
                return False
        commits, last = 0, None
        for entry in iter_segment(path):
            commits += entry.tag == "commit"
            last = entry.tag
    except (OSError, SegmentError):
        return False
    return commits == 1 and last == "commit"  # a PUT whose data ends like a COMMIT is no commit


def last_commit(repository: Path) -> int | None:
    """Given a repository directory, return the highest committed segment number, None if there is none."""
    for number, path in reversed(segment_files(repository).items()):
        if is_committed(path):
            return number
    return None


def fingerprint(path: Path) -> Fingerprint:
    """Given a file, return its size and sha256."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as file:
        while block := file.read(1024 * 1024):
            digest.update(block)
            size += len(block)
    return Fingerprint(size, digest.hexdigest())


def entries_between(files: dict[int, Path], first: int, last: int) -> Iterator[Entry]:
    """Given segment files, yield the entries of the segments numbered first to last, in log order."""
    for number, path in files.items():
        if first <= number <= last:
            yield from iter_segment(path)


def previous_tail(files: dict[int, Path], before: int, count: int) -> list[Entry]:
    """Given segment files, return the last count entries of the segments numbered below before."""
    tail: list[Entry] = []
    for number in reversed([number for number in files if number < before]):
        tail[:0] = deque(iter_segment(files[number]), maxlen=count)
        if len(tail) >= count:
            break
    return tail[-count:]


def is_checkpoint_cleanup(delete: Entry, before: list[Entry]) -> bool:
    """Given a DELETE and the (up to 5) entries before it, return whether it is borg's checkpoint clean-up.

    That is: the DELETE opens a transaction, the transaction before ended with PUT(key),
    DELETE(manifest), PUT(manifest), COMMIT, and that PUT was not an overwrite (no DELETE(key) before it).
    """
    if len(before) < 4:
        return False
    put, manifest_delete, manifest_put, commit = before[-4:]
    overwritten = len(before) >= 5 and (before[-5].tag, before[-5].key) == ("delete", delete.key)
    return (
        (put.tag, put.key) == ("put", delete.key)
        and (manifest_delete.tag, manifest_delete.key) == ("delete", MANIFEST_KEY)
        and (manifest_put.tag, manifest_put.key) == ("put", MANIFEST_KEY)
        and commit.tag == "commit"
        and not overwritten
    )


def is_rename(delete: Entry, before: list[Entry], after: Entry | None) -> bool:
    """Given a DELETE, the (up to 5) entries before it and the entry after it, return whether it is `borg rename`'s:
    COMMIT, PUT(another key, not the manifest's), this DELETE, then DELETE(manifest)."""
    if len(before) < 2 or after is None:
        return False
    commit, put = before[-2:]
    return (
        commit.tag == "commit"
        and put.tag == "put"
        and put.key not in (delete.key, MANIFEST_KEY)
        and (after.tag, after.key) == ("delete", MANIFEST_KEY)
    )


def deletes_since(repository: Path, after_segment: int, last: int | None = None) -> Iterator[Delete]:
    """Given a repository directory and a segment number, yield the client deletes committed after it,
    up to the committed segment last (default: the last commit now).

    Manifest deletes are left out; entries after the last commit are not looked at. Raise
    SegmentError if a segment to read is damaged.
    """
    last = last_commit(repository) if last is None else last
    if last is None or last <= after_segment:
        return
    files = segment_files(repository)
    window = deque(previous_tail(files, after_segment + 1, 5), maxlen=5)
    pending: tuple[Entry, list[Entry]] | None = None  # a DELETE waiting to see the entry after it

    def classify(entry: Entry, before: list[Entry], after: Entry | None) -> Delete:
        if after is not None and (after.tag, after.key) == ("put", entry.key):
            kind = "overwrite"
        elif is_checkpoint_cleanup(entry, before):
            kind = "checkpoint"
        else:
            kind = "rename" if is_rename(entry, before, after) else "delete"
        return Delete(entry.segment, entry.offset, entry.key, kind)

    for entry in entries_between(files, after_segment + 1, last):
        if pending is not None:
            yield classify(*pending, after=entry)
            pending = None
        if entry.tag == "delete" and entry.key != MANIFEST_KEY:
            pending = (entry, list(window))
        window.append(entry)
    if pending is not None:
        yield classify(*pending, after=None)
