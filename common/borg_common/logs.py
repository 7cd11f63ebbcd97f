"""Logging set up once per program, to stderr so that `docker logs` shows it."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str = "INFO") -> None:
    """Send every logger's records at level or above to stderr, one line each.

    A level logging does not know means INFO here: the configuration reports it (LOG_LEVEL) by name.
    """
    known = level.upper() if isinstance(logging.getLevelName(level.upper()), int) else "INFO"
    logging.basicConfig(stream=sys.stderr, level=known, format=FORMAT, datefmt="%Y-%m-%dT%H:%M:%S%z", force=True)
