"""Tests for borg_common.cron: the period of a schedule around a given time."""

from datetime import UTC, datetime, timedelta

import pytest

from borg_common.cron import period_around

MINUTE = datetime(2026, 12, 5, 15, 52, tzinfo=UTC)  # a Saturday; */2 fires at :52


@pytest.mark.parametrize("seconds", [0, 0.5, 30, 59.9, 60, 90, 119.9])
def test_the_period_of_every_two_minutes_is_two_minutes_at_any_second_also_in_a_fire_minute(seconds):
    assert period_around("*/2 * * * *", MINUTE + timedelta(seconds=seconds)) == timedelta(minutes=2)


def test_a_daily_schedule_has_a_one_day_period_also_in_its_own_minute():
    assert period_around("0 3 * * *", datetime(2026, 12, 5, 3, 0, 30, tzinfo=UTC)) == timedelta(days=1)


def test_a_weekday_schedule_spans_the_weekend_on_a_sunday_and_one_day_on_a_tuesday():
    assert period_around("0 3 * * 1-5", datetime(2026, 12, 6, 3, 0, 30, tzinfo=UTC)) == timedelta(days=3)
    assert period_around("0 3 * * 1-5", datetime(2026, 12, 8, 12, tzinfo=UTC)) == timedelta(days=1)
