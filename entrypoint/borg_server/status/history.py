"""The repositories' sizes over the last 30 days, for the status page's trend chart.

After each scan the monitor records every client's size: at most one sample per SLOT (a newer sample of the
same slot replaces the older, so the last one is always current), samples older than KEEP dropped, clients
no longer configured forgotten. So the file stays small: about 180 samples per client.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from borg_common import files

logger = logging.getLogger(__name__)

KEEP = 30 * 86400  # seconds of history the chart shows
SLOT = 4 * 3600  # at most one sample per client in each slot of this many seconds
READ_LIMIT = 64 * 1024 * 1024

History = dict[str, list[tuple[float, int]]]  # client -> [(Unix time, bytes)], oldest first


def load(path: Path) -> History:
    """Given the history file, return its samples; nothing yet, or a file that cannot be read, is no history."""
    try:
        document = json.loads(files.read_regular(path, READ_LIMIT))
        return {str(client): [(float(t), int(size)) for t, size in samples] for client, samples in document.items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError, AttributeError) as problem:
        logger.warning("status: the size history %s cannot be read (%s); starting it afresh", path, problem)
        return {}


def add(history: History, sizes: dict[str, int], now: float) -> History:
    """Given the history, every configured client's size now and the time, return the new history."""
    result: History = {}
    for client, size in sizes.items():
        samples = [(t, b) for t, b in history.get(client, []) if now - KEEP <= t <= now]
        if samples and int(samples[-1][0] // SLOT) == int(now // SLOT):
            samples.pop()
        result[client] = [*samples, (now, size)]
    return result


def record(path: Path, sizes: dict[str, int], now: float) -> History:
    """Add every client's size now to the history file; return the history."""
    history = add(load(path), sizes, now)
    document = {client: [[round(t), b] for t, b in samples] for client, samples in history.items()}
    files.atomic_write(path, json.dumps(document, separators=(",", ":")), 0o644)
    return history
