"""Stopping labelled containers while borg create copies their volumes, and always starting them again.

Before anything is stopped, the containers are written to a journal in the state volume
(Paths.stopped_containers). They are started again right after borg create, in reverse order; if
the sidecar dies in between, the next sidecar start finds the journal and starts them (recover).
Under Docker Swarm, labelled services are scaled to 0 instead and back to their replicas (swarm.py),
journalled the same way: {"kind": "service", "id", "name", "replicas"} beside {"id", "name"} of a container.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from borg_client import swarm
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
    """Return the running containers carrying label (`key` or `key=value`; a list: all of them), except this sidecar;
    swarm tasks too."""
    own = socket.gethostname()
    found = client.containers.list(filters={"label": label, "status": "running"})
    return sorted((c for c in found if not c.id.startswith(own)), key=lambda c: c.name)


def to_quiesce(client, label: str) -> tuple[list, list]:
    """Return the labelled containers to stop and the labelled swarm services to scale to 0 (swarm.py)."""
    containers = running_with_label(client, label)
    tasks = [container for container in containers if swarm.is_task(container)]
    services = swarm.labelled_services(client, label, tasks)
    return [container for container in containers if not swarm.is_task(container)], services


def start_all(client, journal: Path, containers: list[dict]) -> list[dict]:
    """Start the journalled containers in reverse order; return (and keep journalled) those that could not be.

    A container removed meanwhile (Docker answers 404) is dropped from the journal: there is nothing to start.
    """
    failed = []
    for entry in reversed(containers):
        what = "service" if entry.get("kind") == "service" else "container"
        try:
            if what == "service":
                swarm.scale_up(client, entry)
                logger.info("scaled service %s back to %d replica(s)", entry["name"], entry["replicas"])
            else:
                client.containers.get(entry["id"]).start()
                logger.info("started container %s again", entry["name"])
        except Exception as error:  # a Docker error: docker.errors.APIError and its kin
            if getattr(error, "status_code", None) == 404:
                logger.warning("%s %s was removed meanwhile: nothing to start again", what, entry["name"])
                continue
            logger.error("could not start %s %s again: %s", what, entry["name"], error)
            failed.append(entry)
    write_journal(journal, list(reversed(failed)))
    return failed


@contextmanager
def stopped(label: str | None, journal: Path) -> Iterator[list[str]]:
    """Stop the running containers carrying label, and scale labelled swarm services to 0, while inside; yield
    their names.

    Without a label nothing is stopped. Containers and services are journalled before being stopped and
    started again on the way out, whatever happened inside. Those an earlier run could not start again
    stay journalled and are tried again on the way out too.
    """
    if not label:
        yield []
        return
    client = docker_client()
    containers, services = to_quiesce(client, label)
    running = {item.id for item in containers + services}
    left = [entry for entry in read_journal(journal) if entry["id"] not in running]
    if left:
        logger.warning(
            "%d container(s) or service(s) an earlier run stopped are still journalled: starting them after this one",
            len(left),
        )
    entries = left + [{"id": container.id, "name": container.name} for container in containers]
    scaled = [{"kind": "service", "id": s.id, "name": s.name, "replicas": swarm.replicas(s)} for s in services]
    write_journal(journal, entries + scaled)
    stopped_names: list[str] = []
    try:
        for container in containers:
            logger.info("stopping container %s (label %s) for the backup", container.name, label)
            container.stop(timeout=STOP_TIMEOUT)
            stopped_names.append(container.name)
        for entry in scaled:
            logger.info("scaling service %s (label %s) to 0 for the backup", entry["name"], label)
            stopped_names.append(entry["name"])  # before: a service that fails to stop may be half down
            swarm.scale_down(client, entry, STOP_TIMEOUT + 30)
        yield stopped_names
    finally:
        start_all(client, journal, entries + scaled)


def recover(journal: Path) -> None:
    """Start containers a crashed run left stopped (from the journal), if any."""
    entries = read_journal(journal)
    if not entries:
        return
    logger.warning(
        "a previous run stopped %d container(s) or service(s) and did not finish: starting them", len(entries)
    )
    start_all(docker_client(), journal, entries)
