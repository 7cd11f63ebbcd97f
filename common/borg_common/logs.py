"""Logging set up once per program, to stderr so that `docker logs` shows it."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Their lines quote whole URLs ("POST /ping/<uuid>", "Failed to parse headers (url=…)"), which may be secrets;
# borg_common.delivery logs every delivery's outcome itself, with the URL shown as scheme://host/….
QUIET_LIBRARIES = ("urllib3", "requests")


def setup_logging(level: str = "INFO") -> None:
    """Send every logger's records at level or above to stderr, one line each.

    A level logging does not know means INFO here: the configuration reports it (LOG_LEVEL) by name.
    The HTTP libraries log nothing, even at DEBUG: their lines quote URLs whole.
    """
    known = level.upper() if isinstance(logging.getLevelName(level.upper()), int) else "INFO"
    logging.basicConfig(stream=sys.stderr, level=known, format=FORMAT, datefmt="%Y-%m-%dT%H:%M:%S%z", force=True)
    for library in QUIET_LIBRARIES:
        logging.getLogger(library).setLevel(logging.CRITICAL + 1)
