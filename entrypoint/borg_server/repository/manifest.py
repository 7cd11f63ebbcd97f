"""What the server sees of a client's manifest and archives without a key: sessions that added data,
and a manifest that shrank while no archive object was deleted.

Both read committed segments only (repository/segments.py). A backup PUTs chunks and an archive object before
it rewrites the manifest (key of 32 zero bytes) in the same transaction; `with-lock`, `break-lock`,
`list`, `prune` and `delete` commit a transaction that PUTs the manifest alone (or nothing), `debug
put-obj` one with no manifest. So a session added data when a transaction it committed PUT another
key, then the manifest. The manifest is PUT, encrypted, in every transaction that changes it; every
archive entry in it carries a 32-byte random id, its name and time, so its size falls by at least
that much when an archive leaves it. Borg removes an archive from the manifest together with a
DELETE of its archive object (delete, prune, rename, checkpoint clean-up); a manifest rewritten
without an archive and without any such DELETE is a client with the key hiding archives from every
listing, while their objects stay (borg check --repair finds them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from borg_server.records.client_state import ManifestShrink
from borg_server.repository import segments

logger = logging.getLogger(__name__)

SHRINK_THRESHOLD = 32  # bytes: the random id of one archive entry


@dataclass(frozen=True)
class ManifestPut:
    """One committed PUT of the manifest: its segment, its entry size, and whether a DELETE of another
    key came since the manifest PUT before it (an archive object or chunk deleted in between)."""

    segment: int
    size: int
    deleted_between: bool


def added_data(files: dict[int, Path], before: int | None, after: int | None) -> bool:
    """Given a repository's segment files and a session's committed segments before and after it,
    return whether a transaction in (before, after] PUT a key other than the manifest, then the manifest.

    A new archive is listed in the manifest in the transaction that writes it; objects PUT with no
    manifest after them (`borg debug put-obj`) are no backup. Only those segments are read, and only
    up to the first such transaction. A range compacted away (no segment left) or unreadable counts
    as no data: the session cannot be shown to have backed up.
    """
    if after is None:
        return False
    first, data = 0 if before is None else before + 1, False
    try:
        for number, path in files.items():
            if first <= number <= after:
                for entry in segments.iter_segment(path):
                    manifest_put = entry.tag == "put" and entry.key == segments.MANIFEST_KEY
                    if manifest_put and data:
                        return True
                    if entry.tag == "commit":
                        data = False  # objects of an earlier transaction are not this manifest's
                    elif entry.tag == "put" and not manifest_put:
                        data = True
    except (OSError, segments.SegmentError) as error:
        logger.warning("segments %d..%d cannot be read to tell whether a session added data: %s", first, after, error)
    return False


def manifest_puts(repository: Path, after_segment: int, last: int) -> list[ManifestPut]:
    """Given a repository directory, return the manifest PUTs committed in segments after_segment+1..last.

    Raise SegmentError (or OSError) if a segment to read is damaged.
    """
    puts, deleted = [], False
    files = segments.segment_files(repository)
    for entry in segments.entries_between(files, after_segment + 1, last):
        if entry.tag == "delete" and entry.key != segments.MANIFEST_KEY:
            deleted = True
        elif entry.tag == "put" and entry.key == segments.MANIFEST_KEY:
            puts.append(ManifestPut(entry.segment, entry.size, deleted))
            deleted = False
    return puts


def shrinks(
    previous: tuple[int | None, int | None], puts: list[ManifestPut], now: str
) -> tuple[list[ManifestShrink], tuple[int | None, int | None]]:
    """Given the last manifest (segment, size) known and newer manifest PUTs, return the shrinks among
    them (seen at now) and the last manifest (segment, size) after them."""
    found = []
    segment, size = previous
    for put in puts:
        if size is not None and size - put.size >= SHRINK_THRESHOLD and not put.deleted_between:
            found.append(ManifestShrink(put.segment, segment, size, put.size, now))
        segment, size = put.segment, put.size
    return found, (segment, size)
