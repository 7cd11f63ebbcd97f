"""Tests for the deletes a client committed: grouped per segment, counted by kind, acknowledged.

Repositories are built from segment files written byte by byte like borg 1.4.0 (see borg_files).
"""

import dataclasses
import os
from datetime import UTC, datetime

import pytest

from borg_server.records.client_state import Acknowledgement, ClientState, DeleteGroup, Tampering
from borg_server.repository import deletes
from borg_server.repository.segments import COMMIT_ENTRY, SegmentError
from tests.unit.borg_server.borg_files import (
    ARCHIVE_ONE,
    ARCHIVE_TWO,
    CHUNK,
    MAGIC,
    MANIFEST_KEY,
    checkpointed_create,
    commit,
    delete,
    init_create_create_delete,
    put,
    write_repository,
)

NOW = "2024-05-06T03:00:00+00:00"
LATER = "2024-05-07T03:00:00+00:00"
WRITTEN = datetime(2024, 5, 6, 2, 59, 30, tzinfo=UTC).timestamp()


def write_segment(repository, number: int, entries: list[bytes]) -> None:
    """Write one segment file numbered number, as borg names it."""
    directory = repository / "data" / str(number // 1000)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / str(number)).write_bytes(MAGIC + b"".join(entries))


def segment(repository, number: int):
    return repository / "data" / str(number // 1000) / str(number)


def group(segment_number: int, kinds: dict[str, int], keys: list[bytes], seen_at: str = NOW, committed=None):
    """Return the group of deletes scan_deletes records for one segment."""
    return DeleteGroup(segment_number, sum(kinds.values()), kinds, tuple(key.hex() for key in keys), committed, seen_at)


@pytest.fixture
def repository(tmp_path):
    """A repository after `borg init`, `create ::one`, `create ::two`, `delete ::one`: one delete, in segment 10."""
    return write_repository(tmp_path / "main", init_create_create_delete())


@pytest.fixture
def state():
    return ClientState(first_seen=NOW)


# scan_deletes


def test_the_first_scan_records_the_deletes_of_a_segment_as_one_group_with_when_it_was_committed(state, repository):
    os.utime(segment(repository, 10), (WRITTEN, WRITTEN))

    assert deletes.scan_deletes(state, repository, NOW) == 1

    assert state.deletes == [group(10, {"delete": 1}, [ARCHIVE_ONE], committed="2024-05-06T02:59:30+00:00")]
    assert state.scanned == 13


def test_the_deletes_of_one_segment_are_counted_by_kind_and_only_the_first_object_ids_are_kept(state, tmp_path):
    keys = [bytes([0x10 + n]) * 32 for n in range(12)]
    repository = write_repository(
        tmp_path / "main",
        [
            [put(MANIFEST_KEY)],
            [commit()],
            [*map(put, keys), put(CHUNK), commit()],
            [*map(delete, keys), delete(CHUNK), put(CHUNK, b"garbage"), commit()],
        ],
    )

    assert deletes.scan_deletes(state, repository, NOW) == 13

    [found] = state.deletes
    assert dataclasses.replace(found, committed_at=None) == DeleteGroup(
        segment=3,
        count=13,
        kinds={"delete": 12, "overwrite": 1},
        keys=tuple(key.hex() for key in keys[: deletes.KEYS_KEPT]),
        committed_at=None,
        seen_at=NOW,
    )
    assert deletes.KEYS_KEPT == 10


def test_a_delete_is_found_once_however_often_the_repository_is_scanned(state, repository):
    deletes.scan_deletes(state, repository, NOW)

    assert deletes.scan_deletes(state, repository, LATER) == 0
    assert [found.seen_at for found in state.deletes] == [NOW]


def test_a_later_scan_finds_only_the_deletes_committed_since(state, repository):
    deletes.scan_deletes(state, repository, NOW)
    write_segment(repository, 14, [delete(ARCHIVE_TWO)])
    write_segment(repository, 15, [commit()])

    assert deletes.scan_deletes(state, repository, LATER) == 1

    assert [(found.segment, found.keys, found.seen_at) for found in state.deletes] == [
        (10, (ARCHIVE_ONE.hex(),), NOW),
        (14, (ARCHIVE_TWO.hex(),), LATER),
    ]
    assert state.scanned == 15


def test_after_a_rollback_the_segments_written_again_are_scanned(state, repository):
    deletes.scan_deletes(state, repository, NOW)
    for number in (10, 11, 12, 13):
        segment(repository, number).unlink()  # rolled back to segment 9
    deletes.scan_deletes(state, repository, NOW)
    assert state.scanned == 9
    write_segment(repository, 10, [delete(ARCHIVE_TWO)])
    write_segment(repository, 11, [commit()])

    assert deletes.scan_deletes(state, repository, LATER) == 1

    assert [(found.segment, found.keys) for found in state.deletes] == [
        (10, (ARCHIVE_ONE.hex(),)),
        (10, (ARCHIVE_TWO.hex(),)),
    ]
    assert state.scanned == 11


def test_a_delete_not_committed_yet_waits_for_its_commit(state, repository):
    deletes.scan_deletes(state, repository, NOW)
    write_segment(repository, 14, [delete(ARCHIVE_TWO)])

    assert deletes.scan_deletes(state, repository, LATER) == 0
    assert state.scanned == 13

    write_segment(repository, 15, [commit()])

    assert deletes.scan_deletes(state, repository, LATER) == 1


def test_a_put_ending_with_the_commit_bytes_does_not_make_the_deletes_before_it_committed(state, repository):
    deletes.scan_deletes(state, repository, NOW)
    write_segment(repository, 14, [delete(ARCHIVE_TWO), put(CHUNK, b"garbage" + COMMIT_ENTRY)])

    assert deletes.scan_deletes(state, repository, LATER) == 0
    assert (state.scanned, [found.segment for found in state.deletes]) == (13, [10])


def test_a_repository_without_a_commit_has_nothing_to_scan(state, tmp_path):
    repository = write_repository(tmp_path / "main", [[put(MANIFEST_KEY)]])

    assert deletes.scan_deletes(state, repository, NOW) == 0
    assert (state.scanned, state.deletes) == (None, [])


def test_a_damaged_segment_stops_the_scan_without_moving_its_position(state, repository):
    path = segment(repository, 10)
    path.write_bytes(path.read_bytes()[:-1] + b"X")

    with pytest.raises(SegmentError, match="crc32 mismatch at offset 8"):
        deletes.scan_deletes(state, repository, NOW)
    assert (state.scanned, state.deletes) == (None, [])


# pending deletes and acknowledge


def test_checkpoint_clean_ups_are_pending_but_left_out_of_the_alerting_count(state, tmp_path):
    repository = write_repository(tmp_path / "main", [*checkpointed_create(), [delete(CHUNK)], [commit()]])
    deletes.scan_deletes(state, repository, NOW)

    assert [(found.segment, found.kinds) for found in state.deletes] == [
        (6, {"checkpoint": 1}),
        (10, {"checkpoint": 1}),
        (14, {"delete": 1}),
    ]
    assert state.pending_deletes() == 3
    assert state.pending_deletes(alerting_only=True) == 1


def test_acknowledging_up_to_a_segment_leaves_the_deletes_in_later_segments(state, repository):
    deletes.scan_deletes(state, repository, NOW)
    write_segment(repository, 14, [delete(ARCHIVE_TWO)])
    write_segment(repository, 15, [commit()])
    deletes.scan_deletes(state, repository, NOW)

    assert deletes.acknowledge(state, 13, False, LATER) == 1

    assert [found.segment for found in state.deletes] == [14]
    assert state.acknowledged == [Acknowledgement(at=LATER, through=13, deletes=1, tampering=False)]


def test_acknowledging_counts_every_delete_of_the_groups_acknowledged(state):
    state.deletes = [group(6, {"checkpoint": 2, "delete": 3}, []), group(9, {"overwrite": 1}, [])]

    assert deletes.acknowledge(state, 9, False, LATER) == 6
    assert state.deletes == []
    assert state.acknowledged == [Acknowledgement(at=LATER, through=9, deletes=6, tampering=False)]


def test_acknowledging_with_nothing_found_leaves_no_history(state):
    assert deletes.acknowledge(state, 13, False, LATER) == 0
    assert state.acknowledged == []


def test_acknowledging_tampering_without_deletes_is_kept_in_the_history(state):
    state.tampering = Tampering(changed=(2,), seen_at=NOW)

    assert deletes.acknowledge(state, 13, True, LATER) == 0
    assert state.acknowledged == [Acknowledgement(at=LATER, through=13, deletes=0, tampering=True)]


def test_tampering_not_acknowledged_leaves_no_history_and_stays(state):
    state.tampering = Tampering(changed=(2,), seen_at=NOW)

    assert deletes.acknowledge(state, 13, False, LATER) == 0
    assert state.acknowledged == []
    assert state.tampering.changed == (2,)


def test_more_groups_than_the_limit_merge_the_oldest_into_the_later_segment_and_keep_every_count():
    from borg_server.records.client_state import DeleteGroup
    from borg_server.repository.deletes import merged

    groups = [DeleteGroup(n, 2, {"delete": 2}, (f"{n}a", f"{n}b"), f"t{n}", f"s{n}") for n in range(1, 6)]

    result = merged(groups, 3)

    assert [g.segment for g in result] == [3, 4, 5]
    assert result[0] == DeleteGroup(3, 6, {"delete": 6}, ("1a", "1b", "2a", "2b", "3a", "3b"), "t1", "s1")
    assert merged(groups, 5) == groups


def test_only_the_last_acknowledgements_are_kept_as_history():
    from borg_server.records.client_state import ClientState
    from borg_server.repository.deletes import KEEP_ACKNOWLEDGED, acknowledge

    found = ClientState(first_seen="2024-05-01T00:00:00+00:00")
    for number in range(KEEP_ACKNOWLEDGED + 5):
        acknowledge(found, number, True, f"at {number}")

    assert len(found.acknowledged) == KEEP_ACKNOWLEDGED and found.acknowledged[-1].through == KEEP_ACKNOWLEDGED + 4
