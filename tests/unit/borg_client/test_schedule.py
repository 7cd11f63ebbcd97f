"""Tests for the schedule: next fire times, the schedule's period, and catching up a missed backup at start."""

from datetime import UTC, datetime, timedelta

import pytest

from borg_client.schedule import last_success_age, needs_catch_up, next_times, period

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
