"""The replica's loop (run by supervisor in place of the monitor): a replication round at every REPLICATE_CRON time.

Between rounds it looks at the copies once a minute, so replica_lag is raised while the primary
cannot be reached (each round that cannot reach it counts towards replica_unreachable), and ships the
alerts from the outbox. SIGTERM stops it between two steps.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime

from borg_common import cron
from borg_server.records.configuration import ServerConfig
from borg_server.replica import alerts, copy
from borg_server.system.paths import Paths

logger = logging.getLogger(__name__)

LOOK_EVERY = 60  # seconds between looks at the copies' lag


def run(server: ServerConfig, paths: Paths, published: Callable[[], None] | None = None) -> int:
    """Replicate on REPLICATE_CRON until SIGTERM; return 0."""
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda _number, _frame: stop.set())
    paths.monitor.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings = server.replication
    due = cron.next_times(settings.cron, datetime.now().astimezone(), 1)[0]
    logger.info("replicator: copying from %s:%d on %r, next at %s", settings.host, settings.port, settings.cron,
                due.isoformat(timespec="seconds"))  # fmt: skip
    while not stop.is_set():
        if datetime.now().astimezone() >= due:
            copy.replicate(server, paths)
            due = cron.next_times(settings.cron, datetime.now().astimezone(), 1)[0]
        else:
            alerts.watch_lag(server, paths)
        alerts.ship(server, paths, wait=False)
        if published is not None:
            published()
        stop.wait(max(1.0, min(LOOK_EVERY, (due - datetime.now().astimezone()).total_seconds())))
    logger.info("replicator: stopped")
    return 0
