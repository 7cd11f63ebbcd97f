"""Tests for reading borg 1.x segment files: entries, commits, snapshots, tampering and client deletes.

Segments are built byte by byte the way borg 1.4.0's LoggedIO writes them. The sequences in the
delete tests are the ones a real borg 1.4.0 repository showed (see the module docstring).
"""

import hashlib
import struct
import zlib

import pytest

from borg_server.segments import (
    COMMIT_ENTRY,
    MANIFEST_KEY,
    Delete,
    Entry,
    SegmentError,
    SegmentPrint,
    Tampering,
    compare,
    deletes_since,
    last_commit,
    read_segment,
    segment_files,
    snapshot,
    transactions,
)

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


def init_create_create_delete() -> list[list[bytes]]:
    """Return the segments of `borg init`, `create ::one`, `create ::two`, `delete ::one` (borg 1.4.0)."""
    manifest_rewrite = [[delete(MANIFEST_KEY)], [put(MANIFEST_KEY)], [commit()]]
    return [
        [put(MANIFEST_KEY)],
        [commit()],
        [put(CHUNK), put(ITEMS), put(ARCHIVE_ONE)],
        *manifest_rewrite,
        [put(ARCHIVE_TWO)],
        *manifest_rewrite,
        [delete(ARCHIVE_ONE)],
        *manifest_rewrite,
    ]


def checkpointed_create() -> list[list[bytes]]:
    """Return the segments of `borg init` then a `borg create` that wrote two checkpoints (borg 1.4.0)."""
    manifest_rewrite = [[delete(MANIFEST_KEY)], [put(MANIFEST_KEY)], [commit()]]
    checkpoint_one, checkpoint_two, final = (bytes([n]) * 32 for n in (7, 8, 9))
    return [
        [put(MANIFEST_KEY)],
        [commit()],
        [put(CHUNK), put(ITEMS), put(checkpoint_one)],
        *manifest_rewrite,
        [delete(checkpoint_one), put(bytes([5]) * 32), put(checkpoint_two)],
        *manifest_rewrite,
        [delete(checkpoint_two), put(bytes([6]) * 32), put(final)],
        *manifest_rewrite,
    ]


def test_entries_built_here_are_byte_for_byte_what_borg_wrote():
    assert put(REAL_PUT[9:41], REAL_PUT[41:]) == REAL_PUT
    assert delete(REAL_DELETE[9:]) == REAL_DELETE
    assert delete(MANIFEST_KEY) == REAL_MANIFEST_DELETE
    assert commit() == REAL_COMMIT == COMMIT_ENTRY


def test_read_segment_returns_every_entry_with_its_offset_tag_key_and_size(tmp_path):
    write_repository(tmp_path, [[REAL_PUT, REAL_DELETE, REAL_MANIFEST_DELETE, REAL_COMMIT]])

    assert read_segment(tmp_path / "data" / "0" / "0") == [
        Entry(0, 8, "put", REAL_PUT[9:41], 46),
        Entry(0, 54, "delete", REAL_DELETE[9:], 41),
        Entry(0, 95, "delete", MANIFEST_KEY, 41),
        Entry(0, 136, "commit", None, 9),
    ]


def test_a_segment_with_only_the_magic_has_no_entries(tmp_path):
    write_repository(tmp_path, [[]])

    assert read_segment(tmp_path / "data" / "0" / "0") == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"ATTICSEG" + commit(), "bad magic, not a borg segment file"),
        (MAGIC + put(CHUNK)[:-1], "truncated entry at offset 8: 45 bytes expected"),
        (MAGIC + commit() + put(CHUNK)[:5], "truncated entry header at offset 17"),
        (MAGIC + put(CHUNK)[:-1] + b"X", "crc32 mismatch at offset 8"),
        (MAGIC + put(CHUNK)[:8] + b"\x01" + put(CHUNK)[9:], "crc32 mismatch at offset 8"),
        (MAGIC + struct.pack("<IIB", 0, 5, 2), "impossible entry size 5 at offset 8"),
        (MAGIC + struct.pack("<I", zlib.crc32(b"\x09\x00\x00\x00\x03")) + b"\x09\x00\x00\x00\x03", "unknown tag 3"),
        (MAGIC + struct.pack("<I", zlib.crc32(b"\x09\x00\x00\x00\x01")) + b"\x09\x00\x00\x00\x01", "without a key"),
    ],
)
def test_a_damaged_segment_is_a_segment_error_that_says_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "7"
    path.write_bytes(content)

    with pytest.raises(SegmentError, match=message) as raised:
        read_segment(path)
    assert str(raised.value).startswith(f"{path}: ")


def test_segment_files_are_found_in_every_numbered_directory_in_order(tmp_path):
    write_repository(tmp_path, [[commit()]] * 5, per_directory=2)
    (tmp_path / "data" / "0" / "notes").write_text("not a segment")
    (tmp_path / "index.4").write_bytes(b"")

    files = segment_files(tmp_path)

    assert files == {n: tmp_path / "data" / str(n // 2) / str(n) for n in range(5)}
    assert list(files) == [0, 1, 2, 3, 4]


def test_a_missing_repository_has_no_segments_and_no_commit(tmp_path):
    assert segment_files(tmp_path / "nothing") == {}
    assert last_commit(tmp_path / "nothing") is None
    assert snapshot(tmp_path / "nothing") == {}


def test_last_commit_ignores_an_uncommitted_tail(tmp_path):
    write_repository(tmp_path, [*init_create_create_delete(), [put(CHUNK)], [delete(ARCHIVE_TWO)]])

    assert last_commit(tmp_path) == 13


def test_last_commit_skips_a_damaged_segment_even_if_it_ends_with_a_commit(tmp_path):
    write_repository(tmp_path, [[put(MANIFEST_KEY)], [commit()], [put(CHUNK)[:-1] + b"X", commit()]])

    assert last_commit(tmp_path) == 1


def test_last_commit_skips_a_segment_with_entries_after_a_commit(tmp_path):
    write_repository(tmp_path, [[put(MANIFEST_KEY)], [commit()], [commit(), put(CHUNK), commit()]])

    assert last_commit(tmp_path) == 1


def test_a_repository_without_a_commit_has_no_last_commit(tmp_path):
    write_repository(tmp_path, [[put(MANIFEST_KEY)]])

    assert last_commit(tmp_path) is None
    assert snapshot(tmp_path) == {}


def test_snapshot_fingerprints_only_committed_segments(tmp_path):
    write_repository(tmp_path, [[put(MANIFEST_KEY)], [commit()], [put(CHUNK)]])

    prints = snapshot(tmp_path)

    assert list(prints) == [0, 1]
    assert prints[1] == SegmentPrint(17, hashlib.sha256(MAGIC + REAL_COMMIT).hexdigest())


def test_compare_reports_each_changed_truncated_and_removed_segment():
    before = {n: SegmentPrint(100, f"{n}") for n in range(5)}
    after = {0: before[0], 1: SegmentPrint(100, "other"), 2: SegmentPrint(99, "2"), 4: SegmentPrint(120, "grown")}

    assert compare(before, after) == Tampering(changed=[1, 4], truncated=[2], removed=[3])


def test_compare_ignores_new_segments_and_finds_nothing_in_an_untouched_repository():
    before = {0: SegmentPrint(17, "a")}

    result = compare(before, before | {1: SegmentPrint(49, "b")})

    assert result == Tampering([], [], [])
    assert not result
    assert Tampering([], [], [3])


def test_compare_detects_segments_edited_on_disk_between_snapshots(tmp_path):
    write_repository(tmp_path, init_create_create_delete())
    before = snapshot(tmp_path)
    data = tmp_path / "data" / "0"
    (data / "2").write_bytes((data / "2").read_bytes().replace(b"data", b"DATA", 1))
    (data / "6").write_bytes((data / "6").read_bytes()[:-1])
    (data / "10").unlink()

    assert compare(before, snapshot(tmp_path)) == Tampering(changed=[2], truncated=[6], removed=[10])


def test_deleting_an_archive_is_one_client_delete_and_manifest_rewrites_are_not(tmp_path):
    write_repository(tmp_path, init_create_create_delete())

    assert deletes_since(tmp_path, -1) == [Delete(10, 8, ARCHIVE_ONE, checkpoint=False)]
    assert deletes_since(tmp_path, 9) == [Delete(10, 8, ARCHIVE_ONE, checkpoint=False)]
    assert deletes_since(tmp_path, 10) == []
    assert deletes_since(tmp_path, 13) == []


def test_a_manifest_delete_is_never_a_client_delete(tmp_path):
    write_repository(tmp_path, [[put(MANIFEST_KEY)], [commit()], [delete(MANIFEST_KEY)], [commit()]])

    assert deletes_since(tmp_path, -1) == []


def test_an_overwrite_of_a_chunk_is_not_a_client_delete_even_across_a_segment_boundary(tmp_path):
    write_repository(tmp_path, [[put(CHUNK), commit()], [put(ITEMS), delete(CHUNK)], [put(CHUNK, b"new")], [commit()]])

    assert deletes_since(tmp_path, -1) == []


def test_a_delete_whose_key_is_put_again_only_later_is_a_client_delete(tmp_path):
    write_repository(tmp_path, [[put(CHUNK), commit()], [delete(CHUNK), put(ITEMS), put(CHUNK)], [commit()]])

    assert deletes_since(tmp_path, -1) == [Delete(1, 8, CHUNK, checkpoint=False)]


def test_deletes_after_the_last_commit_are_not_reported_until_committed(tmp_path):
    segments = [*init_create_create_delete(), [delete(ARCHIVE_TWO)]]
    write_repository(tmp_path, segments)

    assert deletes_since(tmp_path, 13) == []

    write_repository(tmp_path, [*segments, [commit()]])

    assert deletes_since(tmp_path, 13) == [Delete(14, 8, ARCHIVE_TWO, checkpoint=False)]


def test_checkpoint_clean_ups_are_reported_and_marked_as_such(tmp_path):
    write_repository(tmp_path, checkpointed_create())

    assert deletes_since(tmp_path, -1) == [
        Delete(6, 8, bytes([7]) * 32, checkpoint=True),
        Delete(10, 8, bytes([8]) * 32, checkpoint=True),
    ]
    assert deletes_since(tmp_path, 9) == [Delete(10, 8, bytes([8]) * 32, checkpoint=True)]


def test_deleting_the_newest_archive_right_after_creating_it_looks_like_a_checkpoint_and_is_reported(tmp_path):
    later = write_repository(tmp_path / "later", [*init_create_create_delete(), [delete(ARCHIVE_TWO)], [commit()]])
    at_once = write_repository(
        tmp_path / "at-once", [*init_create_create_delete()[:10], [delete(ARCHIVE_TWO)], [commit()]]
    )

    assert deletes_since(later, 13) == [Delete(14, 8, ARCHIVE_TWO, checkpoint=False)]
    assert deletes_since(at_once, 9) == [Delete(10, 8, ARCHIVE_TWO, checkpoint=True)]


def test_a_delete_that_does_not_open_its_transaction_is_not_a_checkpoint_clean_up(tmp_path):
    segments = checkpointed_create()
    segments[6] = [put(CHUNK, b"first"), *segments[6]]
    write_repository(tmp_path, segments)

    assert deletes_since(tmp_path, 5) == [
        Delete(6, 54, bytes([7]) * 32, checkpoint=False),
        Delete(10, 8, bytes([8]) * 32, checkpoint=True),
    ]


def test_a_delete_after_a_manifest_rewrite_in_the_same_transaction_is_not_a_checkpoint_clean_up(tmp_path):
    write_repository(
        tmp_path,
        [
            [put(MANIFEST_KEY)],
            [commit()],
            [put(ARCHIVE_ONE)],
            [delete(MANIFEST_KEY)],
            [put(MANIFEST_KEY)],
            [put(CHUNK), delete(ARCHIVE_ONE)],
            [commit()],
        ],
    )

    assert deletes_since(tmp_path, -1) == [Delete(5, 53, ARCHIVE_ONE, checkpoint=False)]


def test_transactions_log_is_read_as_segment_and_time(tmp_path):
    (tmp_path / "transactions").write_text(
        "transaction 1, UTC time 2026-11-27T16:19:44.674571\ntransaction 5, UTC time 2026-11-27T16:19:45.005909\n"
    )

    assert transactions(tmp_path) == [(1, "2026-11-27T16:19:44.674571"), (5, "2026-11-27T16:19:45.005909")]


def test_a_repository_that_is_not_append_only_has_no_transactions_log(tmp_path):
    assert transactions(tmp_path) == []


def test_a_garbled_transactions_line_is_a_segment_error_naming_the_line(tmp_path):
    (tmp_path / "transactions").write_text("transaction 1, UTC time 2026-11-27T16:19:44.674571\ntransaction x\n")

    with pytest.raises(SegmentError, match="transactions line 2: expected 'transaction N, UTC time T', got 'tra"):
        transactions(tmp_path)
