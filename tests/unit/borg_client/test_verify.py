"""Tests for restore drills: VERIFY_* settings, the spot check's sample and comparison, the drill's report and record,
its health meaning, its notification and when the scheduler runs it."""

from __future__ import annotations

import dataclasses
import json
import os
import random
from datetime import UTC, datetime, timedelta

import pytest

from borg_client import drills, notices, schedule, spot_check, verify
from borg_client.borgcall import BorgCall, Control
from borg_client.config import load
from borg_client.drills import Drills, Sample, parse_sample
from borg_client.spot_check import Entry, Tally
from borg_common.settings import ConfigError

MTIME = "2026-11-29T03:00:00.123457"


@pytest.mark.parametrize(
    ("text", "sample"),
    [("200", Sample(count=200)), ("1", Sample(count=1)), ("100000", Sample(count=100000)),
     ("5%", Sample(count=None, share=5.0)), ("0.5%", Sample(count=None, share=0.5)),
     ("100%", Sample(count=None, share=100.0))],
)  # fmt: skip
def test_a_sample_is_a_count_or_a_share(text, sample):
    assert parse_sample(text) == sample


@pytest.mark.parametrize("text", ["0", "100001", "0%", "150%", "100.5%", "-1", "5 %", "%", "５", "5.%", "1e3", ""])
def test_an_absurd_sample_is_none(text):
    assert parse_sample(text) is None


def test_a_share_draws_at_least_one_file_rounding_up_and_a_count_no_more_than_there_are():
    assert Sample(count=None, share=5).size(1000) == 50
    assert Sample(count=None, share=5).size(10) == 1
    assert Sample(count=None, share=100).size(7) == 7
    assert Sample(count=200).size(50) == 50
    assert Sample(count=None, share=5).size(0) == 0


def test_the_drill_settings_default_to_weekly_200_files_and_a_data_check_every_4th(config):
    assert config.drills == Drills("30 4 * * 0", Sample(count=200), 4)


def test_verify_cron_off_turns_scheduled_drills_off(pairing, passphrase_file):
    loaded = load({"BORG_PASSPHRASE_FILE": str(passphrase_file), "VERIFY_CRON": "off"}, pairing=pairing)
    assert loaded.drills.cron is None


def test_absurd_drill_settings_are_refused_at_start_each_naming_its_setting(pairing, passphrase_file):
    environ = {"BORG_PASSPHRASE_FILE": str(passphrase_file), "VERIFY_SAMPLE": "150%", "VERIFY_DATA_EVERY": "1001",
               "VERIFY_CRON": "weekly"}  # fmt: skip
    with pytest.raises(ConfigError) as refused:
        load(environ, pairing=pairing)
    problems = refused.value.problems
    assert "VERIFY_SAMPLE: '150%' is not a number of files (1..100000) or a share of them (e.g. 5%, at most 100%)" in (
        problems
    )
    assert "VERIFY_DATA_EVERY: 1001 is out of range 0..1000" in problems
    assert any(problem.startswith("VERIFY_CRON: 'weekly' is not a cron expression") for problem in problems)


def listing(*items: dict) -> str:
    return "\n".join(json.dumps(item) for item in items)


def test_the_spot_check_draws_from_regular_files_under_backup_only():
    found = spot_check.entries(listing(
        {"type": "d", "path": "backup/data", "size": 0, "mtime": MTIME},
        {"type": "-", "path": "backup/data/a.txt", "size": 3, "mtime": MTIME},
        {"type": "l", "path": "backup/data/link", "size": 0, "mtime": MTIME},
        {"type": "-", "path": "dumps/db/shop.sql", "size": 9, "mtime": MTIME},
        {"type": "-", "path": "backup/data/odd ", "size": 1, "mtime": MTIME},
    ))  # fmt: skip
    assert found == [Entry("backup/data/a.txt", 3, spot_check.archived_mtime(MTIME))]


def test_an_archived_mtime_is_the_local_time_borg_lists_in_microseconds():
    local = datetime(2026, 11, 29, 3, 0, 0, 123457).astimezone()
    assert spot_check.archived_mtime(MTIME) == round(local.timestamp() * 1_000_000)


def test_the_sample_is_random_and_comes_in_path_order():
    files = [Entry(f"backup/data/{n:03}", 1, 0) for n in range(100)]
    chosen = spot_check.choose(files, Sample(count=10), random.Random(1))
    assert len(chosen) == 10 and chosen == sorted(chosen, key=lambda entry: entry.path)
    assert chosen != files[:10]
    assert spot_check.choose(files, Sample(count=None, share=100), random.Random(1)) == files


def live_file(directory, name: str, content: bytes) -> Entry:
    path = directory / "backup" / "data" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.utime(path, ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    return Entry(f"backup/data/{name}", len(content), 1_700_000_000_123_457)  # as borg lists it: rounded


def test_a_live_file_is_unchanged_when_size_and_mtime_are_the_archived_ones(tmp_path):
    entry = live_file(tmp_path, "a.txt", b"abc")
    assert spot_check.unchanged(entry, tmp_path / entry.path)
    assert not spot_check.unchanged(dataclasses.replace(entry, size=4), tmp_path / entry.path)
    assert not spot_check.unchanged(dataclasses.replace(entry, mtime_us=entry.mtime_us + 5), tmp_path / entry.path)
    assert not spot_check.unchanged(entry, tmp_path / "backup/data/gone")


def test_the_first_difference_is_the_offset_of_the_first_differing_byte_or_where_one_ends(tmp_path):
    one, other = tmp_path / "one", tmp_path / "other"
    one.write_bytes(b"abcdefghij")
    other.write_bytes(b"abcdefghij")
    assert spot_check.first_difference(one, other) is None
    other.write_bytes(b"abcXefghij")
    assert spot_check.first_difference(one, other) == 3
    other.write_bytes(b"abcdefgh")
    assert spot_check.first_difference(one, other) == 8


def test_batches_fit_the_scratch_space_and_a_larger_file_comes_alone():
    files = [Entry("backup/a", 40, 0), Entry("backup/b", 50, 0), Entry("backup/c", 30, 0), Entry("backup/d", 500, 0)]
    assert [[entry.path for entry in group] for group in spot_check.batches(files, 100)] == [
        ["backup/a", "backup/b"], ["backup/c"], ["backup/d"]
    ]  # fmt: skip


def test_the_patterns_file_extracts_exactly_the_chosen_files():
    chosen = [Entry("backup/data/a b.txt", 1, 0), Entry("backup/data/[x]", 1, 0)]
    assert spot_check.patterns(chosen) == "+ pp:backup/data/a b.txt\n+ pp:backup/data/[x]\n- fm:*\n"


def extracting(archived: dict[str, bytes]):
    """A call_borg whose list answers with archived's files and whose extract writes them into its cwd."""

    def call_borg(config, argv, capture_json=False, cwd=None, control=None, log=None):
        if argv[4] == "list":
            items = [{"type": "-", "path": p, "size": len(b), "mtime": "2023-11-14T22:13:20.123457"} for p, b in
                     archived.items()]  # fmt: skip
            text = listing(*items).replace("2023-11-14T22:13:20.123457", local_mtime())
            return BorgCall(0, text, ())
        wanted = [line[5:] for line in open(argv[argv.index("--patterns-from") + 1]).read().splitlines()[:-1]]
        for path in wanted:
            (cwd / path).parent.mkdir(parents=True, exist_ok=True)
            (cwd / path).write_bytes(archived[path])
        return BorgCall(0, "", ())

    return call_borg


def local_mtime() -> str:
    return datetime.fromtimestamp(1_700_000_000.123457).strftime("%Y-%m-%dT%H:%M:%S.%f")


def test_the_spot_check_compares_unchanged_files_skips_changed_ones_and_names_a_silently_different_one(
    config, monkeypatch, tmp_path
):
    live_file(tmp_path, "same.txt", b"same")
    live_file(tmp_path, "rotten.txt", b"abcXef")
    live_file(tmp_path, "grown.txt", b"grown by a write since")
    archived = {"backup/data/same.txt": b"same", "backup/data/rotten.txt": b"abcdef", "backup/data/grown.txt": b"x",
                "backup/data/gone.txt": b"deleted since"}  # fmt: skip
    monkeypatch.setattr(spot_check, "call_borg", extracting(archived))
    scratch = tmp_path / "drill"
    scratch.mkdir()

    tally = spot_check.check(config, "web-1", Sample(count=None, share=100), scratch, Control())

    assert tally == Tally(
        drawn=4, compared=2, bytes=10, skipped=2,
        differing=["/backup/data/rotten.txt differs from the archive from byte 3 on although its size and mtime are "
                   "unchanged (silent corruption of the live file or of the backup)"],
    )  # fmt: skip
    assert list(scratch.iterdir()) == []  # the batch's files and patterns are gone


def test_a_drill_that_finds_a_differing_file_and_damaged_data_fails_naming_both(run_config, fake_borg, monkeypatch):
    fake_borg.answer("list", stdout=json.dumps({"archives": [{"name": "web-2024-05-06T03:00:00"}]}))
    fake_borg.answer("check")  # the metadata: fine
    fake_borg.answer("check", 1, lines=["ERROR: chunk 1a2b, integrity error: MAC Authentication failed"])
    differing = "/backup/data/b.txt differs from the archive from byte 3 on although …"
    tally = Tally(drawn=3, compared=2, bytes=20, skipped=1, differing=[differing])
    monkeypatch.setattr(spot_check, "check", lambda *args: tally)
    config = dataclasses.replace(run_config, drills=Drills(sample=Sample(count=None, share=100), data_every=1))

    finished = verify.verify_once(config)

    assert finished.status == "failure" and not finished.retryable
    assert finished.message == (
        "restore drill of web-2024-05-06T03:00:00 failed: the spot check found 1 file(s) that differ: "
        f"{differing}; the data check found damage in the repository (chunk 1a2b, integrity error: MAC "
        "Authentication failed)"
    )
    checks = [argv for argv in fake_borg.commands if argv[4] == "check"]
    assert checks == [
        ["borg", "--log-json", "--lock-wait", "600", "check", "--archives-only", "--glob-archives", "web-*", "--last",
         "1"],
        ["borg", "--log-json", "--lock-wait", "600", "check", "--archives-only", "--glob-archives", "web-*", "--last",
         "1", "--verify-data"],
    ]  # fmt: skip
    record = verify.recorded(config.paths)
    assert record["drills_since_data"] == 0
    assert record["last_verified"]["checked"] == ["metadata", "spot check", "data"]
    assert (record["last_verified"]["files_compared"], record["last_verified"]["files_skipped"]) == (2, 1)
    assert finished.to_dict()["kind"] == "verify"


def test_a_drill_that_cannot_reach_the_server_stopped_and_may_be_retried(run_config, fake_borg, lines):
    refused = lines.log("ERROR", "Connection closed by remote host", "ConnectionClosed")
    fake_borg.answer("list", 2, lines=[refused])

    finished = verify.verify_once(run_config)

    assert finished.status == "failure" and finished.retryable
    assert finished.message.startswith("restore drill stopped: borg list of the newest archive failed (exit 2)")
    assert "last_verified" not in verify.recorded(run_config.paths)  # a drill that did not run proves nothing


def test_a_drill_empties_what_a_killed_drill_left(run_config, fake_borg):
    left = run_config.paths.drill_scratch / "files" / "left"
    left.parent.mkdir(parents=True)
    left.write_text("old")
    verify.verify_once(run_config)  # no archive: the drill stops at once
    assert not run_config.paths.drill_scratch.exists()


@pytest.mark.parametrize(
    ("since_data", "every", "due"), [(None, 4, True), (2, 4, False), (3, 4, True), (0, 1, True), (9, 0, False)]
)
def test_the_data_check_comes_with_the_first_drill_then_every_nth(since_data, every, due):
    record = {} if since_data is None else {"drills_since_data": since_data}
    assert verify.data_due(record, every) is due


NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_health_is_bad_after_a_failed_drill_or_none_within_two_periods(config):
    verify.begin(config.paths, NOW - timedelta(days=10))
    assert verify.health(config, NOW) is None  # weekly: 14 days allowed
    assert verify.health(config, NOW + timedelta(days=5)) == (
        "no restore drill within 14 days, 0:00:00 (expected since 2026-11-26T12:00:00+00:00, none ran); "
        "run borg-client verify, see docs/how-to/restore-drills.md"
    )
    record = verify.recorded(config.paths) | {"last_verified": {"status": "failure", "message": "it broke",
                                                                "at": NOW.isoformat()}}  # fmt: skip
    config.paths.verify_record.write_text(json.dumps(record))
    assert verify.health(config, NOW) == "the last restore drill failed: it broke"
    assert verify.health(dataclasses.replace(config, drills=Drills(cron=None)), NOW) is None


def test_a_drill_due_before_the_next_backup_or_with_the_one_that_just_ran_comes_first():
    backup = NOW + timedelta(hours=1)
    assert schedule.drill_first(NOW, backup, None)
    assert not schedule.drill_first(backup, backup, None)  # the backup goes first
    assert schedule.drill_first(backup, backup + timedelta(days=1), backup)  # … and the drill right after it
    assert not schedule.drill_first(None, backup, NOW)
    assert not schedule.drill_first(backup + timedelta(days=2), backup + timedelta(days=1), backup)


def test_a_failed_drill_says_what_where_which_file_and_what_to_do_next():
    report = {
        "run_id": "run-9", "client": "web", "kind": "verify", "status": "failure", "archive": "web-1",
        "started_at": "2026-12-06T04:30:00+00:00", "duration_s": 12.0,
        "message": "restore drill of web-1 failed: the spot check found 1 file(s) that differ: /backup/data/b.txt "
                   "differs from the archive from byte 3 on",
        "verified": {"checked": ["metadata", "spot check"], "files_compared": 3, "files_skipped": 1,
                     "bytes_compared": 2048},
    }  # fmt: skip

    found = notices.message(report, last_good_age=3600, host="app-host")

    assert (found.event, found.title) == ("failure", "restore drill of web failed on app-host")
    assert found.body.splitlines()[:3] == [
        "Restore drill of web-1 failed: the spot check found 1 file(s) that differ: /backup/data/b.txt differs "
        "from the archive from byte 3 on.",
        "Checked: metadata, spot check; 3 file(s) compared byte for byte (2.0 kB), 1 skipped (changed since the "
        "backup).",
        "Started 2026-12-06 04:30:00 UTC, took 12s.",
    ]
    assert found.body.splitlines()[3].startswith("Next: a file that differs: restore it from an older archive too")


def test_the_drill_settings_module_is_read_by_the_configuration():
    assert drills.DEFAULT_CRON == Drills().cron
