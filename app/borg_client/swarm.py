"""Quiescing under Docker Swarm: services carrying the stop label are scaled to 0 and back, never stopped.

Stopping a swarm task's container would only make the swarm start another one, so a labelled service
(the label on the service, `deploy.labels`, or on its containers, `labels`) is scaled to 0 replicas
for borg create and back to the replicas it had (`docker service scale`). Only a manager node can
scale services: a sidecar on a worker that finds labelled tasks fails the run before anything stops,
saying where to place it. quiesce.py journals the services like the containers it stops.
"""

from __future__ import annotations

import logging
import time

from borg_client import container_exec
from borg_client.failures import Failure

logger = logging.getLogger(__name__)

SERVICE_LABEL = "com.docker.swarm.service.id"  # on every container that is a swarm task
SERVICE_NAME_LABEL = "com.docker.swarm.service.name"
ACTIVE_STATES = ("new", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running")
POLL = 0.5  # seconds between two looks at a service's tasks while they stop


def is_manager(client) -> bool:
    """Given a Docker client, return whether its daemon is a manager of an active swarm (it may scale services)."""
    swarm = client.info().get("Swarm") or {}
    return swarm.get("LocalNodeState") == "active" and bool(swarm.get("ControlAvailable"))


def matches(labels: dict | None, label: str) -> bool:
    """Given labels and a stop label (`key` or `key=value`), return whether the labels carry it."""
    key, _, value = label.partition("=")
    labels = labels or {}
    return key in labels and ("=" not in label or labels[key] == value)


def is_task(container) -> bool:
    """Given a container, return whether it is a swarm service's task (the swarm replaces one that stops)."""
    return SERVICE_LABEL in (container.labels or {})


def labelled_services(client, label: str, tasks: list) -> list:
    """Given a Docker client, the stop label and the running labelled containers that are swarm tasks, return the
    replicated services to scale to 0 (running ones, not this sidecar's own), by name.

    Raise Failure (before anything is stopped) if labelled tasks run but this daemon is no swarm manager, or
    if a labelled service runs in global mode, which cannot be scaled.
    """
    if not is_manager(client):
        if tasks:
            names = ", ".join(sorted({task.labels.get(SERVICE_NAME_LABEL, task.name) for task in tasks}))
            raise Failure(
                f"service(s) {names} carry {label}, but only a swarm manager can scale services: run the sidecar "
                "on a manager node (deploy.placement.constraints: node.role == manager)",
                cause="settings",
            )
        return []
    own = own_service(client)
    found = []
    for service in client.services.list():
        spec = service.attrs["Spec"]
        container_labels = spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Labels")
        if service.id == own or not (matches(spec.get("Labels"), label) or matches(container_labels, label)):
            continue
        mode = spec.get("Mode", {})
        if "Replicated" not in mode:
            raise Failure(
                f"service {service.name} carries {label} but runs in {', '.join(mode) or 'an unknown'} mode: only a "
                "replicated service can be scaled to 0 for the backup; remove the label or make it replicated",
                cause="settings",
            )
        if mode["Replicated"].get("Replicas", 0) > 0:
            found.append(service)
    return sorted(found, key=lambda service: service.name)


def own_service(client) -> str | None:
    """Return the id of the swarm service this sidecar is a task of, or None (not a task, or not found)."""
    return container_exec.own_labels(client).get(SERVICE_LABEL)


def replicas(service) -> int:
    """Given a replicated service, return its number of replicas."""
    return service.attrs["Spec"]["Mode"]["Replicated"].get("Replicas", 0)


def scale_down(client, entry: dict, timeout: float) -> None:
    """Given a journalled service ({id, name, replicas}), scale it to 0 and wait until its tasks have stopped;
    raise Failure if they are still running after timeout seconds."""
    client.services.get(entry["id"]).scale(0)  # fetched again: scale() updates the version it was read at
    deadline = time.monotonic() + timeout
    while any(task["Status"]["State"] in ACTIVE_STATES for task in client.services.get(entry["id"]).tasks()):
        if time.monotonic() > deadline:
            raise Failure(f"service {entry['name']}: its tasks did not stop within {timeout:.0f} s of scaling it to 0")
        time.sleep(POLL)


def scale_up(client, entry: dict) -> None:
    """Given a journalled service, scale it back to the replicas it had (docker.errors.NotFound if it is gone)."""
    client.services.get(entry["id"]).scale(entry["replicas"])
