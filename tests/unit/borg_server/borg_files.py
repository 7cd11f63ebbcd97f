"""Builders of borg 1.4.0 segment files for the server's tests: entries byte by byte, and repositories.

Segments are built the way borg 1.4.0's LoggedIO writes them; the sequences are the ones a real
borg 1.4.0 repository showed (see the docstring of borg_server.repository.segments). test_segments checks the
entries against bytes borg wrote.
"""

import struct
import zlib

from borg_server.repository.segments import MANIFEST_KEY

MAGIC = b"BORG_SEG"
# Written by borg 1.4.0 (`borg init -e none`, `borg create`, `borg delete`), copied from the files.
REAL_PUT = bytes.fromhex("a3e56cba2e0000000087428fc522803d31065e7bce3cf03fe475096631e5e07bbd7a0fde60c4cf25c7020000610a")
REAL_DELETE = bytes.fromhex("46539c332900000001989c952674607e8968b57037331263bf6a1d46f1c282068f238272152252c2a5")
REAL_MANIFEST_DELETE = bytes.fromhex("8cec0d8a2900000001" + "00" * 32)
REAL_COMMIT = bytes.fromhex("40f43c250900000002")  # borg's LoggedIO.COMMIT
ARCHIVE_ONE, ARCHIVE_TWO, CHUNK, ITEMS = (bytes([n]) * 32 for n in (1, 2, 3, 4))


def put(key: bytes, data: bytes = b"data") -> bytes:
    """Return a PUT entry as LoggedIO.write_put writes it."""
    header = struct.pack("<IB", 41 + len(data), 0)
    return struct.pack("<I", zlib.crc32(data, zlib.crc32(key, zlib.crc32(header)))) + header + key + data


def delete(key: bytes) -> bytes:
    """Return a DELETE entry as LoggedIO.write_delete writes it."""
    header = struct.pack("<IB", 41, 1)
    return struct.pack("<I", zlib.crc32(key, zlib.crc32(header))) + header + key


def commit() -> bytes:
    """Return a COMMIT entry as LoggedIO.write_commit writes it."""
    header = struct.pack("<IB", 9, 2)
    return struct.pack("<I", zlib.crc32(header)) + header


def write_repository(repository, segments: list[list[bytes]], per_directory: int = 1000):
    """Write segments 0, 1, … (each a list of entries) under repository/data like borg; return the repository."""
    for number, entries in enumerate(segments):
        directory = repository / "data" / str(number // per_directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / str(number)).write_bytes(MAGIC + b"".join(entries))
    return repository


def manifest_rewrite() -> list[list[bytes]]:
    """Return the three segments borg writes to end a transaction: DELETE and PUT of the manifest, COMMIT."""
    return [[delete(MANIFEST_KEY)], [put(MANIFEST_KEY)], [commit()]]


def init_create_create_delete() -> list[list[bytes]]:
    """Return the segments of `borg init`, `create ::one`, `create ::two`, `delete ::one` (borg 1.4.0)."""
    return [
        [put(MANIFEST_KEY)],
        [commit()],
        [put(CHUNK), put(ITEMS), put(ARCHIVE_ONE)],
        *manifest_rewrite(),
        [put(ARCHIVE_TWO)],
        *manifest_rewrite(),
        [delete(ARCHIVE_ONE)],
        *manifest_rewrite(),
    ]


def checkpointed_create() -> list[list[bytes]]:
    """Return the segments of `borg init` then a `borg create` that wrote two checkpoints (borg 1.4.0)."""
    checkpoint_one, checkpoint_two, final = (bytes([n]) * 32 for n in (7, 8, 9))
    return [
        [put(MANIFEST_KEY)],
        [commit()],
        [put(CHUNK), put(ITEMS), put(checkpoint_one)],
        *manifest_rewrite(),
        [delete(checkpoint_one), put(bytes([5]) * 32), put(checkpoint_two)],
        *manifest_rewrite(),
        [delete(checkpoint_two), put(bytes([6]) * 32), put(final)],
        *manifest_rewrite(),
    ]
