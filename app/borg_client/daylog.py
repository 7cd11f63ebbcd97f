"""The day log: every log line of the day's runs in a file in the state volume, the last 30 days kept.

Borg's per-file lines (and its chatter past the container log's bound) are written to it straight,
buffered, without a logging record each (writer): the file list costs the backup next to nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from borg_client.paths import Paths

DAYS_KEPT = 30
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LISTED = "borg.files"  # the logger name the day log shows on borg's per-file lines

_open: list[tuple[logging.FileHandler, Path]] = []  # the day log written now (innermost last)


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
    _open.append((handler, path))
    try:
        yield path
    finally:
        _open.remove((handler, path))
        logging.getLogger().removeHandler(handler)
        handler.close()
        for old in sorted(paths.logs.glob(f"{paths.client}-*.log"))[:-DAYS_KEPT]:
            old.unlink(missing_ok=True)


def current() -> Path | None:
    """Return the day log being written now, or None outside day_log."""
    return _open[-1][1] if _open else None


def writer() -> Callable[[str], None] | None:
    """Return a function that appends one INFO line (as borg.files) to the open day log, or None outside day_log.

    The lines are buffered: they reach the file within about a second (and with every logging record).
    """
    if not _open:
        return None
    handler = _open[-1][0]
    stream, lock = handler.stream, handler.lock
    stamp = {"second": -1, "text": ""}

    def write(text: str) -> None:
        now = time.time()
        second = int(now)
        with lock:  # another thread may log a record into the same stream
            if second != stamp["second"]:  # a new second: what the last one listed reaches the file
                stamp["second"], stamp["text"] = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
                stream.flush()
            stream.write(f"{stamp['text']},{int((now - second) * 1000):03d} INFO {LISTED}: {text}\n")

    return write
