"""Tests for the monitor's state: loading version 2 files into the records, saving, the lock, damaged files."""

import json
import logging

import pytest

from borg_server.records import state_file
from borg_server.records.client_state import (
    Acknowledgement,
    CheckResult,
    ClientState,
    DeleteGroup,
    ManifestShrink,
    RaisedAlert,
    SegmentPrint,
    Tampering,
)
from borg_server.records.compaction_state import Compacted, Retention

NOW = "2024-05-06T03:00:00+00:00"
LATER = "2024-05-07T03:00:00+00:00"
SHA = "ab" * 32
VERSION_2 = {  # a state file as the monitor wrote it before the records existed (sorted keys, indent 1)
    "acknowledged": [{"at": LATER, "deletes": 1, "tampering": False, "through": 9}],
    "alerts": {"deletes": {"extent": 3, "message": "client web: 3 object(s) deleted", "since": NOW}},
    "check": {"at": NOW, "message": "no problems found", "ok": True, "returncode": 0},
    "config": "cd" * 32,
    "deletes": [
        {
            "committed_at": None,
            "count": 3,
            "keys": ["01" * 32],
            "kinds": {"checkpoint": 1, "delete": 2},
            "seen_at": NOW,
            "segment": 14,
            "archives": 1,
            "newest": False,
        },
    ],  # fmt: skip
    "archives": ["0123456789abcdef"],
    "first_seen": "2024-01-01T00:00:00+00:00",
    "last_backup": NOW,
    "manifest": [16, 1234],
    "manifest_shrinks": [
        {"previous_segment": 12, "previous_size": 1300, "seen_at": NOW, "segment": 16, "size": 1234},
    ],  # fmt: skip
    "retention": {
        "blocked": None,
        "held": False,
        "last": {
            "at": LATER,
            "automatic": True,
            "bytes_after": 1000,
            "bytes_before": 3000,
            "failed": None,
            "snapshot_until": LATER,
        },
        "next_at": None,
        "pending_admin": 0,
        "snapshots": {"/srv/borg/.snapshots/web/2024-05-06T03-00-00.000000Z": LATER},
    },  # fmt: skip
    "scanned": 17,
    "segments": {"0": [17, SHA, 1, 2, 3], "10": [49, SHA, 4, 5, 6]},
    "tampering": {"changed": [], "config": False, "removed": [10], "seen_at": NOW, "truncated": []},
    "version": 2,
}


def test_a_version_2_state_file_is_loaded_into_the_records(tmp_path):
    path = tmp_path / "web.json"
    path.write_text(json.dumps(VERSION_2, indent=1, sort_keys=True))

    assert state_file.load(path) == ClientState(
        first_seen="2024-01-01T00:00:00+00:00",
        last_backup=NOW,
        scanned=17,
        deletes=[DeleteGroup(14, 3, {"checkpoint": 1, "delete": 2}, ("01" * 32,), None, NOW, 1, False)],
        acknowledged=[Acknowledgement(LATER, 9, 1, False)],
        segments={0: SegmentPrint(17, SHA, 1, 2, 3), 10: SegmentPrint(49, SHA, 4, 5, 6)},
        config_digest="cd" * 32,
        tampering=Tampering(removed=(10,), seen_at=NOW),
        check=CheckResult(NOW, True, 0, "no problems found"),
        manifest=(16, 1234),
        manifest_shrinks=[ManifestShrink(16, 12, 1300, 1234, NOW)],
        archives=["0123456789abcdef"],
        alerts={"deletes": RaisedAlert(NOW, "client web: 3 object(s) deleted", 3)},
        retention=Retention(
            Compacted(LATER, 3000, 1000, True, LATER), {"/srv/borg/.snapshots/web/2024-05-06T03-00-00.000000Z": LATER}
        ),
    )


def test_a_saved_state_is_the_version_2_file_byte_for_byte(tmp_path):
    path = tmp_path / "web.json"
    path.write_text(json.dumps(VERSION_2, indent=1, sort_keys=True))

    state_file.save(tmp_path / "again.json", state_file.load(path))

    assert (tmp_path / "again.json").read_text() == path.read_text()


def test_a_state_written_before_archives_were_followed_loads_with_none_known(tmp_path):
    path = tmp_path / "web.json"
    older = {key: value for key, value in VERSION_2.items() if key != "archives"}
    older["deletes"] = [
        {k: v for k, v in group.items() if k not in ("archives", "newest")} for group in older["deletes"]
    ]
    older["retention"] = {k: v for k, v in older["retention"].items() if k != "held"}
    path.write_text(json.dumps(older))

    loaded = state_file.load(path)

    assert (loaded.archives, loaded.deletes[0].archives, loaded.deletes[0].newest) == (None, 0, False)
    assert loaded.retention.held is False


def test_an_alert_raised_before_extents_were_kept_loads_with_extent_zero(tmp_path):
    path = tmp_path / "web.json"
    path.write_text(json.dumps(VERSION_2 | {"alerts": {"stale": {"since": NOW, "message": "old"}}}))

    assert state_file.load(path).alerts == {"stale": RaisedAlert(NOW, "old", 0)}


def test_a_missing_state_file_gives_a_new_state_first_seen_now(tmp_path):
    before = state_file.now_text()

    loaded = state_file.load(tmp_path / "web.json")

    assert before <= loaded.first_seen <= state_file.now_text()
    assert loaded == ClientState(first_seen=loaded.first_seen)


def test_a_state_file_missing_newer_fields_gets_their_defaults(tmp_path):
    path = tmp_path / "web.json"
    path.write_text(json.dumps({"version": 2, "first_seen": "2024-01-01T00:00:00+00:00", "scanned": 13}))

    assert state_file.load(path) == ClientState(first_seen="2024-01-01T00:00:00+00:00", scanned=13)


@pytest.mark.parametrize("content", ["null", "[]", '"text"'])
def test_a_state_file_that_is_not_a_json_object_is_moved_aside(tmp_path, content):
    path = tmp_path / "web.json"
    path.write_text(content)

    assert state_file.load(path).scanned is None
    assert path.with_suffix(".damaged").read_text() == content


@pytest.mark.parametrize(
    "content",
    [
        json.dumps({"first_seen": NOW, "scanned": 13}),  # no version: the unreleased first one
        json.dumps({"version": 3, "first_seen": NOW}),
        json.dumps(VERSION_2 | {"deletes": [{"segment": 10}]}),
        json.dumps(VERSION_2 | {"tampering": {"changed": [2], "moved": [3]}}),
    ],
)
def test_a_state_file_of_another_version_or_with_other_fields_is_moved_aside(tmp_path, content):
    path = tmp_path / "web.json"
    path.write_text(content)

    assert state_file.load(path).scanned is None
    assert path.with_suffix(".damaged").read_text() == content


def test_a_damaged_state_file_is_moved_aside_and_a_new_state_begins(tmp_path, caplog):
    path = tmp_path / "web.json"
    path.write_text('{"first_seen": "2024-01-01T00:00:00+00:00", "scan')

    with caplog.at_level(logging.ERROR, logger="borg_server.records.state_file"):
        loaded = state_file.load(path)

    assert loaded == ClientState(first_seen=loaded.first_seen)
    assert loaded.first_seen != "2024-01-01T00:00:00+00:00"
    assert not path.exists()
    assert (tmp_path / "web.damaged").read_text() == '{"first_seen": "2024-01-01T00:00:00+00:00", "scan'
    assert caplog.messages == [
        f"monitor state {path} is damaged (Unterminated string starting at: line 1 column 45 (char 44)); "
        f"moved to {tmp_path / 'web.damaged'}, starting afresh"
    ]


def test_a_damaged_state_file_under_the_lock_is_replaced_by_a_new_one(tmp_path):
    path = tmp_path / "web.json"
    path.write_text("{not json")

    with state_file.locked(path) as found:
        found.scanned = 13

    assert state_file.load(path).scanned == 13
    assert (tmp_path / "web.damaged").read_text() == "{not json"


def test_locked_saves_the_state_changed_inside_it_readable_by_root_only(tmp_path):
    path = tmp_path / "monitor" / "clients" / "web.json"

    with state_file.locked(path) as found:
        found.last_backup = NOW

    assert state_file.load(path).last_backup == NOW
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.with_suffix(".lock").exists()


def test_locked_does_not_save_when_an_exception_escapes(tmp_path):
    path = tmp_path / "web.json"
    state_file.save(path, ClientState(first_seen=NOW))

    with pytest.raises(RuntimeError), state_file.locked(path) as found:
        found.last_backup = LATER
        raise RuntimeError("scan failed")

    assert state_file.load(path).last_backup is None


# derived figures


def group(segment: int, **kinds: int) -> DeleteGroup:
    return DeleteGroup(segment, sum(kinds.values()), kinds, (), None, NOW)


def test_overwrites_count_among_the_alerting_deletes():
    found = ClientState(first_seen=NOW, deletes=[group(6, checkpoint=2, overwrite=1), group(9, delete=3)])

    assert found.pending_deletes() == 6
    assert found.pending_deletes(alerting_only=True) == 4


def test_no_deletes_are_zero_pending():
    found = ClientState(first_seen=NOW)

    assert (found.pending_deletes(), found.pending_deletes(alerting_only=True)) == (0, 0)


def test_an_unreadable_segment_alone_counts_as_one_tampered_file_and_with_others_as_none_more():
    assert Tampering(unreadable="data/0/6: bad magic", seen_at=NOW).files == 1
    assert Tampering(changed=(2,), removed=(10,), config=True, unreadable="data/0/6: bad", seen_at=NOW).files == 3


def test_a_changed_config_counts_as_one_tampered_file():
    assert Tampering(config=True, seen_at=NOW).files == 1
    assert Tampering(changed=(2, 3), removed=(10,), config=True, seen_at=NOW).files == 4


def test_no_tampering_is_zero_tampered_files():
    assert ClientState(first_seen=NOW).tampered_files == 0
    assert ClientState(first_seen=NOW, tampering=Tampering(truncated=(6,), seen_at=NOW)).tampered_files == 1
