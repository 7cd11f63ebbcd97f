"""Tests for tamper detection: the baseline of committed segments and config, and what changed since.

Repositories are built from segment files written byte by byte like borg 1.4.0 (see borg_files).
"""

import hashlib
import os
from dataclasses import replace

import pytest

from borg_server.records.client_state import ClientState, SegmentPrint, Tampering
from borg_server.repository import baseline
from borg_server.repository.segments import SegmentError
from tests.unit.borg_server.borg_files import (
    ARCHIVE_ONE,
    ARCHIVE_TWO,
    CHUNK,
    ITEMS,
    MAGIC,
    commit,
    delete,
    init_create_create_delete,
    put,
    write_repository,
)

NOW = "2024-05-06T03:00:00+00:00"
LATER = "2024-05-07T03:00:00+00:00"
CONFIG = b"[repository]\nversion = 1\nappend_only = 0\n"
NO_TAMPERING = Tampering(changed=(), truncated=(), removed=(), config=False, seen_at=NOW)


def write_segment(repository, number: int, entries: list[bytes]) -> None:
    """Write one segment file numbered number, as borg names it."""
    directory = repository / "data" / str(number // 1000)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / str(number)).write_bytes(MAGIC + b"".join(entries))


def segment(repository, number: int):
    return repository / "data" / str(number // 1000) / str(number)


def replace_keeping_times(path, content: bytes) -> None:
    """Replace a file by a new one (a new inode) with content and the old file's times."""
    times = path.stat()
    temporary = path.with_name(f".{path.name}.new")
    temporary.write_bytes(content)
    os.utime(temporary, ns=(times.st_atime_ns, times.st_mtime_ns))
    os.replace(temporary, path)


@pytest.fixture
def repository(tmp_path):
    """A repository after `borg init`, `create ::one`, `create ::two`, `delete ::one`: one delete, in segment 10."""
    repository = write_repository(tmp_path / "main", init_create_create_delete())
    (repository / "config").write_bytes(CONFIG)
    return repository


@pytest.fixture
def state():
    return ClientState(first_seen=NOW)


@pytest.fixture
def found(state, repository):
    """A state whose segment and config baseline is the repository as written."""
    baseline.rebaseline(state, repository)
    return state


# baseline and check_tampering


def test_the_baseline_holds_every_committed_segment_no_uncommitted_one_and_the_config_digest(state, repository):
    write_segment(repository, 14, [put(CHUNK)])

    baseline.rebaseline(state, repository)

    assert sorted(state.segments) == list(range(14))
    status = segment(repository, 10).stat()
    assert state.segments[10] == SegmentPrint(
        49,
        hashlib.sha256(MAGIC + delete(ARCHIVE_ONE)).hexdigest(),
        status.st_mtime_ns,
        status.st_ctime_ns,
        status.st_ino,
    )
    assert state.config_digest == hashlib.sha256(CONFIG).hexdigest()


def test_an_untouched_repository_shows_no_tampering(found, repository):
    assert baseline.check_tampering(found, repository, NOW) is None
    assert found.tampering is None


def test_the_first_check_records_the_config_digest_and_finds_no_tampering(state, repository):
    assert baseline.check_tampering(state, repository, NOW) is None

    assert state.config_digest == hashlib.sha256(CONFIG).hexdigest()
    assert sorted(state.segments) == list(range(14))


def test_a_segment_whose_content_changed_is_tampering(found, repository):
    path = segment(repository, 2)
    path.write_bytes(path.read_bytes() + put(CHUNK))

    assert baseline.check_tampering(found, repository, NOW) == replace(NO_TAMPERING, changed=(2,))


def test_a_segment_replaced_by_one_of_the_same_size_and_times_is_tampering(found, repository):
    path = segment(repository, 2)
    replace_keeping_times(path, path.read_bytes().replace(b"data", b"DATA", 1))

    assert baseline.check_tampering(found, repository, NOW).changed == (2,)


def test_a_truncated_and_a_removed_segment_are_tampering(found, repository):
    path = segment(repository, 6)
    path.write_bytes(path.read_bytes()[:-1])
    segment(repository, 10).unlink()

    assert baseline.check_tampering(found, repository, NOW) == replace(NO_TAMPERING, truncated=(6,), removed=(10,))


def test_a_changed_repository_config_is_tampering_until_it_is_restored(found, repository):
    (repository / "config").write_bytes(CONFIG.replace(b"append_only = 0", b"append_only = 1"))

    assert baseline.check_tampering(found, repository, NOW) == replace(NO_TAMPERING, config=True)
    assert baseline.check_tampering(found, repository, LATER) == replace(NO_TAMPERING, config=True)

    (repository / "config").write_bytes(CONFIG)

    assert baseline.check_tampering(found, repository, LATER) is None
    assert found.config_digest == hashlib.sha256(CONFIG).hexdigest()


def test_a_removed_repository_config_is_tampering(found, repository):
    (repository / "config").unlink()

    assert baseline.check_tampering(found, repository, NOW) == replace(NO_TAMPERING, config=True)


def test_after_a_compaction_removed_segments_leave_the_baseline_and_are_not_tampering(found, repository):
    for number in (2, 6):
        segment(repository, number).unlink()

    assert baseline.check_tampering(found, repository, NOW, compacted=True) is None

    assert sorted(found.segments) == [n for n in range(14) if n not in (2, 6)]
    assert baseline.check_tampering(found, repository, LATER) is None


def test_after_a_compaction_changed_and_truncated_segments_are_still_tampering(found, repository):
    segment(repository, 2).write_bytes(segment(repository, 2).read_bytes() + put(CHUNK))
    segment(repository, 6).write_bytes(segment(repository, 6).read_bytes()[:-1])
    segment(repository, 10).unlink()

    assert baseline.check_tampering(found, repository, NOW, compacted=True) == replace(
        NO_TAMPERING, changed=(2,), truncated=(6,)
    )
    assert 2 in found.segments
    assert 10 not in found.segments


def test_a_config_changed_during_an_admin_session_is_still_tampering(found, repository):
    (repository / "config").write_bytes(CONFIG + b"additional_free_space = 1G\n")

    assert baseline.check_tampering(found, repository, NOW, compacted=True).config is True


def test_a_segment_reported_removed_stays_reported_after_an_admin_session(found, repository):
    segment(repository, 2).unlink()
    baseline.check_tampering(found, repository, NOW)

    assert baseline.check_tampering(found, repository, LATER, compacted=True).removed == (2,)


def test_a_segment_touched_but_with_the_same_content_is_not_tampering_and_its_new_times_are_kept(found, repository):
    path = segment(repository, 2)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))

    assert baseline.check_tampering(found, repository, NOW) is None
    assert found.segments[2].mtime_ns == 1_000_000_000


def test_segments_committed_since_extend_the_baseline_and_a_later_change_to_them_is_found(found, repository):
    write_segment(repository, 14, [delete(ARCHIVE_TWO)])
    write_segment(repository, 15, [commit()])
    write_segment(repository, 16, [put(CHUNK)])

    assert baseline.check_tampering(found, repository, NOW) is None
    assert sorted(found.segments) == list(range(16))

    segment(repository, 14).unlink()

    assert baseline.check_tampering(found, repository, LATER).removed == (14,)


def test_tampering_stays_with_its_first_sighting_until_the_segment_is_restored(found, repository):
    path = segment(repository, 2)
    original = path.read_bytes()
    path.write_bytes(original + put(ITEMS))
    baseline.check_tampering(found, repository, NOW)

    assert baseline.check_tampering(found, repository, LATER) == replace(NO_TAMPERING, changed=(2,))

    path.write_bytes(original)

    assert baseline.check_tampering(found, repository, LATER) is None


def test_rebaseline_accepts_what_is_on_disk_and_forgets_the_tampering(found, repository):
    segment(repository, 10).unlink()
    (repository / "config").write_bytes(CONFIG + b"\n")
    baseline.check_tampering(found, repository, NOW)

    baseline.rebaseline(found, repository)

    assert found.tampering is None
    assert 10 not in found.segments
    assert found.config_digest == hashlib.sha256(CONFIG + b"\n").hexdigest()
    assert baseline.check_tampering(found, repository, LATER) is None


# record_unreadable, describe_tampering


def test_an_unreadable_segment_keeps_the_changes_seen_and_their_first_sighting(state):
    state.tampering = Tampering(changed=(2,), removed=(10,), config=True, seen_at=NOW)

    baseline.record_unreadable(state, SegmentError("data/0/6: crc32 mismatch at offset 8"), LATER)

    assert state.tampering == Tampering(
        changed=(2,),
        truncated=(),
        removed=(10,),
        config=True,
        unreadable="data/0/6: crc32 mismatch at offset 8",
        seen_at=NOW,
    )
    assert state.tampered_files == 3


def test_an_unreadable_segment_alone_counts_as_one_tampered_segment(state):
    baseline.record_unreadable(state, SegmentError("data/0/6: bad magic, not a borg segment file"), NOW)

    assert state.tampering == Tampering(
        changed=(),
        truncated=(),
        removed=(),
        config=False,
        unreadable="data/0/6: bad magic, not a borg segment file",
        seen_at=NOW,
    )
    assert state.tampered_files == 1


def test_tampering_is_described_in_one_line():
    tampering = replace(NO_TAMPERING, changed=(2, 3), removed=(10,), config=True, unreadable="data/0/6: bad")

    assert baseline.describe_tampering(tampering) == (
        "segments changed 2, 3; segments removed 10; "
        "the repository config changed (a replaced repokey or settings); unreadable: data/0/6: bad"
    )


def test_a_truncated_segment_alone_is_described_alone():
    assert baseline.describe_tampering(replace(NO_TAMPERING, truncated=(6,))) == "segments truncated 6"
