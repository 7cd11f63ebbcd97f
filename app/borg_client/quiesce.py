"""Stopping labelled containers while borg create copies their volumes, and always starting them again.

Before anything is stopped, the containers are written to a journal in the state volume. They are
started again right after borg create, in reverse order; if the sidecar dies in between, the next
sidecar start finds the journal and starts them (recover).
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from borg_common.files import atomic_write

logger = logging.getLogger(__name__)

STOP_TIMEOUT = 60  # seconds a container gets to stop before Docker kills it
JOURNAL = "stopped-containers.json"


def docker_client():
    """Return a Docker client for the mounted socket (imported late: only needed with a stop label)."""
    import docker

    return docker.from_env(timeout=STOP_TIMEOUT + 30)


def read_journal(state: Path) -> list[dict]:
    try:
        return json.loads((state / JOURNAL).read_text())
    except (OSError, ValueError):
        return []


def write_journal(state: Path, containers: list[dict]) -> None:
    if containers:
        atomic_write(state / JOURNAL, json.dumps(containers), 0o600)
    else:
        (state / JOURNAL).unlink(missing_ok=True)


def running_with_label(client, label: str) -> list:
    """Return the running containers carrying label (`key` or `key=value`), except this sidecar."""
    own = socket.gethostname()
    found = client.containers.list(filters={"label": label, "status": "running"})
    return sorted((c for c in found if not c.id.startswith(own)), key=lambda c: c.name)


def start_all(client, state: Path, journal: list[dict]) -> list[dict]:
    """Start the journal's containers in reverse order; return those that could not be started."""
    failed = []
    for entry in reversed(journal):
        try:
            client.containers.get(entry["id"]).start()
            logger.info("started container %s again", entry["name"])
        except Exception as error:  # a container removed meanwhile, or a Docker error
            logger.error("could not start container %s again: %s", entry["name"], error)
            failed.append(entry)
    write_journal(state, list(reversed(failed)))
    return failed


@contextmanager
def stopped(label: str | None, state: Path) -> Iterator[list[str]]:
    """Stop the running containers carrying label while inside; yield their names.

    Without a label nothing is stopped. Containers are journalled before being stopped and started
    again on the way out, whatever happened inside.
    """
    if not label:
        yield []
        return
    client = docker_client()
    containers = running_with_label(client, label)
    journal = [{"id": container.id, "name": container.name} for container in containers]
    write_journal(state, journal)
    stopped_names: list[str] = []
    try:
        for container in containers:
            logger.info("stopping container %s (label %s) for the backup", container.name, label)
            container.stop(timeout=STOP_TIMEOUT)
            stopped_names.append(container.name)
        yield stopped_names
    finally:
        start_all(client, state, journal)


def recover(state: Path) -> None:
    """Start containers a crashed run left stopped (from the journal), if any."""
    journal = read_journal(state)
    if not journal:
        return
    logger.warning("a previous run stopped %d container(s) and did not finish: starting them", len(journal))
    start_all(docker_client(), state, journal)
