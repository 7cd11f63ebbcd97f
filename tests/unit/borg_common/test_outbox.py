import json
import logging
import os
import stat

import pytest

from borg_common import outbox

A = "https://a.example/hook"
B = "https://b.example/hook"


def names(directory):
    return sorted(p.name for p in directory.iterdir())


def test_put_writes_one_file_with_the_document_pending_urls_and_no_attempts(tmp_path):
    path = outbox.put(tmp_path, {"run_id": "r1", "status": "success"}, [A, B])

    record = json.loads(path.read_text())
    assert names(tmp_path) == [path.name]
    assert record["document"] == {"run_id": "r1", "status": "success"}
    assert record["pending"] == [A, B]
    assert record["attempts"] == {}
    assert record["created_at"].endswith("+00:00")
    assert path.name.endswith("-r1.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_put_without_urls_writes_nothing_and_returns_none(tmp_path):
    assert outbox.put(tmp_path / "box", {"run_id": "r1"}, []) is None
    assert not (tmp_path / "box").exists()


def test_put_keeps_each_url_once(tmp_path):
    path = outbox.put(tmp_path, {"id": "x"}, [A, B, A])

    assert json.loads(path.read_text())["pending"] == [A, B]


def test_file_name_uses_a_sanitised_id(tmp_path):
    path = outbox.put(tmp_path, {"run_id": "../../etc/pass wd"}, [A])

    assert path.parent == tmp_path
    assert path.name.endswith("-etc_pass_wd.json")


def test_a_failed_write_leaves_no_temp_file_and_no_entry(tmp_path, monkeypatch):
    def broken_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(outbox.os, "replace", broken_replace)

    with pytest.raises(OSError, match="disk full"):
        outbox.put(tmp_path, {"run_id": "r1"}, [A])
    assert names(tmp_path) == []


def test_entries_come_oldest_first_even_when_the_clock_repeats_or_steps_back(tmp_path, monkeypatch):
    readings = iter([5_000, 5_000, 4_000])
    monkeypatch.setattr(outbox.time, "time_ns", lambda: next(readings))
    for run_id in ("first", "second", "third"):
        outbox.put(tmp_path, {"run_id": run_id}, [A])

    assert [e.document["run_id"] for e in outbox.entries(tmp_path)] == ["first", "second", "third"]


def test_entries_of_a_missing_directory_are_empty(tmp_path):
    assert outbox.entries(tmp_path / "missing") == []
    assert outbox.size(tmp_path / "missing") == 0


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"\xff\xfe", b'["a list"]', b'{"document": {}, "pending": [], "created_at": "", "attempts": {}}'],
    ids=["bad json", "not utf-8", "wrong shape", "nothing pending"],
)
def test_a_corrupt_file_is_moved_aside_with_a_warning_and_skipped(tmp_path, caplog, content):
    good = outbox.put(tmp_path, {"run_id": "good"}, [A])
    (tmp_path / "00000000000000000001-bad.json").write_bytes(content)

    with caplog.at_level(logging.WARNING, logger="borg_common.outbox"):
        found = outbox.entries(tmp_path)

    assert [e.path for e in found] == [good]
    assert names(tmp_path) == ["00000000000000000001-bad.json.corrupt", good.name]
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "00000000000000000001-bad.json" in caplog.text


@pytest.mark.parametrize("kind", ["fifo", "symlink", "directory"])
def test_an_entry_that_is_no_regular_file_is_moved_aside_never_read_through_or_waited_on(tmp_path, kind):
    good = outbox.put(tmp_path, {"run_id": "good"}, [A])
    record = {"document": {"run_id": "elsewhere"}, "pending": [A], "created_at": "x", "attempts": {}}
    (tmp_path / "elsewhere.txt").write_text(json.dumps(record))  # a valid record, not the outbox's
    stray = tmp_path / "00000000000000000001-stray.json"
    {"fifo": lambda: os.mkfifo(stray), "symlink": lambda: stray.symlink_to(tmp_path / "elsewhere.txt"),
     "directory": stray.mkdir}[kind]()  # fmt: skip

    assert [e.path for e in outbox.entries(tmp_path)] == [good]
    assert (tmp_path / "00000000000000000001-stray.json.corrupt").exists()


def test_marking_one_url_done_rewrites_the_file_without_it(tmp_path):
    outbox.put(tmp_path, {"run_id": "r1"}, [A, B])
    (entry,) = outbox.entries(tmp_path)

    left = outbox.mark_done(entry, A)

    assert left.pending == (B,)
    assert json.loads(entry.path.read_text())["pending"] == [B]
    assert [e.pending for e in outbox.entries(tmp_path)] == [(B,)]
    assert names(tmp_path) == [entry.path.name]


def test_marking_the_last_url_done_removes_the_file(tmp_path):
    outbox.put(tmp_path, {"run_id": "r1"}, [A])
    (entry,) = outbox.entries(tmp_path)

    assert outbox.mark_done(entry, A) is None
    assert names(tmp_path) == []


def test_marking_done_does_not_recreate_a_file_removed_meanwhile(tmp_path):
    outbox.put(tmp_path, {"run_id": "r1"}, [A, B])
    (entry,) = outbox.entries(tmp_path)
    entry.path.unlink()

    outbox.mark_done(entry, A)

    assert names(tmp_path) == []


def test_recording_a_failure_counts_per_url_on_disk(tmp_path):
    outbox.put(tmp_path, {"run_id": "r1"}, [A, B])
    (entry,) = outbox.entries(tmp_path)

    entry = outbox.record_failure(outbox.record_failure(entry, B), B)

    assert entry.attempts == {B: 2}
    assert outbox.entries(tmp_path)[0].attempts == {B: 2}
    assert not [n for n in names(tmp_path) if n.startswith(".")]


def test_the_outbox_keeps_only_the_newest_max_entries_and_warns(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="borg_common.outbox"):
        for number in range(5):
            outbox.put(tmp_path, {"run_id": f"r{number}"}, [A], max_entries=3)

    assert [e.document["run_id"] for e in outbox.entries(tmp_path)] == ["r2", "r3", "r4"]
    assert len(caplog.records) == 2
    assert "limit of 3; dropped the 1 oldest" in caplog.records[0].getMessage()


def test_trim_drops_every_document_beyond_the_limit_at_once(tmp_path):
    for number in range(4):
        outbox.put(tmp_path, {"run_id": f"r{number}"}, [A])

    assert outbox.trim(tmp_path, 1) == 3
    assert [e.document["run_id"] for e in outbox.entries(tmp_path)] == ["r3"]


def test_size_counts_documents_and_ignores_temp_and_corrupt_files(tmp_path):
    outbox.put(tmp_path, {"run_id": "r1"}, [A])
    outbox.put(tmp_path, {"run_id": "r2"}, [A, B])
    (tmp_path / ".tmp-half.json").write_text("{")
    (tmp_path / "1-old.json.corrupt").write_text("{")

    assert outbox.size(tmp_path) == 2
    assert len(outbox.entries(tmp_path)) == 2
    assert os.path.exists(tmp_path / ".tmp-half.json")
