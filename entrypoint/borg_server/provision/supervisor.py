"""A supervisor event listener: a program that failed for good stops the whole container."""

from __future__ import annotations

import logging
import os
import signal
import sys

logger = logging.getLogger(__name__)


def watchdog(stdin=sys.stdin, stdout=sys.stdout) -> None:
    """Speak supervisor's listener protocol; on PROCESS_STATE_FATAL, send SIGTERM to supervisord.

    Docker then sees the container exit (and restarts it, if its restart policy says so).
    """
    while True:
        stdout.write("READY\n")
        stdout.flush()
        line = stdin.readline()
        if not line:
            return  # supervisord closed the pipe: it is shutting down
        header = dict(field.split(":", 1) for field in line.split())
        payload = stdin.read(int(header["len"]))
        if header.get("eventname") == "PROCESS_STATE_FATAL":
            logger.error("supervisor: a program failed for good (%s); stopping the container", payload)
            os.kill(os.getppid(), signal.SIGTERM)
        stdout.write("RESULT 2\nOK")
        stdout.flush()
