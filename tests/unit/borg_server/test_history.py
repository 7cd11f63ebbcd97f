"""The size history behind the status page's trend: one sample per slot, 30 days, configured clients only."""

from __future__ import annotations

import json

from borg_server.status.history import KEEP, SLOT, add, load, record

DAY = 86400


def test_a_newer_sample_of_the_same_slot_replaces_the_older_so_the_last_one_is_current():
    start = 100 * SLOT

    history = add(add({}, {"web": 1000}, start), {"web": 1500}, start + SLOT - 1)

    assert history == {"web": [(start + SLOT - 1, 1500)]}


def test_samples_older_than_thirty_days_and_clients_no_longer_configured_are_dropped():
    now = 1_000 * DAY
    history = {"web": [(now - KEEP - 1, 10), (now - 29 * DAY, 20)], "gone": [(now - DAY, 5)]}

    assert add(history, {"web": 30, "db": 7}, now) == {"web": [(now - 29 * DAY, 20), (now, 30)], "db": [(now, 7)]}


def test_a_month_of_scans_every_ten_minutes_keeps_one_sample_per_slot():
    now = 1_000 * DAY
    history = {}
    for minute in range(0, 45 * 24 * 60, 10):
        history = add(history, {"web": minute}, now + minute * 60)

    assert len(history["web"]) == KEEP // SLOT + 1


def test_record_writes_what_load_reads_and_a_damaged_file_is_no_history(tmp_path):
    path = tmp_path / "sizes.json"

    record(path, {"web": 1234}, 1_000_000.4)

    assert json.loads(path.read_text()) == {"web": [[1000000, 1234]]}
    assert load(path) == {"web": [(1_000_000.0, 1234)]}
    path.write_text("{not json")
    assert load(path) == {}
    assert load(tmp_path / "missing.json") == {}
