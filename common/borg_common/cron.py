"""Cron schedules (five fields, cronsim): checking a setting, the next times it fires, its period (around a time)."""

from __future__ import annotations

from datetime import datetime, timedelta

from cronsim import CronSim, CronSimError

from borg_common.settings import Settings


def check(settings: Settings, name: str, expression: str) -> None:
    """Record a problem for setting name if expression is not a five-field cron expression."""
    try:
        CronSim(expression, datetime.now().astimezone())
    except CronSimError as error:
        settings.problem(settings.label(name), f"{settings.shown(name, expression)} is not a cron expression: {error}")


def next_times(expression: str, after: datetime, count: int = 2) -> list[datetime]:
    """Given a valid cron expression and an aware time, return the next count times it fires."""
    iterator = CronSim(expression, after)
    return [next(iterator) for _ in range(count)]


def period(expression: str, after: datetime) -> timedelta:
    """Return the interval between the next two fire times: the schedule's period."""
    first, second = next_times(expression, after)
    return second - first


def period_around(expression: str, current: datetime) -> timedelta:
    """Return the schedule's period around current: from the fire time before it to the next.

    A weekday schedule's period on a Sunday is the weekend's three days; on a Tuesday it is one day.
    """
    # Backwards, cronsim yields times before current's minute: the search starts a minute on, so that a fire
    # time earlier in current's own minute counts (else */2 at 10:02:30 looked back to 10:00: a double period).
    following_minute = current.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return next_times(expression, current, 1)[0] - next(CronSim(expression, following_minute, reverse=True))
