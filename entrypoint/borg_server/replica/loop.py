"""The replica's loop (run by supervisor in place of the monitor): a replication round at every REPLICATE_CRON time.

Between rounds it looks at the copies once a minute, so replica_lag is raised while the primary
cannot be reached (each round that cannot reach it counts towards replica_unreachable), and ships the
alerts from the outbox. SIGUSR1 makes it look now (`borg-server replicate` sends it after its round, so the
metrics and the status page show that round at once). SIGTERM stops it between two steps.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import datetime

from borg_common import cron
from borg_common.files import atomic_write
from borg_common.wakeup import Wakeup
from borg_server.records.configuration import ServerConfig
from borg_server.replica import alerts, copy
from borg_server.system.paths import Paths

logger = logging.getLogger(__name__)

LOOK_EVERY = 60  # seconds between looks at the copies' lag


def run(server: ServerConfig, paths: Paths, published: Callable[[], None] | None = None) -> int:
    """Replicate on REPLICATE_CRON until SIGTERM; return 0."""
    stop, wake = threading.Event(), Wakeup()  # stop.set() in a handler is safe: this thread only reads it

    def stop_now(_number, _frame) -> None:
        stop.set()
        wake.set()

    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, stop_now)
    signal.signal(signal.SIGUSR1, lambda _number, _frame: wake.set())
    paths.monitor.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(paths.monitor_pid, f"{os.getpid()}\n", 0o600, durable=False)  # from now on, SIGUSR1 is safe
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
        wake.wait(max(1.0, min(LOOK_EVERY, (due - datetime.now().astimezone()).total_seconds())))
    logger.info("replicator: stopped")
    return 0
