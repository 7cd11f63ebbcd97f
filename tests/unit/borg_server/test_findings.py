"""Tests for the monitor's per-client findings: deletes grouped per segment, acknowledgements, tamper detection.

Repositories are built from segment files written byte by byte like borg 1.4.0 (see test_segments).
"""

import hashlib
import json
import logging
import os
from datetime import UTC, datetime

import pytest

from borg_server import findings
from borg_server.segments import COMMIT_ENTRY, SegmentError
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
CONFIG = b"[repository]\nversion = 1\nappend_only = 0\n"
NO_TAMPERING = {"changed": [], "truncated": [], "removed": [], "config": False, "seen_at": NOW}


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


def group(segment_number: int, kinds: dict[str, int], keys: list[bytes], seen_at: str = NOW, committed=None) -> dict:
    """Return the group of deletes scan_deletes records for one segment."""
    return {
        "segment": segment_number,
        "count": sum(kinds.values()),
        "kinds": kinds,
        "keys": [key.hex() for key in keys],
        "committed_at": committed,
        "seen_at": seen_at,
    }


@pytest.fixture
def repository(tmp_path):
    """A repository after `borg init`, `create ::one`, `create ::two`, `delete ::one`: one delete, in segment 10."""
    repository = write_repository(tmp_path / "main", init_create_create_delete())
    (repository / "config").write_bytes(CONFIG)
    return repository


@pytest.fixture
def state():
    return findings.new_state(NOW)


@pytest.fixture
def baseline(state, repository):
    """A state whose segment and config baseline is the repository as written."""
    findings.rebaseline(state, repository)
    return state


# load, save, locked


def test_a_missing_state_file_gives_a_new_state_first_seen_now(tmp_path):
    before = findings.now_text()

    state = findings.load(tmp_path / "web.json")

    assert before <= state["first_seen"] <= findings.now_text()
    assert state == findings.new_state(state["first_seen"])


def test_a_state_file_missing_newer_fields_gets_their_defaults(tmp_path):
    path = tmp_path / "web.json"
    path.write_text(json.dumps({"version": 2, "first_seen": "2024-01-01T00:00:00+00:00", "scanned": 13}))

    assert findings.load(path) == findings.new_state("2024-01-01T00:00:00+00:00") | {"scanned": 13}


def test_a_state_file_of_the_first_version_keeps_its_history_and_scans_the_deletes_again(tmp_path):
    path = tmp_path / "web.json"
    old = {"first_seen": "2024-01-01T00:00:00+00:00", "last_backup": "2024-01-02T00:00:00+00:00", "scanned": 13,
           "deletes": [{"segment": 10, "key": "01" * 32, "checkpoint": False}], "known": ["01" * 32]}  # fmt: skip
    path.write_text(json.dumps(old))

    assert findings.load(path) == findings.new_state(old["first_seen"]) | {"last_backup": old["last_backup"]}


@pytest.mark.parametrize("content", ["null", "[]", '"text"'])
def test_a_state_file_that_is_not_a_json_object_is_moved_aside(tmp_path, content):
    path = tmp_path / "web.json"
    path.write_text(content)

    assert findings.load(path)["scanned"] is None
    assert path.with_suffix(".damaged").read_text() == content


def test_a_damaged_state_file_is_moved_aside_and_a_new_state_begins(tmp_path, caplog):
    path = tmp_path / "web.json"
    path.write_text('{"first_seen": "2024-01-01T00:00:00+00:00", "scan')

    with caplog.at_level(logging.ERROR, logger="borg_server.findings"):
        state = findings.load(path)

    assert state == findings.new_state(state["first_seen"])
    assert state["first_seen"] != "2024-01-01T00:00:00+00:00"
    assert not path.exists()
    assert (tmp_path / "web.damaged").read_text() == '{"first_seen": "2024-01-01T00:00:00+00:00", "scan'
    assert caplog.messages == [
        f"monitor state {path} is damaged (Unterminated string starting at: line 1 column 45 (char 44)); "
        f"moved to {tmp_path / 'web.damaged'}, starting afresh"
    ]


def test_a_damaged_state_file_under_the_lock_is_replaced_by_a_new_one(tmp_path):
    path = tmp_path / "web.json"
    path.write_text("{not json")

    with findings.locked(path) as state:
        state["scanned"] = 13

    assert findings.load(path)["scanned"] == 13
    assert (tmp_path / "web.damaged").read_text() == "{not json"


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


# scan_deletes


def test_the_first_scan_records_the_deletes_of_a_segment_as_one_group_with_when_it_was_committed(state, repository):
    os.utime(segment(repository, 10), (WRITTEN, WRITTEN))

    assert findings.scan_deletes(state, repository, NOW) == 1

    assert state["deletes"] == [group(10, {"delete": 1}, [ARCHIVE_ONE], committed="2024-05-06T02:59:30+00:00")]
    assert state["scanned"] == 13


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

    assert findings.scan_deletes(state, repository, NOW) == 13

    [found] = state["deletes"]
    assert {k: v for k, v in found.items() if k != "committed_at"} == {
        "segment": 3,
        "count": 13,
        "kinds": {"delete": 12, "overwrite": 1},
        "keys": [key.hex() for key in keys[: findings.KEYS_KEPT]],
        "seen_at": NOW,
    }
    assert findings.KEYS_KEPT == 10


def test_a_delete_is_found_once_however_often_the_repository_is_scanned(state, repository):
    findings.scan_deletes(state, repository, NOW)

    assert findings.scan_deletes(state, repository, LATER) == 0
    assert [found["seen_at"] for found in state["deletes"]] == [NOW]


def test_a_later_scan_finds_only_the_deletes_committed_since(state, repository):
    findings.scan_deletes(state, repository, NOW)
    write_segment(repository, 14, [delete(ARCHIVE_TWO)])
    write_segment(repository, 15, [commit()])

    assert findings.scan_deletes(state, repository, LATER) == 1

    assert [(found["segment"], found["keys"], found["seen_at"]) for found in state["deletes"]] == [
        (10, [ARCHIVE_ONE.hex()], NOW),
        (14, [ARCHIVE_TWO.hex()], LATER),
    ]
    assert state["scanned"] == 15


def test_after_a_rollback_the_segments_written_again_are_scanned(state, repository):
    findings.scan_deletes(state, repository, NOW)
    for number in (10, 11, 12, 13):
        segment(repository, number).unlink()  # rolled back to segment 9
    findings.scan_deletes(state, repository, NOW)
    assert state["scanned"] == 9
    write_segment(repository, 10, [delete(ARCHIVE_TWO)])
    write_segment(repository, 11, [commit()])

    assert findings.scan_deletes(state, repository, LATER) == 1

    assert [(found["segment"], found["keys"]) for found in state["deletes"]] == [
        (10, [ARCHIVE_ONE.hex()]),
        (10, [ARCHIVE_TWO.hex()]),
    ]
    assert state["scanned"] == 11


def test_a_delete_not_committed_yet_waits_for_its_commit(state, repository):
    findings.scan_deletes(state, repository, NOW)
    write_segment(repository, 14, [delete(ARCHIVE_TWO)])

    assert findings.scan_deletes(state, repository, LATER) == 0
    assert state["scanned"] == 13

    write_segment(repository, 15, [commit()])

    assert findings.scan_deletes(state, repository, LATER) == 1


def test_a_put_ending_with_the_commit_bytes_does_not_make_the_deletes_before_it_committed(state, repository):
    findings.scan_deletes(state, repository, NOW)
    write_segment(repository, 14, [delete(ARCHIVE_TWO), put(CHUNK, b"garbage" + COMMIT_ENTRY)])

    assert findings.scan_deletes(state, repository, LATER) == 0
    assert (state["scanned"], [found["segment"] for found in state["deletes"]]) == (13, [10])


def test_a_repository_without_a_commit_has_nothing_to_scan(state, tmp_path):
    repository = write_repository(tmp_path / "main", [[put(MANIFEST_KEY)]])

    assert findings.scan_deletes(state, repository, NOW) == 0
    assert (state["scanned"], state["deletes"]) == (None, [])


def test_a_damaged_segment_stops_the_scan_without_moving_its_position(state, repository):
    path = segment(repository, 10)
    path.write_bytes(path.read_bytes()[:-1] + b"X")

    with pytest.raises(SegmentError, match="crc32 mismatch at offset 8"):
        findings.scan_deletes(state, repository, NOW)
    assert (state["scanned"], state["deletes"]) == (None, [])


# pending_deletes and acknowledge


def test_checkpoint_clean_ups_are_pending_but_left_out_of_the_alerting_count(state, tmp_path):
    repository = write_repository(tmp_path / "main", [*checkpointed_create(), [delete(CHUNK)], [commit()]])
    findings.scan_deletes(state, repository, NOW)

    assert [(found["segment"], found["kinds"]) for found in state["deletes"]] == [
        (6, {"checkpoint": 1}),
        (10, {"checkpoint": 1}),
        (14, {"delete": 1}),
    ]
    assert findings.pending_deletes(state) == 3
    assert findings.pending_deletes(state, alerting_only=True) == 1


def test_overwrites_count_among_the_alerting_deletes():
    state = findings.new_state(NOW)
    state["deletes"] = [group(6, {"checkpoint": 2, "overwrite": 1}, []), group(9, {"delete": 3}, [])]

    assert findings.pending_deletes(state) == 6
    assert findings.pending_deletes(state, alerting_only=True) == 4


def test_no_deletes_are_zero_pending(state):
    assert (findings.pending_deletes(state), findings.pending_deletes(state, alerting_only=True)) == (0, 0)


def test_acknowledging_up_to_a_segment_leaves_the_deletes_in_later_segments(state, repository):
    findings.scan_deletes(state, repository, NOW)
    write_segment(repository, 14, [delete(ARCHIVE_TWO)])
    write_segment(repository, 15, [commit()])
    findings.scan_deletes(state, repository, NOW)

    assert findings.acknowledge(state, 13, False, LATER) == 1

    assert [found["segment"] for found in state["deletes"]] == [14]
    assert state["acknowledged"] == [{"at": LATER, "through": 13, "deletes": 1, "tampering": False}]


def test_acknowledging_counts_every_delete_of_the_groups_acknowledged(state):
    state["deletes"] = [group(6, {"checkpoint": 2, "delete": 3}, []), group(9, {"overwrite": 1}, [])]

    assert findings.acknowledge(state, 9, False, LATER) == 6
    assert state["deletes"] == []
    assert state["acknowledged"] == [{"at": LATER, "through": 9, "deletes": 6, "tampering": False}]


def test_acknowledging_with_nothing_found_leaves_no_history(state):
    assert findings.acknowledge(state, 13, False, LATER) == 0
    assert state["acknowledged"] == []


def test_acknowledging_tampering_without_deletes_is_kept_in_the_history(state):
    state["tampering"] = {"changed": [2], "truncated": [], "removed": [], "config": False, "seen_at": NOW}

    assert findings.acknowledge(state, 13, True, LATER) == 0
    assert state["acknowledged"] == [{"at": LATER, "through": 13, "deletes": 0, "tampering": True}]


def test_tampering_not_acknowledged_leaves_no_history_and_stays(state):
    state["tampering"] = {"changed": [2], "truncated": [], "removed": [], "config": False, "seen_at": NOW}

    assert findings.acknowledge(state, 13, False, LATER) == 0
    assert state["acknowledged"] == []
    assert state["tampering"]["changed"] == [2]


# baseline and check_tampering


def test_the_baseline_holds_every_committed_segment_no_uncommitted_one_and_the_config_digest(state, repository):
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
    assert state["config"] == hashlib.sha256(CONFIG).hexdigest()


def test_an_untouched_repository_shows_no_tampering(baseline, repository):
    assert findings.check_tampering(baseline, repository, NOW) is None
    assert baseline["tampering"] is None


def test_the_first_check_records_the_config_digest_and_finds_no_tampering(state, repository):
    assert findings.check_tampering(state, repository, NOW) is None

    assert state["config"] == hashlib.sha256(CONFIG).hexdigest()
    assert sorted(state["segments"], key=int) == [str(number) for number in range(14)]


def test_a_segment_whose_content_changed_is_tampering(baseline, repository):
    path = segment(repository, 2)
    path.write_bytes(path.read_bytes() + put(CHUNK))

    assert findings.check_tampering(baseline, repository, NOW) == NO_TAMPERING | {"changed": [2]}


def test_a_segment_replaced_by_one_of_the_same_size_and_times_is_tampering(baseline, repository):
    path = segment(repository, 2)
    replace_keeping_times(path, path.read_bytes().replace(b"data", b"DATA", 1))

    assert findings.check_tampering(baseline, repository, NOW)["changed"] == [2]


def test_a_truncated_and_a_removed_segment_are_tampering(baseline, repository):
    path = segment(repository, 6)
    path.write_bytes(path.read_bytes()[:-1])
    segment(repository, 10).unlink()

    assert findings.check_tampering(baseline, repository, NOW) == NO_TAMPERING | {"truncated": [6], "removed": [10]}


def test_a_changed_repository_config_is_tampering_until_it_is_restored(baseline, repository):
    (repository / "config").write_bytes(CONFIG.replace(b"append_only = 0", b"append_only = 1"))

    assert findings.check_tampering(baseline, repository, NOW) == NO_TAMPERING | {"config": True}
    assert findings.check_tampering(baseline, repository, LATER) == NO_TAMPERING | {"config": True}

    (repository / "config").write_bytes(CONFIG)

    assert findings.check_tampering(baseline, repository, LATER) is None
    assert baseline["config"] == hashlib.sha256(CONFIG).hexdigest()


def test_a_removed_repository_config_is_tampering(baseline, repository):
    (repository / "config").unlink()

    assert findings.check_tampering(baseline, repository, NOW) == NO_TAMPERING | {"config": True}


def test_after_a_compaction_removed_segments_leave_the_baseline_and_are_not_tampering(baseline, repository):
    for number in (2, 6):
        segment(repository, number).unlink()

    assert findings.check_tampering(baseline, repository, NOW, compacted=True) is None

    assert sorted(baseline["segments"], key=int) == [str(n) for n in range(14) if n not in (2, 6)]
    assert findings.check_tampering(baseline, repository, LATER) is None


def test_after_a_compaction_changed_and_truncated_segments_are_still_tampering(baseline, repository):
    segment(repository, 2).write_bytes(segment(repository, 2).read_bytes() + put(CHUNK))
    segment(repository, 6).write_bytes(segment(repository, 6).read_bytes()[:-1])
    segment(repository, 10).unlink()

    assert findings.check_tampering(baseline, repository, NOW, compacted=True) == NO_TAMPERING | {
        "changed": [2],
        "truncated": [6],
    }
    assert "2" in baseline["segments"]
    assert "10" not in baseline["segments"]


def test_a_config_changed_during_an_admin_session_is_still_tampering(baseline, repository):
    (repository / "config").write_bytes(CONFIG + b"additional_free_space = 1G\n")

    assert findings.check_tampering(baseline, repository, NOW, compacted=True)["config"] is True


def test_a_segment_reported_removed_stays_reported_after_an_admin_session(baseline, repository):
    segment(repository, 2).unlink()
    findings.check_tampering(baseline, repository, NOW)

    assert findings.check_tampering(baseline, repository, LATER, compacted=True)["removed"] == [2]


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
    path.write_bytes(original + put(ITEMS))
    findings.check_tampering(baseline, repository, NOW)

    assert findings.check_tampering(baseline, repository, LATER) == NO_TAMPERING | {"changed": [2]}

    path.write_bytes(original)

    assert findings.check_tampering(baseline, repository, LATER) is None


def test_rebaseline_accepts_what_is_on_disk_and_forgets_the_tampering(baseline, repository):
    segment(repository, 10).unlink()
    (repository / "config").write_bytes(CONFIG + b"\n")
    findings.check_tampering(baseline, repository, NOW)

    findings.rebaseline(baseline, repository)

    assert baseline["tampering"] is None
    assert "10" not in baseline["segments"]
    assert baseline["config"] == hashlib.sha256(CONFIG + b"\n").hexdigest()
    assert findings.check_tampering(baseline, repository, LATER) is None


# record_unreadable, tampered_segments, describe_tampering


def test_an_unreadable_segment_keeps_the_changes_seen_and_their_first_sighting(state):
    state["tampering"] = {"changed": [2], "truncated": [], "removed": [10], "config": True, "seen_at": NOW}

    findings.record_unreadable(state, SegmentError("data/0/6: crc32 mismatch at offset 8"), LATER)

    assert state["tampering"] == {
        "changed": [2],
        "truncated": [],
        "removed": [10],
        "config": True,
        "unreadable": "data/0/6: crc32 mismatch at offset 8",
        "seen_at": NOW,
    }
    assert findings.tampered_segments(state) == 3


def test_an_unreadable_segment_alone_counts_as_one_tampered_segment(state):
    findings.record_unreadable(state, SegmentError("data/0/6: bad magic, not a borg segment file"), NOW)

    assert state["tampering"] == {
        "changed": [],
        "truncated": [],
        "removed": [],
        "config": False,
        "unreadable": "data/0/6: bad magic, not a borg segment file",
        "seen_at": NOW,
    }
    assert findings.tampered_segments(state) == 1


def test_a_changed_config_counts_as_one_tampered_file(state):
    state["tampering"] = NO_TAMPERING | {"config": True}
    assert findings.tampered_segments(state) == 1

    state["tampering"] = NO_TAMPERING | {"changed": [2, 3], "removed": [10], "config": True}
    assert findings.tampered_segments(state) == 4


def test_no_tampering_is_zero_tampered_segments(state):
    assert findings.tampered_segments(state) == 0


def test_tampering_is_described_in_one_line():
    tampering = NO_TAMPERING | {"changed": [2, 3], "removed": [10], "config": True, "unreadable": "data/0/6: bad"}

    assert findings.describe_tampering(tampering) == (
        "segments changed 2, 3; segments removed 10; "
        "the repository config changed (a replaced repokey or settings); unreadable: data/0/6: bad"
    )


def test_a_truncated_segment_alone_is_described_alone():
    assert findings.describe_tampering(NO_TAMPERING | {"truncated": [6]}) == "segments truncated 6"
