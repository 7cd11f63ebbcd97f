"""Tests for the schedule: next fire times, the period, catching up at start, and a loop that survives errors."""

import dataclasses
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest

from borg_client import quiesce, schedule, waiting
from borg_client import run as runs
from borg_client.borgcall import Control
from borg_client.drills import Drills
from borg_client.journal import last_success_age
from borg_client.schedule import needs_catch_up, next_times
from borg_common import digest, notify, outbox
from borg_common.cron import period

NOW = datetime(2024, 5, 6, 10, 17, 30, tzinfo=UTC)


def run(status: str, finished: datetime | None) -> dict:
    """Return a run as journal.record_run keeps it."""
    return {"status": status, "finished_at": finished.isoformat(timespec="seconds") if finished else None}


def test_next_times_of_an_hourly_schedule_are_the_next_two_full_hours():
    assert next_times("0 * * * *", NOW) == [
        datetime(2024, 5, 6, 11, 0, tzinfo=UTC),
        datetime(2024, 5, 6, 12, 0, tzinfo=UTC),
    ]


def test_next_times_gives_as_many_times_as_asked():
    assert next_times("0 3 * * *", NOW, 3) == [
        datetime(2024, 5, 7, 3, 0, tzinfo=UTC),
        datetime(2024, 5, 8, 3, 0, tzinfo=UTC),
        datetime(2024, 5, 9, 3, 0, tzinfo=UTC),
    ]


@pytest.mark.parametrize(
    ("expression", "length"),
    [
        ("0 * * * *", timedelta(hours=1)),
        ("*/5 * * * *", timedelta(minutes=5)),
        ("0 3 * * *", timedelta(days=1)),
        ("30 2 * * 0", timedelta(weeks=1)),
    ],
)
def test_period_is_the_time_between_the_next_two_fire_times(expression, length):
    assert period(expression, NOW) == length


def test_last_success_age_is_none_when_no_run_was_recorded():
    assert last_success_age([], NOW) is None


def test_last_success_age_is_none_when_every_run_failed_or_was_skipped():
    runs = [run("failure", NOW - timedelta(hours=2)), run("skipped", NOW - timedelta(hours=1))]

    assert last_success_age(runs, NOW) is None


def test_last_success_age_ignores_later_failures_and_skipped_runs():
    runs = [
        run("success", NOW - timedelta(hours=30)),
        run("success", NOW - timedelta(hours=5)),
        run("failure", NOW - timedelta(hours=2)),
        run("skipped", NOW - timedelta(hours=1)),
    ]

    assert last_success_age(runs, NOW) == timedelta(hours=5)


def test_last_success_age_counts_a_run_with_warnings_as_a_success():
    runs = [run("success", NOW - timedelta(hours=5)), run("warning", NOW - timedelta(minutes=90))]

    assert last_success_age(runs, NOW) == timedelta(minutes=90)


def test_last_success_age_ignores_a_success_without_finish_time():
    runs = [run("success", NOW - timedelta(hours=5)), run("success", None)]

    assert last_success_age(runs, NOW) == timedelta(hours=5)


def test_needs_catch_up_when_there_never_was_a_success():
    assert needs_catch_up([run("failure", NOW - timedelta(minutes=1))], "0 * * * *", NOW) is True


def test_needs_catch_up_when_the_last_success_is_older_than_one_period():
    runs = [run("success", NOW - timedelta(hours=1, seconds=1))]

    assert needs_catch_up(runs, "0 * * * *", NOW) is True


def test_no_catch_up_when_the_last_success_is_exactly_one_period_old():
    assert needs_catch_up([run("success", NOW - timedelta(hours=1))], "0 * * * *", NOW) is False


def test_no_catch_up_when_a_success_is_within_one_period_even_after_failures():
    runs = [run("success", NOW - timedelta(hours=20)), run("failure", NOW - timedelta(hours=1))]

    assert needs_catch_up(runs, "0 3 * * *", NOW) is False


@pytest.fixture
def overdue(config, monkeypatch):
    """An hourly schedule whose next time is already two hours past: every run misses the next time.

    The loop never waits; no Docker (recover raises as a broken socket would); no restore drills (VERIFY_CRON off).
    """
    real_next_times = schedule.next_times

    def next_times_overdue(expression, after, count=2):
        if count == 1:
            return [after - timedelta(hours=2)]
        return real_next_times(expression, after, count)

    def broken_socket(journal):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(schedule, "next_times", next_times_overdue)
    monkeypatch.setattr(quiesce, "recover", broken_socket)
    monkeypatch.setattr(waiting, "reachable_server", lambda config, stop, marker: True)  # the server answers
    monkeypatch.setattr(waiting, "databases_ready", lambda config, stop: True)  # no Docker
    return dataclasses.replace(config, cron="0 * * * *", drills=Drills(cron=None))


def test_the_loop_goes_on_after_runs_and_skipped_reports_fail_unexpectedly(overdue, monkeypatch, caplog):
    stop, calls = threading.Event(), []

    def run_once(config, control, attempt=1):
        calls.append("run")
        if len(calls) >= 4:
            stop.set()
            return
        raise RuntimeError(f"bug {len(calls)}")

    def report_skipped(config, message):
        calls.append("skipped")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runs, "run_once", run_once)
    monkeypatch.setattr(runs, "report_skipped", report_skipped)

    with caplog.at_level(logging.INFO):
        schedule.loop(overdue, stop, Control())

    assert calls == ["run", "run", "skipped", "run"]  # catch-up, scheduled (then the missed one), scheduled
    failures = [(record.getMessage(), str(record.exc_info[1])) for record in caplog.records if record.exc_info]
    assert failures == [
        (
            "starting containers a crashed run left stopped failed unexpectedly; the scheduler goes on",
            "[Errno 111] Connection refused",
        ),
        ("the backup failed unexpectedly; the scheduler goes on", "bug 1"),
        ("the backup failed unexpectedly; the scheduler goes on", "bug 2"),
        (
            "the report of a skipped run failed unexpectedly; the scheduler goes on",
            "[Errno 28] No space left on device",
        ),
    ]
    assert caplog.messages[-1] == "scheduler stopped"


def test_the_loop_does_not_swallow_a_keyboard_interrupt(overdue, monkeypatch):
    def interrupted(config, control, attempt=1):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "run_once", interrupted)

    with pytest.raises(KeyboardInterrupt):
        schedule.loop(overdue, threading.Event(), Control())


def test_prunes_on_prune_cron_run_in_the_loop_between_backups_never_beside_one(config, monkeypatch):
    """PRUNE_CRON every 30 minutes, the next backup in 2 hours: three prunes, then the backup, one at a time."""
    start, stop, events = datetime(2024, 5, 6, 1, 0, tzinfo=UTC), threading.Event(), []
    pruning = dataclasses.replace(config, retention=dataclasses.replace(config.retention, cron="*/30 * * * *"))

    def next_times_fake(expression, after, count=2):
        if expression == "*/30 * * * *":
            return [start + timedelta(minutes=30 * (events.count("prune") + 1))]
        if count == 1:
            return [start + timedelta(hours=2)]
        return [after + timedelta(days=1), after + timedelta(days=2)]

    def backup(config, stop_event, control):
        events.append("backup")
        stop.set()

    monkeypatch.setattr(schedule, "next_times", next_times_fake)
    monkeypatch.setattr(schedule, "wait_until", lambda config, due, stop_event, what: events.append(due) or True)
    monkeypatch.setattr(schedule, "run_with_retries", backup)
    monkeypatch.setattr(schedule.prune, "prune_once", lambda config, control: events.append("prune"))
    monkeypatch.setattr(schedule, "needs_catch_up", lambda runs, expression, current: False)
    monkeypatch.setattr(quiesce, "recover", lambda journal: None)
    monkeypatch.setattr(waiting, "reachable_server", lambda config, stop, marker: True)

    schedule.loop(pruning, stop, Control())

    minutes = [(event - start) // timedelta(minutes=1) if isinstance(event, datetime) else event for event in events]
    assert minutes == [30, "prune", 60, "prune", 90, "prune", 120, "backup"]


def test_a_prune_due_at_the_minute_of_a_backup_runs_right_after_that_backup(config, monkeypatch):
    """PRUNE_CRON and BACKUP_CRON both at 03:00: the backup, then the prune; not the prune of the next day."""
    start, stop, events = datetime(2024, 5, 6, 1, 0, tzinfo=UTC), threading.Event(), []
    both = dataclasses.replace(config, cron="0 3 * * *", jitter=0,
                               retention=dataclasses.replace(config.retention, cron="0 3 * * *"))  # fmt: skip
    three = start + timedelta(hours=2)

    def next_times_fake(expression, after, count=2):
        return [three + timedelta(days=events.count("backup"))] if count == 1 else [after + timedelta(days=1)] * 2

    def pruned(config, control):
        events.append("prune")
        stop.set()

    monkeypatch.setattr(schedule, "next_times", next_times_fake)
    monkeypatch.setattr(schedule, "wait_until", lambda config, due, stop_event, what: events.append(due) or True)
    monkeypatch.setattr(schedule, "run_with_retries", lambda config, stop_event, control: events.append("backup"))
    monkeypatch.setattr(schedule.prune, "prune_once", pruned)
    monkeypatch.setattr(schedule, "needs_catch_up", lambda runs, expression, current: False)
    monkeypatch.setattr(quiesce, "recover", lambda journal: None)
    monkeypatch.setattr(waiting, "reachable_server", lambda config, stop, marker: True)
    monkeypatch.setattr(schedule.verify, "begin", lambda paths, current: None)

    schedule.loop(both, stop, Control())

    assert events == [three, "backup", three, "prune"]


def loop_events(config, monkeypatch, drill_times, waited, successes):
    """Run the scheduler's loop with backups at 03:00 every day (an hour away), drills at drill_times (one after the
    other), waits that return what waited(due, what) says (None: stop), and a journal with successes good backups;
    return what happened in order."""
    now = datetime.now().astimezone()
    stop, events, drills = threading.Event(), [], list(drill_times)

    def next_times_fake(expression, after, count=2):
        if expression == "drill":
            return [drills.pop(0) if drills else now + timedelta(days=7)]
        return [now + timedelta(hours=1)] * count

    def wait(config, due, stop_event, what, instead=None):
        events.append(("wait", what, due))
        outcome = waited(due, what)
        if outcome is None:
            stop.set()
            return False
        return outcome

    drilling = dataclasses.replace(config, jitter=0, drills=dataclasses.replace(config.drills, cron="drill"))
    monkeypatch.setattr(schedule, "next_times", next_times_fake)
    monkeypatch.setattr(schedule, "wait_until", wait)
    monkeypatch.setattr(schedule, "run_with_retries", lambda config, stop_event, control: events.append("backup"))
    monkeypatch.setattr(schedule, "drill_with_retries", lambda config, stop_event, control: events.append("drill"))
    monkeypatch.setattr(schedule, "needs_catch_up", lambda runs, expression, current: False)
    monkeypatch.setattr(schedule.journal, "last_success_age", lambda runs, current: timedelta(1) if successes else None)
    monkeypatch.setattr(schedule.verify, "begin", lambda paths, current: None)
    monkeypatch.setattr(quiesce, "recover", lambda journal: None)
    monkeypatch.setattr(waiting, "reachable_server", lambda config, stop, marker: True)
    schedule.loop(drilling, stop, Control())
    return events


def test_sigusr1_while_a_drill_is_awaited_backs_up_now_and_the_drill_keeps_its_time(config, monkeypatch):
    drill = datetime.now().astimezone() + timedelta(minutes=30)  # before the backup: the loop waits for it
    answers = iter([True, None])  # SIGUSR1 ends the first wait, early; the second wait is stopped

    events = loop_events(config, monkeypatch, [drill], lambda due, what: next(answers), successes=1)

    assert events == [("wait", "the restore drill", drill), "backup", ("wait", "the restore drill", drill)]


def test_a_drill_is_skipped_while_no_backup_has_succeeded(config, monkeypatch, caplog):
    past = datetime.now().astimezone() - timedelta(minutes=1)
    with caplog.at_level(logging.INFO):
        events = loop_events(config, monkeypatch, [past], lambda due, what: True if due == past else None, successes=0)

    assert "drill" not in events and events[0] == ("wait", "the restore drill", past)
    assert "restore drill skipped: no backup has succeeded yet, so there is nothing to drill" in caplog.messages


def test_sigusr1_ends_the_wait_for_a_backup_a_day_away_at_once(config, caplog):
    due = datetime.now().astimezone() + timedelta(days=1)
    timer = threading.Timer(0.1, schedule.woken.set)  # what the SIGUSR1 handler does
    timer.start()
    with caplog.at_level(logging.INFO):
        assert schedule.wait_until(config, due, threading.Event(), "the backup") is True
    assert schedule.woken.wait(0) is False  # consumed: the next wait waits again
    assert caplog.messages == [f"SIGUSR1: the backup now instead of at {due.isoformat(timespec='seconds')}"]


def test_a_stop_ends_the_wait_with_false_even_when_woken_too(config):
    stop = threading.Event()
    stop.set()
    schedule.woken.set()  # what SIGTERM's handler does: both
    try:
        assert schedule.wait_until(config, datetime.now().astimezone() + timedelta(days=1), stop) is False
    finally:
        schedule.woken.clear()


def test_only_the_first_run_at_start_waits_for_the_databases(config, monkeypatch):
    stop, events = threading.Event(), []

    def backup(config, stop_event, control):
        events.append("backup")
        if events.count("backup") == 2:
            stop.set()

    monkeypatch.setattr(schedule, "wait_until", lambda config, due, stop_event, what: events.append("wait") or True)
    monkeypatch.setattr(schedule, "run_with_retries", backup)
    monkeypatch.setattr(schedule, "needs_catch_up", lambda runs, expression, current: True)
    monkeypatch.setattr(quiesce, "recover", lambda journal: None)
    monkeypatch.setattr(waiting, "reachable_server", lambda config, stop, marker: True)
    monkeypatch.setattr(waiting, "databases_ready", lambda config, stop_event: events.append("databases") or True)
    no_drills = dataclasses.replace(config, drills=Drills(cron=None))  # else the default drill may come first, by date

    schedule.loop(no_drills, stop, Control())

    assert events == ["databases", "backup", "wait", "backup"]


def test_a_stop_while_waiting_for_the_databases_runs_no_backup(config, monkeypatch):
    stop, events = threading.Event(), []
    monkeypatch.setattr(schedule, "run_with_retries", lambda config, stop_event, control: events.append("backup"))
    monkeypatch.setattr(schedule, "needs_catch_up", lambda runs, expression, current: True)
    monkeypatch.setattr(quiesce, "recover", lambda journal: None)
    monkeypatch.setattr(waiting, "reachable_server", lambda config, stop, marker: True)
    monkeypatch.setattr(waiting, "databases_ready", lambda config, stop_event: stop.set() or False)

    schedule.loop(config, stop, Control())

    assert events == []


def test_the_schedulers_wait_sends_the_digest_that_is_due_and_the_prune_services_does_not(config, monkeypatch):
    monkeypatch.setattr(notify, "flush", lambda *arguments, **options: None)
    notifying = dataclasses.replace(config, notify=notify.Notify(urls=("json://receiver/n",)), digest_cron="* * * * *")
    a_minute_ago = datetime.now().astimezone() - timedelta(minutes=2)
    past = datetime.now().astimezone() - timedelta(seconds=1)

    digest.record(notifying.paths.digest_record, a_minute_ago)
    assert schedule.wait_until(notifying, past, threading.Event(), "the prune", digests=False) is True
    assert outbox.entries(notifying.paths.notify_outbox) == []
    assert schedule.wait_until(notifying, past, threading.Event(), "the backup") is True
    [entry] = outbox.entries(notifying.paths.notify_outbox)
    assert entry.document["kind"] == "digest" and entry.document["title"].startswith("digest of web on ")
