"""Tests that nothing the sidecar keeps grows without bound: a month of runs in fast time, the outbox's caps,
the kept-aside key exports."""

import json
import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from borg_client import daylog, history, journal, report, run
from borg_common import outbox

DAY = timedelta(days=1)
START = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)


def create_json(day: int) -> str:
    return json.dumps({
        "repository": {"location": "ssh://borg@srv:22/./main", "id": "ab" * 32},
        "archive": {"name": f"web-2024-05-{day:02d}", "end": "2024-05-01T03:00:05", "stats": {"nfiles": 3}},
    })  # fmt: skip


@pytest.fixture
def fast_time(monkeypatch):
    """A clock that the test moves: reports, day logs and outbox stamps all read it."""
    current = {"now": START}
    clock = SimpleNamespace(now=lambda tz=None: current["now"])
    monkeypatch.setattr(report, "now", lambda: current["now"])
    monkeypatch.setattr(daylog, "datetime", clock)
    monkeypatch.setattr(outbox, "time", SimpleNamespace(time_ns=lambda: int(current["now"].timestamp() * 1e9)))
    return current


def test_a_month_of_daily_runs_and_retries_leaves_every_kept_file_under_its_limit(
    run_config, fake_borg, lines, fast_time
):
    paths = run_config.paths
    for day in range(31):  # a receiver that never comes back: every report stays undelivered
        fast_time["now"] = START + day * DAY
        fake_borg.answer("create", 2, "", [lines.log("ERROR", "Connection closed by remote host", "ConnectionClosed")])
        fake_borg.answer("create", 0, create_json(day + 1), [lines.file("A", f"/backup/data/{n}") for n in range(50)])
        run.run_once(run_config)
        fast_time["now"] += timedelta(minutes=5)
        run.run_once(run_config, attempt=2)

    assert len(journal.last_runs(paths)) == journal.RUN_HISTORY == 50
    assert paths.runs.stat().st_size < 50 * 4096
    day_logs = sorted(path.name for path in paths.logs.iterdir())
    assert len(day_logs) == daylog.DAYS_KEPT == 30
    assert day_logs[0] == "web-2024-05-02.log"  # the first day's went
    waiting = outbox.entries(paths.outbox)
    # 62 reports stored; the first one is more than 30 days older than the last, its retry exactly 30 days
    assert len(waiting) == 61
    assert [entry.document["started_at"] for entry in waiting[:2]] == [
        "2024-05-01T03:05:00+00:00",
        "2024-05-02T03:00:00+00:00",
    ]
    assert json.loads(paths.repository_record.read_text())["archives_written"] == 31
    assert paths.repository_record.stat().st_size < 1024


def test_the_outbox_keeps_at_most_max_entries_dropping_the_oldest_with_a_warning(tmp_path, caplog):
    for number in range(5):
        outbox.put(tmp_path, {"run_id": f"r{number}"}, ["http://r/"], max_entries=3)
    assert [entry.document["run_id"] for entry in outbox.entries(tmp_path)] == ["r2", "r3", "r4"]
    assert "outbox: 4 documents exceed the limit of 3; dropped the 1 oldest" in caplog.text


def test_the_outbox_drops_documents_older_than_max_age_with_a_warning(tmp_path, monkeypatch, caplog):
    now = {"ns": 10**18}
    monkeypatch.setattr(outbox, "time", SimpleNamespace(time_ns=lambda: now["ns"]))
    outbox.put(tmp_path, {"run_id": "old"}, ["http://r/"], max_age=30 * 86400)
    now["ns"] += 31 * 86400 * 10**9
    with caplog.at_level(logging.WARNING):
        outbox.put(tmp_path, {"run_id": "new"}, ["http://r/"], max_age=30 * 86400)
    assert [entry.document["run_id"] for entry in outbox.entries(tmp_path)] == ["new"]
    assert "outbox: dropped 1 undelivered document(s) older than 30d" in caplog.text


def test_without_max_age_the_outbox_keeps_old_documents_as_the_server_monitor_does(tmp_path, monkeypatch):
    now = {"ns": 10**18}
    monkeypatch.setattr(outbox, "time", SimpleNamespace(time_ns=lambda: now["ns"]))
    outbox.put(tmp_path, {"run_id": "old"}, ["http://r/"])
    now["ns"] += 400 * 86400 * 10**9
    outbox.put(tmp_path, {"run_id": "new"}, ["http://r/"])
    assert outbox.size(tmp_path) == 2


def test_only_the_last_replaced_copies_of_a_key_export_are_kept(tmp_path, caplog):
    key = tmp_path / "web.key"
    for number in range(12):
        (tmp_path / f"web.key.replaced-2024050{number // 10}T0{number % 10}0000Z").write_text("old")
    (tmp_path / "web.key.txt.replaced-20240101T000000Z").write_text("paper")

    kept = history.aside(key)

    left = sorted(path.name for path in tmp_path.glob("web.key.replaced-*"))
    assert len(left) == history.KEPT_ASIDE - 1 == 9  # with the one moved there now: 10
    assert left[0] == "web.key.replaced-20240500T030000Z" and kept.name.startswith("web.key.replaced-")
    assert (tmp_path / "web.key.txt.replaced-20240101T000000Z").exists()  # another file's copies stay
    assert caplog.text.count("only the last 10 replaced copies of web.key are kept") == 3
