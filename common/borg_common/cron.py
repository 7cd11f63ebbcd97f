"""Cron schedules (five fields, cronsim): checking a setting, the next times it fires, its period."""

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
