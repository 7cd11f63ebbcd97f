"""Tests for reading borg 1.x segment files: entries, commits, fingerprints and the three kinds of client deletes.

Segments are built byte by byte the way borg 1.4.0's LoggedIO writes them. The sequences in the
delete tests are the ones a real borg 1.4.0 repository showed (see the module docstring).
"""

import hashlib
import struct
import zlib

import pytest

from borg_server.repository.segments import (
    COMMIT_ENTRY,
    MANIFEST_KEY,
    Delete,
    Entry,
    Fingerprint,
    SegmentError,
    busy,
    deletes_since,
    entries_between,
    fingerprint,
    is_checkpoint_cleanup,
    is_committed,
    iter_segment,
    last_commit,
    previous_tail,
    segment_files,
)
from tests.unit.borg_server.borg_files import (
    ARCHIVE_ONE,
    ARCHIVE_TWO,
    CHUNK,
    ITEMS,
    MAGIC,
    REAL_COMMIT,
    REAL_DELETE,
    REAL_MANIFEST_DELETE,
    REAL_PUT,
    checkpointed_create,
    commit,
    delete,
    init_create_create_delete,
    manifest_rewrite,
    put,
    write_repository,
)


def entry(tag: str, key: bytes | None = None) -> Entry:
    """Return an entry as read from some segment (where it lies does not matter to the classification)."""
    return Entry(0, 8, tag, key, {"put": 45, "delete": 41, "commit": 9}[tag])


def test_entries_built_here_are_byte_for_byte_what_borg_wrote():
    assert put(REAL_PUT[9:41], REAL_PUT[41:]) == REAL_PUT
    assert delete(REAL_DELETE[9:]) == REAL_DELETE
    assert delete(MANIFEST_KEY) == REAL_MANIFEST_DELETE
    assert commit() == REAL_COMMIT == COMMIT_ENTRY


def test_a_segment_yields_every_entry_with_its_offset_tag_key_and_size(tmp_path):
    write_repository(tmp_path, [[REAL_PUT, REAL_DELETE, REAL_MANIFEST_DELETE, REAL_COMMIT]])

    assert list(iter_segment(tmp_path / "data" / "0" / "0")) == [
        Entry(0, 8, "put", REAL_PUT[9:41], 46),
        Entry(0, 54, "delete", REAL_DELETE[9:], 41),
        Entry(0, 95, "delete", MANIFEST_KEY, 41),
        Entry(0, 136, "commit", None, 9),
    ]


def test_a_segment_with_only_the_magic_has_no_entries(tmp_path):
    write_repository(tmp_path, [[]])

    assert list(iter_segment(tmp_path / "data" / "0" / "0")) == []


def test_iter_segment_yields_the_entries_before_a_damaged_one_then_raises(tmp_path):
    path = tmp_path / "4"
    path.write_bytes(MAGIC + put(CHUNK) + put(ITEMS)[:-1] + b"X")
    entries = iter_segment(path)

    assert next(entries) == Entry(4, 8, "put", CHUNK, 45)
    with pytest.raises(SegmentError, match="crc32 mismatch at offset 53"):
        next(entries)


def test_a_file_not_named_by_a_number_is_not_read_as_a_segment(tmp_path):
    path = tmp_path / "index.4"
    path.write_bytes(MAGIC + commit())

    with pytest.raises(SegmentError, match="index.4: a segment file is named by its number"):
        list(iter_segment(path))


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
        list(iter_segment(path))
    assert str(raised.value).startswith(f"{path}: ")


def test_segment_files_are_found_in_every_numbered_directory_in_order(tmp_path):
    write_repository(tmp_path, [[commit()]] * 5, per_directory=2)
    (tmp_path / "data" / "0" / "notes").write_text("not a segment")
    (tmp_path / "index.4").write_bytes(b"")

    files = segment_files(tmp_path)

    assert files == {n: tmp_path / "data" / str(n // 2) / str(n) for n in range(5)}
    assert list(files) == [0, 1, 2, 3, 4]


def test_a_symlink_in_the_repository_is_never_taken_for_a_segment_or_a_segment_directory(tmp_path):
    write_repository(tmp_path / "repo", [[commit()]] * 2)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "7").write_bytes(b"root's file")
    (tmp_path / "repo" / "data" / "0" / "5").symlink_to(tmp_path / "outside" / "7")
    (tmp_path / "repo" / "data" / "3").symlink_to(tmp_path / "outside")

    assert list(segment_files(tmp_path / "repo")) == [0, 1]


def test_a_missing_repository_has_no_segments_and_no_commit(tmp_path):
    assert segment_files(tmp_path / "nothing") == {}
    assert last_commit(tmp_path / "nothing") is None
    assert list(deletes_since(tmp_path / "nothing", -1)) == []


@pytest.mark.parametrize(
    ("entries", "committed"),
    [
        ([commit()], True),
        ([put(CHUNK), delete(ITEMS), commit()], True),
        ([], False),
        ([put(CHUNK)], False),
        ([commit(), commit()], False),
        ([commit(), put(CHUNK), commit()], False),
        ([put(CHUNK, b"data" + COMMIT_ENTRY)], False),
        ([put(CHUNK)[:-1] + b"X", commit()], False),
    ],
    ids=["commit", "entries-then-commit", "empty", "no-commit", "two-commits", "entries-after-a-commit",
         "put-ending-in-commit-bytes", "damaged-entry"],
)  # fmt: skip
def test_a_segment_is_committed_only_if_intact_and_its_one_commit_is_its_last_entry(tmp_path, entries, committed):
    path = tmp_path / "3"
    path.write_bytes(MAGIC + b"".join(entries))

    assert is_committed(path) is committed


def test_a_missing_segment_is_not_committed(tmp_path):
    assert is_committed(tmp_path / "3") is False


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
    assert list(deletes_since(tmp_path, -1)) == []


def test_a_put_whose_data_ends_with_the_commit_bytes_is_no_commit_and_its_delete_is_not_read(tmp_path):
    crafted = [delete(ARCHIVE_ONE), put(CHUNK, b"garbage" + COMMIT_ENTRY)]
    write_repository(tmp_path, [[put(MANIFEST_KEY)], [commit()], crafted])
    path = tmp_path / "data" / "0" / "2"

    assert path.read_bytes().endswith(COMMIT_ENTRY)
    assert [e.tag for e in list(iter_segment(path))] == ["delete", "put"]
    assert is_committed(path) is False
    assert last_commit(tmp_path) == 1
    assert list(deletes_since(tmp_path, -1)) == []
    assert list(deletes_since(tmp_path, 1)) == []


def test_fingerprint_is_the_size_and_sha256_of_the_whole_file(tmp_path):
    write_repository(tmp_path, [[put(MANIFEST_KEY)], [commit()]])

    assert fingerprint(tmp_path / "data" / "0" / "1") == Fingerprint(
        17, hashlib.sha256(MAGIC + REAL_COMMIT).hexdigest()
    )


def test_entries_between_yields_the_entries_of_a_range_of_segments_in_log_order(tmp_path):
    write_repository(tmp_path, init_create_create_delete())
    files = segment_files(tmp_path)

    assert [(e.segment, e.tag) for e in entries_between(files, 9, 11)] == [
        (9, "commit"),
        (10, "delete"),
        (11, "delete"),
    ]
    assert list(entries_between(files, 14, 20)) == []


def test_previous_tail_reaches_back_over_as_many_segments_as_it_needs(tmp_path):
    write_repository(tmp_path, init_create_create_delete())
    files = segment_files(tmp_path)

    assert [(e.segment, e.tag) for e in previous_tail(files, 6, 5)] == [
        (2, "put"),
        (2, "put"),
        (3, "delete"),
        (4, "put"),
        (5, "commit"),
    ]
    assert [e.segment for e in previous_tail(files, 2, 5)] == [0, 1]
    assert previous_tail(files, 0, 5) == []


def test_a_delete_right_after_a_transaction_that_ended_with_a_put_of_its_key_is_a_checkpoint_clean_up():
    before = [entry("commit"), entry("put", CHUNK), entry("delete", MANIFEST_KEY), entry("put", MANIFEST_KEY)]
    before.append(entry("commit"))

    assert is_checkpoint_cleanup(entry("delete", CHUNK), before) is True
    assert is_checkpoint_cleanup(entry("delete", CHUNK), before[1:]) is True  # the PUT was the log's first entry
    assert is_checkpoint_cleanup(entry("delete", ITEMS), before) is False
    assert is_checkpoint_cleanup(entry("delete", CHUNK), before[:-1]) is False
    assert is_checkpoint_cleanup(entry("delete", CHUNK), before[2:]) is False


def test_a_delete_of_an_object_that_was_itself_an_overwrite_is_no_checkpoint_clean_up():
    before = [entry("delete", CHUNK), entry("put", CHUNK), entry("delete", MANIFEST_KEY), entry("put", MANIFEST_KEY)]
    before.append(entry("commit"))

    assert is_checkpoint_cleanup(entry("delete", CHUNK), before) is False


def test_deleting_an_archive_is_one_client_delete_and_manifest_rewrites_are_not(tmp_path):
    write_repository(tmp_path, init_create_create_delete())

    assert list(deletes_since(tmp_path, -1)) == [Delete(10, 8, ARCHIVE_ONE, "delete")]
    assert list(deletes_since(tmp_path, 9)) == [Delete(10, 8, ARCHIVE_ONE, "delete")]
    assert list(deletes_since(tmp_path, 10)) == []
    assert list(deletes_since(tmp_path, 13)) == []


def test_a_manifest_delete_is_never_a_client_delete(tmp_path):
    write_repository(tmp_path, [[put(MANIFEST_KEY)], [commit()], [delete(MANIFEST_KEY)], [commit()]])

    assert list(deletes_since(tmp_path, -1)) == []


def test_a_manifest_rewrite_is_not_reported_as_an_overwrite(tmp_path):
    write_repository(tmp_path, [[put(MANIFEST_KEY)], [commit()], [delete(MANIFEST_KEY), put(MANIFEST_KEY), commit()]])

    assert list(deletes_since(tmp_path, -1)) == []


def test_an_overwrite_of_a_chunk_is_reported_as_an_overwrite_even_across_a_segment_boundary(tmp_path):
    write_repository(tmp_path, [[put(CHUNK), commit()], [put(ITEMS), delete(CHUNK)], [put(CHUNK, b"new")], [commit()]])

    assert list(deletes_since(tmp_path, -1)) == [Delete(1, 53, CHUNK, "overwrite")]


def test_an_overwrite_in_the_same_segment_is_reported_as_an_overwrite(tmp_path):
    write_repository(tmp_path, [[put(CHUNK), commit()], [delete(CHUNK), put(CHUNK, b"garbage"), commit()]])

    assert list(deletes_since(tmp_path, -1)) == [Delete(1, 8, CHUNK, "overwrite")]


def test_a_delete_whose_key_is_put_again_only_later_is_a_client_delete(tmp_path):
    write_repository(tmp_path, [[put(CHUNK), commit()], [delete(CHUNK), put(ITEMS), put(CHUNK)], [commit()]])

    assert list(deletes_since(tmp_path, -1)) == [Delete(1, 8, CHUNK, "delete")]


def test_a_delete_followed_by_a_put_of_another_key_is_a_client_delete(tmp_path):
    write_repository(tmp_path, [[put(CHUNK), commit()], [delete(CHUNK), put(ITEMS), commit()]])

    assert list(deletes_since(tmp_path, -1)) == [Delete(1, 8, CHUNK, "delete")]


def test_deletes_after_the_last_commit_are_not_reported_until_committed(tmp_path):
    segments = [*init_create_create_delete(), [delete(ARCHIVE_TWO)]]
    write_repository(tmp_path, segments)

    assert list(deletes_since(tmp_path, 13)) == []

    write_repository(tmp_path, [*segments, [commit()]])

    assert list(deletes_since(tmp_path, 13)) == [Delete(14, 8, ARCHIVE_TWO, "delete")]


def test_checkpoint_clean_ups_are_reported_and_marked_as_such(tmp_path):
    write_repository(tmp_path, checkpointed_create())

    assert list(deletes_since(tmp_path, -1)) == [
        Delete(6, 8, bytes([7]) * 32, "checkpoint"),
        Delete(10, 8, bytes([8]) * 32, "checkpoint"),
    ]
    assert list(deletes_since(tmp_path, 9)) == [Delete(10, 8, bytes([8]) * 32, "checkpoint")]


def test_a_delete_of_an_object_first_put_by_the_transaction_before_is_a_checkpoint_clean_up(tmp_path):
    write_repository(
        tmp_path, [[put(MANIFEST_KEY)], [commit()], [put(CHUNK)], *manifest_rewrite(), [delete(CHUNK)], [commit()]]
    )

    assert list(deletes_since(tmp_path, -1)) == [Delete(6, 8, CHUNK, "checkpoint")]


def test_a_delete_of_an_object_overwritten_by_the_transaction_before_is_a_client_delete_not_a_checkpoint(tmp_path):
    write_repository(
        tmp_path,
        [
            [put(MANIFEST_KEY)],
            [commit()],
            [put(CHUNK)],
            *manifest_rewrite(),
            [delete(CHUNK), put(CHUNK, b"garbage")],
            *manifest_rewrite(),
            [delete(CHUNK)],
            [commit()],
        ],
    )

    assert list(deletes_since(tmp_path, -1)) == [Delete(6, 8, CHUNK, "overwrite"), Delete(10, 8, CHUNK, "delete")]
    assert list(deletes_since(tmp_path, 9)) == [Delete(10, 8, CHUNK, "delete")]  # the overwrite read from before 10


def test_deleting_the_newest_archive_right_after_creating_it_looks_like_a_checkpoint_and_is_reported(tmp_path):
    later = write_repository(tmp_path / "later", [*init_create_create_delete(), [delete(ARCHIVE_TWO)], [commit()]])
    at_once = write_repository(
        tmp_path / "at-once", [*init_create_create_delete()[:10], [delete(ARCHIVE_TWO)], [commit()]]
    )

    assert list(deletes_since(later, 13)) == [Delete(14, 8, ARCHIVE_TWO, "delete")]
    assert list(deletes_since(at_once, 9)) == [Delete(10, 8, ARCHIVE_TWO, "checkpoint")]


def test_a_delete_that_does_not_open_its_transaction_is_not_a_checkpoint_clean_up(tmp_path):
    segments = checkpointed_create()
    segments[6] = [put(CHUNK, b"first"), *segments[6]]
    write_repository(tmp_path, segments)

    assert list(deletes_since(tmp_path, 5)) == [
        Delete(6, 54, bytes([7]) * 32, "delete"),
        Delete(10, 8, bytes([8]) * 32, "checkpoint"),
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

    assert list(deletes_since(tmp_path, -1)) == [Delete(5, 53, ARCHIVE_ONE, "delete")]


def test_a_damaged_committed_segment_stops_deletes_since_with_a_segment_error(tmp_path):
    write_repository(tmp_path, init_create_create_delete())
    damaged = tmp_path / "data" / "0" / "10"
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"X")

    with pytest.raises(SegmentError, match="crc32 mismatch at offset 8"):
        list(deletes_since(tmp_path, -1))


def test_only_files_named_by_ascii_digits_are_segments(tmp_path):
    repository = write_repository(tmp_path / "repo", [[put(CHUNK), commit()]])
    (repository / "data" / "0" / "\u00b2").write_bytes(b"BORG_SEG")  # "²" is a digit to str.isdigit
    (repository / "data" / "0" / "7").mkdir()

    assert list(segment_files(repository)) == [0]
    assert last_commit(repository) == 0


def test_a_repository_is_busy_while_borg_holds_its_exclusive_lock(tmp_path):
    repository = write_repository(tmp_path / "main", init_create_create_delete())
    assert busy(repository) is False

    (repository / "lock.exclusive").mkdir()

    assert busy(repository) is True


def test_borg_rename_deletes_the_old_archive_object_right_after_putting_the_new_one_and_is_a_rename(tmp_path):
    renamed = bytes([0x44]) * 32
    write_repository(tmp_path, [*init_create_create_delete(), [put(renamed), delete(ARCHIVE_TWO)], *manifest_rewrite()])

    assert [(d.segment, d.key, d.kind) for d in deletes_since(tmp_path, 13)] == [(14, ARCHIVE_TWO, "rename")]


def test_a_delete_after_a_put_that_does_not_go_straight_to_the_manifest_is_a_delete(tmp_path):
    renamed = bytes([0x44]) * 32
    steps = [[put(renamed), delete(ARCHIVE_TWO), delete(CHUNK)], *manifest_rewrite()]
    write_repository(tmp_path, [*init_create_create_delete(), *steps])

    assert [d.kind for d in deletes_since(tmp_path, 13)] == ["delete", "delete"]
