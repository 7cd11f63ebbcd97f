"""Restore drill settings: when a drill runs (VERIFY_CRON), how many files its spot check compares
(VERIFY_SAMPLE) and how often it also reads every chunk (VERIFY_DATA_EVERY). The drill is borg_client.verify.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from borg_common import cron as schedule
from borg_common.settings import Settings

DEFAULT_CRON = "30 4 * * 0"  # Sundays 04:30, after the default nightly backup at 03:00
OFF = ("off", "never", "no")  # VERIFY_CRON=off: no scheduled drill (`borg-client verify` still runs one)
DEFAULT_SAMPLE = "200"
MAXIMUM_COUNT = 100000  # files one spot check compares at most when VERIFY_SAMPLE is a count
DEFAULT_DATA_EVERY, MAXIMUM_DATA_EVERY = 4, 1000
SAMPLE_PATTERN = re.compile(r"^(?P<count>[0-9]{1,6})$|^(?P<share>[0-9]{1,3}(\.[0-9]{1,2})?)%$")


@dataclass(frozen=True)
class Sample:
    """How many of an archive's files a spot check draws: a count, or a share (percent) of them."""

    count: int | None = 200
    share: float | None = None  # percent, 0 < share <= 100

    def size(self, files: int) -> int:
        """Given how many regular files the archive holds, return how many to draw (at least 1 of a share)."""
        if self.share is not None:
            return min(files, max(1, -(-files * int(self.share * 100) // 10000)))
        return min(files, self.count or 0)

    def __str__(self) -> str:
        return f"{self.share:g}%" if self.share is not None else str(self.count)


@dataclass(frozen=True)
class Drills:
    """VERIFY_CRON (None: no scheduled drill), VERIFY_SAMPLE, VERIFY_DATA_EVERY (0: never)."""

    cron: str | None = DEFAULT_CRON
    sample: Sample = Sample()
    data_every: int = DEFAULT_DATA_EVERY


def parse_sample(text: str) -> Sample | None:
    """Given VERIFY_SAMPLE's value, return the sample, or None if it is no count 1..100000 or share 0.01%..100%."""
    match = SAMPLE_PATTERN.fullmatch(text.strip())
    if not match:
        return None
    if match["count"] is not None:
        count = int(match["count"])
        return Sample(count=count) if 1 <= count <= MAXIMUM_COUNT else None
    share = float(match["share"])
    return Sample(count=None, share=share) if 0 < share <= 100 else None


def load(settings: Settings) -> Drills:
    """Given the settings, return the drill settings; record a problem for every wrong one."""
    cron = settings.string("VERIFY_CRON", limit=256) or DEFAULT_CRON
    if cron.strip().lower() in OFF:
        cron = None
    else:
        schedule.check(settings, "VERIFY_CRON", cron)
    value = settings.string("VERIFY_SAMPLE", limit=16)
    sample = parse_sample(value) if value is not None else Sample()
    if sample is None:
        shown = settings.shown("VERIFY_SAMPLE", value)
        settings.problem(
            settings.label("VERIFY_SAMPLE"),
            f"{shown} is not a number of files (1..{MAXIMUM_COUNT}) or a share of them (e.g. 5%, at most 100%)",
        )
        sample = Sample()
    every = settings.integer("VERIFY_DATA_EVERY", DEFAULT_DATA_EVERY, 0, MAXIMUM_DATA_EVERY)
    return Drills(cron, sample, every)
