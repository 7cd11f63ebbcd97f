"""borg_common.values: durations and sizes as people read them, in every message of both images."""

from __future__ import annotations

import pytest

from borg_common.values import human_duration, human_size


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59, "59s"), (60, "1m"), (61, "1m 1s"), (3600, "1h"), (3661, "1h 1m"), (86400, "1d"),
     (97200, "1d 3h"), (90061, "1d 1h"), (59.9, "59s")],
)  # fmt: skip
def test_human_duration_shows_the_two_largest_units_that_are_not_zero(seconds, text):
    assert human_duration(seconds) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (None, "-"),
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (1_234_567, "1.2 MB"),
        (50 * 1000**3, "50.0 GB"),
        (3 * 1000**4, "3.0 TB"),
        (2 * 1000**5, "2000.0 TB"),
    ],
)
def test_human_size_uses_decimal_units_up_to_terabytes(size, text):
    assert human_size(size) == text


def test_durations_and_sizes_read_as_a_person_reads_them():
    assert [human_duration(s) for s in (0, 59, 3600 + 120, 90000)] == ["0s", "59s", "1h 2m", "1d 1h"]
    assert [human_size(n) for n in (512, 1500, 23_400_000, 2 * 10**9)] == ["512 B", "1.5 kB", "23.4 MB", "2.0 GB"]
