"""Waiting for the server at start: for its pairing export, then for it to answer, one log line a minute.

Under an orchestrator without a start order the sidecar may start first. `schedule` then waits
instead of exiting (only `schedule`: one-shot commands fail at once); wrong settings still stop it
at once. While it waits for the server, a marker in the state volume tells the health check why.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from borg_client import config as client_config
from borg_client import preflight
from borg_client.config import ClientConfig, NotPaired

logger = logging.getLogger(__name__)

INTERVAL = 60  # seconds between two looks (and two log lines) while waiting


def wait_for(
    missing: Callable[[], str | None], stop: threading.Event, marker: Path | None = None, interval: float = INTERVAL
) -> bool:
    """Given a check that returns what is still missing (None: nothing), wait until nothing is.

    Log one line per interval naming what is missing; meanwhile marker (if given) holds it. Return
    True once nothing is missing, False if stop was set first. What the check raises goes through.
    """
    try:
        while (what := missing()) is not None:
            logger.warning("waiting for %s; looking again in %ds", what, interval)
            if marker is not None:
                marker.write_text(what + "\n")
            if stop.wait(interval):
                return False
        return True
    finally:
        if marker is not None:
            marker.unlink(missing_ok=True)


def paired_configuration(
    environ: Mapping[str, str], stop: threading.Event, load: Callable[..., ClientConfig] = client_config.load
) -> ClientConfig | None:
    """Given the environment, return the configuration once the pairing export is there (None: stopped first).

    The pairing directory is read again each minute; raise ConfigError at once for wrong settings.
    """
    found: list[ClientConfig] = []

    def pairing_missing() -> str | None:
        try:
            found.append(load(environ))
        except NotPaired as error:
            return "the pairing export: " + "; ".join(error.problems)
        return None

    return found[-1] if wait_for(pairing_missing, stop) else None


def reachable_server(config: ClientConfig, stop: threading.Event, marker: Path) -> bool:
    """Wait until the backup server answers on its port; return False if stopped first."""
    marker.parent.mkdir(parents=True, exist_ok=True)
    return wait_for(lambda: preflight.server_missing(config), stop, marker)


def waiting_for(marker: Path) -> str | None:
    """Given the marker, return what the scheduler waits for, or None if it does not wait."""
    try:
        return marker.read_text().strip() or None
    except OSError:
        return None
