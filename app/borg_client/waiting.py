"""Waiting at start: for the server's pairing export, then for it to answer, one log line a minute; before the
first run at start, for the labelled databases to accept connections (bounded).

Under an orchestrator without a start order the sidecar may start first. `schedule` then waits
instead of exiting (only `schedule`: one-shot commands fail at once); wrong settings still stop it
at once. While it waits for the server, a marker in the state volume tells the health check why.
A database started beside the sidecar may still be initialising when the first run comes: that run
waits up to DATABASE_BOUND for it, then backs up anyway (a dump that still fails fails the run).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from borg_client import config as client_config
from borg_client import container_exec, dumps, preflight
from borg_client.config import ClientConfig, NotPaired

logger = logging.getLogger(__name__)

INTERVAL = 60  # seconds between two looks (and two log lines) while waiting
# Seconds the first run at start waits for the labelled databases: an official image's first initialisation with a
# modest init script takes well under a minute; a database that never comes up delays that run's report this long.
DATABASE_BOUND = 300
DATABASE_POLL = 2  # seconds between two tries to connect to a database that is not ready


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


def database_missing(api, source: dumps.Source) -> str | None:
    """Given a labelled postgres or mariadb container, return why it cannot be dumped yet (None: it can).

    Not yet: its health check (if it has one) does not say healthy, or it accepts no connection.
    """
    try:
        health = (api.inspect_container(source.container_id)["State"].get("Health") or {}).get("Status")
        if health not in (None, "healthy"):
            return f"its health check says {health}"
        dumps.login(api, source)
    except dumps.DumpFailed as error:
        return str(error)
    except Exception as error:  # a Docker API error: the container restarts, or is gone
        return f"{type(error).__name__}: {error}"
    return None


def databases_ready(config: ClientConfig, stop: threading.Event, bound: float = DATABASE_BOUND,
                    clock: Callable[[], float] = time.monotonic) -> bool:  # fmt: skip
    """Before the first run at start: wait, up to bound seconds in all, until every labelled postgres and mariadb
    container this sidecar dumps accepts connections; log what it waits for and how that ended.

    Return False if stopped first. Without the Docker socket, or with a wrong label (the run reports
    it), there is nothing to wait for.
    """
    if not container_exec.SOCKET.exists():
        return True
    client = container_exec.docker_client()
    try:
        sources = dumps.labelled(client, config.dump_label, config.dump_scope == "project")
    except dumps.DumpFailed:
        return True
    deadline = clock() + bound
    for source in (source for source in sources if source.kind in dumps.TCP_VARIABLE):
        began, why = clock(), database_missing(client.api, source)
        if why is None:
            continue
        what = f"database container {source.container} ({source.kind})"
        logger.info("waiting for %s to accept connections, up to %d s", what, max(0, round(deadline - began)))
        while why is not None and clock() < deadline:
            if stop.wait(DATABASE_POLL):
                return False
            why = database_missing(client.api, source)
        waited = round(clock() - began)
        if why is None:
            logger.info("%s accepts connections after %d s; backing up now", what, waited)
        else:
            logger.warning("%s still accepts no connection after %d s; backing up anyway: %s", what, waited, why)
    return True
