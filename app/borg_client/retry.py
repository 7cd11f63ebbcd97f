"""Retries of a failed scheduled run: the delays (RETRY_DELAYS) and when the next try is due, if at all."""

from __future__ import annotations

from datetime import datetime, timedelta

from borg_common.settings import Settings
from borg_common.values import duration_text, parse_duration

DEFAULT_DELAYS = (300, 1800, 7200)  # RETRY_DELAYS="5m 30m 2h", then the next scheduled time
MINIMUM_DELAY, MAXIMUM_DELAY, MAXIMUM_RETRIES = 10, 86400, 10


def delays(settings: Settings) -> tuple[int, ...]:
    """Given the settings, return RETRY_DELAYS as seconds (the default when unset); 0 alone is no retries.

    Each delay is a duration within 10s..1d, at most 10 of them; anything else records a problem.
    """
    words = settings.words("RETRY_DELAYS")
    if not words:
        return DEFAULT_DELAYS
    if words == ["0"]:
        return ()
    label = settings.label("RETRY_DELAYS")
    seconds = [parse_duration(word) for word in words]
    if len(words) > MAXIMUM_RETRIES:
        settings.problem(label, f"has {len(words)} delays; the maximum is {MAXIMUM_RETRIES}")
    elif None in seconds:
        settings.problem(label, "is not a list of durations (e.g. 5m 30m 2h), or 0 for no retries")
    elif any(not MINIMUM_DELAY <= delay <= MAXIMUM_DELAY for delay in seconds):
        bounds = f"{duration_text(MINIMUM_DELAY)}..{duration_text(MAXIMUM_DELAY)}"
        settings.problem(label, f"each delay must be within {bounds} (or 0 alone: no retries)")
    else:
        return tuple(seconds)
    return DEFAULT_DELAYS


def retry_at(
    delays: tuple[int, ...], retryable: bool, attempt: int, finished: datetime, next_scheduled: datetime
) -> datetime | None:
    """Given the delays, whether the failure is retryable, the attempt that failed (1: the scheduled run),
    when it finished and the next scheduled time, return when to try again, or None.

    None when the failure is not retryable, the delays are used up, or the retry would not come
    before the next scheduled run (which then happens instead).
    """
    if not retryable or attempt > len(delays):
        return None
    due = finished + timedelta(seconds=delays[attempt - 1])
    return due if due < next_scheduled else None
