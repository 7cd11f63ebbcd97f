"""Tests for the monitor's per-client findings: deletes found once, acknowledgements, and tamper detection.

Repositories are built from segment files written byte by byte like borg 1.4.0 (see test_segments).
"""

import hashlib
import json
import os
from datetime import UTC, datetime

import pytest

from borg_server import findings
from borg_server.segments import SegmentError
from tests.unit.borg_server.test_segments import (
    ARCHIVE_ONE,
    ARCHIVE_TWO,
    CHUNK,
    ITEMS,
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
    return write_repository(tmp_path / "main", init_create_create_delete())


@pytest.fixture
def state():
    return findings.new_state(NOW)


@pytest.fixture
def baseline(state, repository):
    """A state whose segment baseline is the repository as written."""
    findings.rebaseline(state, repository)
    return state


def test_a_missing_state_file_gives_a_new_state_first_seen_now(tmp_path):
    before = findings.now_text()

    state = findings.load(tmp_path / "web.json")

    assert before <= state["first_seen"] <= findings.now_text()
    assert state == findings.new_state(state["first_seen"])


def test_a_state_file_missing_newer_fields_gets_their_defaults(tmp_path):
    path = tmp_path / "web.json"
    path.write_text(json.dumps({"first_seen": "2024-01-01T00:00:00+00:00", "scanned": 13, "known": ["ab"]}))

    assert findings.load(path) == findings.new_state("2024-01-01T00:00:00+00:00") | {"scanned": 13, "known": ["ab"]}


def test_locked_saves_the_state_changed_inside_it_readable_by_root_only(tmp_path):
    path = tmp_path / "monitor" / "clients" / "web.json"

    with findings.locked(path) as state:
        state["last_backup"] = NOW

    assert findings.load(path)["last_backup"] == NOW
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.with_suffix(".lock").exists()


def test_locked_does_not_save_when_an_exception_escapes(tmp_path):
    path = tmp_path / "web.json"
    findings.save(path, findings.new_state(NOW))

    with pytest.raises(RuntimeError), findings.locked(path) as state:
        state["last_backup"] = LATER
        raise RuntimeError("scan failed")

    assert findings.load(path)["last_backup"] is None


def test_a_repository_is_busy_while_borg_holds_its_exclusive_lock(repository):
    assert findings.busy(repository) is False

    (repository / "lock.exclusive").mkdir()

    assert findings.busy(repository) is True


def test_the_first_scan_records_each_client_delete_with_where_and_when_it_was_committed(state, repository):
    os.utime(segment(repository, 10), (WRITTEN, WRITTEN))

    assert findings.scan_deletes(state, repository, NOW) == 1

    assert state["deletes"] == [
        {
            "segment": 10,
            "offset": 8,
            "key": ARCHIVE_ONE.hex(),
            "checkpoint": False,
            "committed_at": "2024-05-06T02:59:30+00:00",
            "seen_at": NOW,
        }
    ]
    assert (state["scanned"], state["known"]) == (13, [ARCHIVE_ONE.hex()])


def test_a_delete_is_found_once_however_often_the_repository_is_scanned(state, repository):
    findings.scan_deletes(state, repository, NOW)

    assert findings.scan_deletes(state, repository, LATER) == 0
    assert [delete["seen_at"] for delete in state["deletes"]] == [NOW]


def test_a_later_scan_finds_only_the_deletes_committed_since(state, repository):
    findings.scan_deletes(state, repository, NOW)
    write_segment(repository, 14, [delete(ARCHIVE_TWO)])
    write_segment(repository, 15, [commit()])

    assert findings.scan_deletes(state, repository, LATER) == 1

    assert [(d["segment"], d["key"], d["seen_at"]) for d in state["deletes"]] == [
        (10, ARCHIVE_ONE.hex(), NOW),
        (14, ARCHIVE_TWO.hex(), LATER),
    ]
    assert state["scanned"] == 15


def test_after_a_rollback_the_segments_written_again_are_scanned(state, repository):
    findings.scan_deletes(state, repository, NOW)
    for number in (10, 11, 12, 13):
        segment(repository, number).unlink()  # rolled back to segment 9
    findings.scan_deletes(state, repository, NOW)
    write_segment(repository, 10, [delete(ARCHIVE_TWO)])
    write_segment(repository, 11, [commit()])

    assert findings.scan_deletes(state, repository, LATER) == 1

    assert [d["key"] for d in state["deletes"]][-1] == ARCHIVE_TWO.hex()
    assert state["scanned"] == 11


def test_a_delete_not_committed_yet_waits_for_its_commit(state, repository):
    findings.scan_deletes(state, repository, NOW)
    write_segment(repository, 14, [delete(ARCHIVE_TWO)])

    assert findings.scan_deletes(state, repository, LATER) == 0
    assert state["scanned"] == 13

    write_segment(repository, 15, [commit()])

    assert findings.scan_deletes(state, repository, LATER) == 1


def test_a_repository_without_a_commit_has_nothing_to_scan(state, tmp_path):
    repository = write_repository(tmp_path / "main", [[put(MANIFEST_KEY)]])

    assert findings.scan_deletes(state, repository, NOW) == 0
    assert (state["scanned"], state["deletes"]) == (None, [])


def test_delete_entries_copied_by_compaction_are_not_reported_again(state, repository):
    findings.scan_deletes(state, repository, NOW)
    findings.acknowledge(state, 13, NOW)
    for number in range(14):
        segment(repository, number).unlink()  # compaction: the old segments go, what is still needed is copied
    write_segment(repository, 14, [put(MANIFEST_KEY), put(CHUNK), put(ITEMS), put(ARCHIVE_TWO), delete(ARCHIVE_ONE)])
    write_segment(repository, 15, [commit()])

    assert findings.scan_deletes(state, repository, LATER) == 0
    assert state["deletes"] == []

    write_segment(repository, 16, [delete(ARCHIVE_TWO)])
    write_segment(repository, 17, [commit()])

    assert findings.scan_deletes(state, repository, LATER) == 1
    assert [(d["segment"], d["key"]) for d in state["deletes"]] == [(16, ARCHIVE_TWO.hex())]


def test_a_damaged_segment_stops_the_scan_without_moving_its_position(state, repository):
    path = segment(repository, 10)
    path.write_bytes(path.read_bytes()[:-1] + b"X")

    with pytest.raises(SegmentError, match="crc32 mismatch at offset 8"):
        findings.scan_deletes(state, repository, NOW)
    assert (state["scanned"], state["deletes"], state["known"]) == (None, [], [])


def test_checkpoint_clean_ups_are_left_out_of_the_unacknowledged_deletes_only_when_asked(state, tmp_path):
    repository = write_repository(tmp_path / "main", [*checkpointed_create(), [delete(CHUNK)], [commit()]])
    findings.scan_deletes(state, repository, NOW)

    assert [(d["segment"], d["checkpoint"]) for d in findings.unacknowledged(state)] == [
        (6, True),
        (10, True),
        (14, False),
    ]
    assert [d["segment"] for d in findings.unacknowledged(state, include_checkpoints=False)] == [14]


def test_acknowledging_up_to_a_segment_leaves_the_deletes_in_later_segments(state, repository):
    findings.scan_deletes(state, repository, NOW)
    write_segment(repository, 14, [delete(ARCHIVE_TWO)])
    write_segment(repository, 15, [commit()])
    findings.scan_deletes(state, repository, NOW)

    done = findings.acknowledge(state, 13, LATER)

    assert [d["segment"] for d in done] == [10]
    assert [d["segment"] for d in state["deletes"]] == [14]
    assert state["acknowledged"] == [{"at": LATER, "through": 13, "deletes": 1, "tampering": False}]


def test_acknowledging_with_nothing_found_leaves_no_history(state):
    assert findings.acknowledge(state, 13, LATER) == []
    assert state["acknowledged"] == []


def test_acknowledging_tampering_without_deletes_is_kept_in_the_history(state):
    state["tampering"] = {"changed": [2], "truncated": [], "removed": [], "seen_at": NOW}

    assert findings.acknowledge(state, 13, LATER) == []
    assert state["acknowledged"] == [{"at": LATER, "through": 13, "deletes": 0, "tampering": True}]


def test_the_baseline_holds_every_committed_segment_and_no_uncommitted_one(state, repository):
    write_segment(repository, 14, [put(CHUNK)])

    findings.rebaseline(state, repository)

    assert sorted(state["segments"], key=int) == [str(number) for number in range(14)]
    status = segment(repository, 10).stat()
    assert state["segments"]["10"] == [
        49,
        hashlib.sha256(MAGIC + delete(ARCHIVE_ONE)).hexdigest(),
        status.st_mtime_ns,
        status.st_ctime_ns,
        status.st_ino,
    ]


def test_an_untouched_repository_shows_no_tampering(baseline, repository):
    assert findings.check_tampering(baseline, repository, NOW) is None
    assert baseline["tampering"] is None


def test_a_segment_whose_content_changed_is_tampering(baseline, repository):
    path = segment(repository, 2)
    path.write_bytes(path.read_bytes() + put(CHUNK))

    assert findings.check_tampering(baseline, repository, NOW) == {
        "changed": [2],
        "truncated": [],
        "removed": [],
        "seen_at": NOW,
    }


def test_a_segment_replaced_by_one_of_the_same_size_and_times_is_tampering(baseline, repository):
    path = segment(repository, 2)
    replace_keeping_times(path, path.read_bytes().replace(b"data", b"DATA", 1))

    assert findings.check_tampering(baseline, repository, NOW)["changed"] == [2]


def test_a_truncated_and_a_removed_segment_are_tampering(baseline, repository):
    path = segment(repository, 6)
    path.write_bytes(path.read_bytes()[:-1])
    segment(repository, 10).unlink()

    assert findings.check_tampering(baseline, repository, NOW) == {
        "changed": [],
        "truncated": [6],
        "removed": [10],
        "seen_at": NOW,
    }


def test_a_segment_touched_but_with_the_same_content_is_not_tampering_and_its_new_times_are_kept(baseline, repository):
    path = segment(repository, 2)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))

    assert findings.check_tampering(baseline, repository, NOW) is None
    assert baseline["segments"]["2"][2] == 1_000_000_000


def test_segments_committed_since_extend_the_baseline_and_a_later_change_to_them_is_found(baseline, repository):
    write_segment(repository, 14, [delete(ARCHIVE_TWO)])
    write_segment(repository, 15, [commit()])
    write_segment(repository, 16, [put(CHUNK)])

    assert findings.check_tampering(baseline, repository, NOW) is None
    assert sorted(baseline["segments"], key=int) == [str(number) for number in range(16)]

    segment(repository, 14).unlink()

    assert findings.check_tampering(baseline, repository, LATER)["removed"] == [14]


def test_tampering_stays_with_its_first_sighting_until_the_segment_is_restored(baseline, repository):
    path = segment(repository, 2)
    original = path.read_bytes()
    path.write_bytes(original + put(CHUNK))
    findings.check_tampering(baseline, repository, NOW)

    assert findings.check_tampering(baseline, repository, LATER) == {
        "changed": [2],
        "truncated": [],
        "removed": [],
        "seen_at": NOW,
    }

    path.write_bytes(original)

    assert findings.check_tampering(baseline, repository, LATER) is None


def test_rebaseline_accepts_what_is_on_disk_and_forgets_the_tampering(baseline, repository):
    segment(repository, 10).unlink()
    findings.check_tampering(baseline, repository, NOW)

    findings.rebaseline(baseline, repository)

    assert baseline["tampering"] is None
    assert "10" not in baseline["segments"]
    assert findings.check_tampering(baseline, repository, LATER) is None


def test_an_unreadable_segment_keeps_the_changes_seen_and_their_first_sighting(state):
    state["tampering"] = {"changed": [2], "truncated": [], "removed": [10], "seen_at": NOW}

    findings.record_unreadable(state, SegmentError("data/0/6: crc32 mismatch at offset 8"), LATER)

    assert state["tampering"] == {
        "changed": [2],
        "truncated": [],
        "removed": [10],
        "unreadable": "data/0/6: crc32 mismatch at offset 8",
        "seen_at": NOW,
    }
    assert findings.tampered_segments(state) == 2


def test_an_unreadable_segment_alone_counts_as_one_tampered_segment(state):
    findings.record_unreadable(state, SegmentError("data/0/6: bad magic, not a borg segment file"), NOW)

    assert state["tampering"]["seen_at"] == NOW
    assert findings.tampered_segments(state) == 1


def test_no_tampering_is_zero_tampered_segments(state):
    assert findings.tampered_segments(state) == 0


def test_tampering_is_described_in_one_line():
    tampering = {"changed": [2, 3], "truncated": [], "removed": [10], "unreadable": "data/0/6: bad", "seen_at": NOW}

    assert findings.describe_tampering(tampering) == "segments changed 2, 3; removed 10; unreadable: data/0/6: bad"
