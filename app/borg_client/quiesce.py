"""Stopping labelled containers while borg create copies their volumes, and always starting them again.

Before anything is stopped, the containers are written to a journal in the state volume
(Paths.stopped_containers). They are started again right after borg create, in reverse order; if
the sidecar dies in between, the next sidecar start finds the journal and starts them (recover).
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


def docker_client():
    """Return a Docker client for the mounted socket (imported late: only needed with a stop label)."""
    import docker

    return docker.from_env(timeout=STOP_TIMEOUT + 30)


def read_journal(journal: Path) -> list[dict]:
    try:
        return json.loads(journal.read_text())
    except (OSError, ValueError):
        return []


def write_journal(journal: Path, containers: list[dict]) -> None:
    if containers:
        atomic_write(journal, json.dumps(containers), 0o600)
    else:
        journal.unlink(missing_ok=True)


def running_with_label(client, label: str | list[str]) -> list:
    """Return the running containers carrying label (`key` or `key=value`; a list: all of them), except this sidecar."""
    own = socket.gethostname()
    found = client.containers.list(filters={"label": label, "status": "running"})
    return sorted((c for c in found if not c.id.startswith(own)), key=lambda c: c.name)


def start_all(client, journal: Path, containers: list[dict]) -> list[dict]:
    """Start the journalled containers in reverse order; return (and keep journalled) those that could not be.

    A container removed meanwhile (Docker answers 404) is dropped from the journal: there is nothing to start.
    """
    failed = []
    for entry in reversed(containers):
        try:
            client.containers.get(entry["id"]).start()
            logger.info("started container %s again", entry["name"])
        except Exception as error:  # a Docker error: docker.errors.APIError and its kin
            if getattr(error, "status_code", None) == 404:
                logger.warning("container %s was removed meanwhile: nothing to start again", entry["name"])
                continue
            logger.error("could not start container %s again: %s", entry["name"], error)
            failed.append(entry)
    write_journal(journal, list(reversed(failed)))
    return failed


@contextmanager
def stopped(label: str | None, journal: Path) -> Iterator[list[str]]:
    """Stop the running containers carrying label while inside; yield their names.

    Without a label nothing is stopped. Containers are journalled before being stopped and started
    again on the way out, whatever happened inside. Containers an earlier run could not start again
    stay journalled and are tried again on the way out too.
    """
    if not label:
        yield []
        return
    client = docker_client()
    containers = running_with_label(client, label)
    running = {container.id for container in containers}
    left = [entry for entry in read_journal(journal) if entry["id"] not in running]
    if left:
        logger.warning(
            "%d container(s) an earlier run stopped are still journalled: starting them after this one", len(left)
        )
    entries = left + [{"id": container.id, "name": container.name} for container in containers]
    write_journal(journal, entries)
    stopped_names: list[str] = []
    try:
        for container in containers:
            logger.info("stopping container %s (label %s) for the backup", container.name, label)
            container.stop(timeout=STOP_TIMEOUT)
            stopped_names.append(container.name)
        yield stopped_names
    finally:
        start_all(client, journal, entries)


def recover(journal: Path) -> None:
    """Start containers a crashed run left stopped (from the journal), if any."""
    entries = read_journal(journal)
    if not entries:
        return
    logger.warning("a previous run stopped %d container(s) and did not finish: starting them", len(entries))
    start_all(docker_client(), journal, entries)
