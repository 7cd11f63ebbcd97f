"""The day log: every log line of the day's runs in a file in the state volume, the last 30 days kept."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from borg_client.paths import Paths

DAYS_KEPT = 30
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def day_log(paths: Paths) -> Iterator[Path]:
    """While inside, copy every log line into logs/<client>-<day>.log (UTC day); yield that file.

    On the way out, logs older than the last 30 days' files are removed.
    """
    paths.logs.mkdir(parents=True, exist_ok=True)
    path = paths.day_log(datetime.now(UTC).date())
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    logging.getLogger().addHandler(handler)
    try:
        yield path
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
        for old in sorted(paths.logs.glob(f"{paths.client}-*.log"))[:-DAYS_KEPT]:
            old.unlink(missing_ok=True)
