"""The command line's prune commands: `prune` (one now) and `prune-schedule` (the admin service's loop).

Both refuse, saying why, without the admin key or KEEP_* (borg_client.retention.refusal).
"""

from __future__ import annotations

import signal
import sys
import threading

from borg_client import prune, retention, schedule
from borg_client.borgcall import Control

EXIT_CODES = {"success": 0, "warning": 1, "failure": 2, "skipped": 3, "interrupted": 4}  # as borg-client run


def command_prune(config, _arguments) -> int:
    """One prune now with the admin key (waits for a backup that is going on); refused without one."""
    refused = retention.refusal(config)
    if refused:
        print(f"borg-client prune: refused: {refused}", file=sys.stderr)
        return 2
    control = Control()
    signal.signal(signal.SIGTERM, lambda *_: control.interrupt())
    signal.signal(signal.SIGINT, lambda *_: control.interrupt())
    return EXIT_CODES[prune.prune_once(config, wait=True, control=control).status]


def command_prune_schedule(config, _arguments) -> int:
    """Prune on PRUNE_CRON until SIGTERM, never back up: the admin service."""
    refused = retention.refusal(config) or ("" if config.retention.cron else "PRUNE_CRON is not set")
    if refused:
        print(f"borg-client prune-schedule: refused: {refused}", file=sys.stderr)
        return 2
    stop, control = threading.Event(), Control()
    schedule.handle_signals(stop, control)
    schedule.prune_loop(config, stop, control)
    return 0
