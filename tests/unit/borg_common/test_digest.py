"""The digest's schedule and keeping (borg_common.digest): DIGEST_CRON, when one is due, once per cron time across a
restart, one after downtime, and a body that fits what a service shows without leaving a problem out."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from borg_common import digest, notify, outbox
from borg_common.digest import Digest
from borg_common.settings import Settings

MONDAY = datetime(2026, 12, 7, 8, 0, 20, tzinfo=UTC)  # 20 s after the default's time
NOTIFY = notify.Notify(urls=("json://receiver/n",))


def read(environ: dict[str, str]) -> tuple[str | None, list[str]]:
    settings = Settings(environ)
    return digest.read(settings), settings.problems


def test_digest_cron_defaults_to_monday_morning_and_off_turns_it_off():
    assert read({}) == ("0 8 * * 1", [])
    assert read({"DIGEST_CRON": "off"}) == (None, [])
    assert read({"DIGEST_CRON": " 30 7 * * * "}) == ("30 7 * * *", [])


def test_a_digest_cron_that_is_no_cron_expression_names_the_setting():
    [problem] = read({"DIGEST_CRON": "weekly"})[1]
    assert problem.startswith("DIGEST_CRON: 'weekly' is not a cron expression: ")


def test_a_digest_is_called_after_its_schedule():
    assert [digest.called(e) for e in ("0 8 * * 1", "0 8 * * *", "0 8 1 * *", "*/5 * * * *", None)] == [
        "weekly digest", "daily digest", "monthly digest", "digest", "digest"]  # fmt: skip


def test_only_the_latest_cron_time_is_due_so_downtime_sends_one_digest_not_a_backlog():
    three_weeks_ago = "2026-11-16T08:00:00+00:00"

    assert digest.due("0 8 * * 1", MONDAY, three_weeks_ago) == datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    assert digest.due("0 8 * * 1", MONDAY, "2026-12-07T08:00:00+00:00") is None
    assert digest.due("0 8 * * 1", MONDAY, None) is None  # a new state volume: the count starts now
    assert digest.due(None, MONDAY, three_weeks_ago) is None


def test_the_key_of_a_scheduled_digest_is_its_cron_time_so_a_restart_makes_the_same_one():
    when = digest.due("0 8 * * 1", MONDAY, "2026-11-30T08:00:00+00:00")

    assert digest.key("backup-host", when) == "digest-backup-host-2026-12-07T08:00+00:00"


def made() -> Digest:
    return Digest("weekly digest: 1 client, all backed up, no alerts on h", [], ["web: last backup 1h ago"],
                  "1 client backed up within their limits, no alerts: web")  # fmt: skip


@pytest.fixture
def flushed(monkeypatch) -> list:
    calls = []
    monkeypatch.setattr(notify, "flush", lambda *arguments, **options: calls.append(arguments))
    return calls


def test_a_restart_does_not_send_the_same_scheduled_digest_again(tmp_path, flushed):
    record, box = tmp_path / "digest.json", tmp_path / "notify-outbox"
    digest.record(record, datetime(2026, 11, 30, 8, 0, tzinfo=UTC))

    def send(now):
        return digest.send_if_due(record, "0 8 * * 1", now, "h", made, box, NOTIFY, 1)

    assert send(MONDAY) == datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    assert send(MONDAY) is None  # the monitor restarted within the same minute, or scanned again
    assert send(datetime(2026, 12, 8, 9, 0, tzinfo=UTC)) is None

    [entry] = outbox.entries(box)
    assert entry.document["id"] == "digest-h-2026-12-07T08:00+00:00"
    assert entry.document["kind"] == "digest"
    assert json.loads(record.read_text()) == {"last": "2026-12-07T08:00:00+00:00"}


def test_a_new_state_volume_starts_the_count_and_sends_nothing_at_its_first_start(tmp_path, flushed):
    record, box = tmp_path / "digest.json", tmp_path / "notify-outbox"

    assert digest.send_if_due(record, "0 8 * * 1", MONDAY, "h", made, box, NOTIFY, 1) is None

    assert outbox.entries(box) == []
    assert json.loads(record.read_text()) == {"last": "2026-12-07T08:00:00+00:00"}


def test_notify_on_without_digest_sends_none_but_counts_the_time(tmp_path, flushed):
    record, box = tmp_path / "digest.json", tmp_path / "notify-outbox"
    digest.record(record, datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    quiet = notify.Notify(urls=NOTIFY.urls, on=frozenset({"failure"}))

    assert digest.send_if_due(record, "0 8 * * 1", MONDAY, "h", made, box, quiet, 1) is not None
    assert outbox.entries(box) == []


def test_the_digest_command_prints_it_and_without_notify_urls_says_where_it_did_not_go(tmp_path, capsys, flushed):
    assert digest.send_now(made(), "h", tmp_path / "box", notify.Notify(), 1) == 1

    out, err = capsys.readouterr()
    assert out == ("weekly digest: 1 client, all backed up, no alerts on h\n\nweb: last backup 1h ago\n")
    assert err == (
        "digest: NOTIFY_URLS is not set, so this digest went nowhere; set it as docs/how-to/notifications.md says\n"
    )


def test_the_digest_command_sends_whatever_notify_on_says(tmp_path, capsys, flushed):
    quiet = notify.Notify(urls=NOTIFY.urls, on=frozenset({"failure"}))

    assert digest.send_now(made(), "h", tmp_path / "box", quiet, 1) == 0

    [entry] = outbox.entries(tmp_path / "box")
    assert entry.document["title"] == "weekly digest: 1 client, all backed up, no alerts on h"
    assert capsys.readouterr().err == "digest: sent to 1 URL(s) of NOTIFY_URLS\n"


def test_healthy_blocks_become_one_line_when_they_do_not_fit_and_problems_stay_whole():
    problem = "db: STALE, last backup 3d ago\nSize 1.0 MB"
    healthy = [f"client{n}: last backup 1h ago\nSize 1.0 MB" for n in range(40)]
    many = Digest("t", [problem], healthy, "40 clients backed up within their limits, no alerts: …", ["Closing."])

    assert many.body(10_000).count("\n\n") == 41  # 1 problem, 40 healthy, the closing
    assert many.body(200) == f"{problem}\n\n40 clients backed up within their limits, no alerts: …\n\nClosing."


def test_when_even_the_problems_do_not_fit_each_keeps_its_first_line():
    problems = [f"c{n}: STALE, last backup 3d ago\n" + "x" * 100 for n in range(3)]

    assert Digest("t", problems, [], "none").body(120) == (
        "c0: STALE, last backup 3d ago\n\nc1: STALE, last backup 3d ago\n\nc2: STALE, last backup 3d ago"
    )


def test_a_loop_sleeps_until_the_digests_time_at_most():
    assert digest.seconds_until("0 8 * * 1", datetime(2026, 12, 7, 7, 59, 20, tzinfo=UTC)) == 40
    assert digest.seconds_until(None, MONDAY) == float("inf")
