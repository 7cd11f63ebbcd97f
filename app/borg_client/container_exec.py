"""Commands run inside another container through the Docker exec API: short ones whose output is kept,
the container's environment, and a tool's message with the passwords it ran with masked.

What the dumps (dumps.py, dump_streams.py) and restore-dump (dumprestore.py) share; the Docker socket
is SOCKET: without it mounted, there are no dumps.
"""

from __future__ import annotations

import socket
from pathlib import Path

from borg_client.config import DOCKER_SOCKET

SOCKET = Path(DOCKER_SOCKET)  # without it mounted, no dumps
IDLE_TIMEOUT = 1800  # seconds a dump may print nothing (a lock it waits for) before the sidecar gives up
SMALL_LIMIT = 1 << 20  # bytes kept of a short command's output (a database list, a password file)


def docker_client():
    """Return a Docker client for the mounted socket that waits long enough for a quiet dump."""
    import docker

    return docker.from_env(timeout=IDLE_TIMEOUT)


def not_answering(error: Exception) -> str:
    """Given what a Docker API call raised, return why the socket gave no answer, in one line for a person."""
    said = str(error).strip().splitlines()
    return f"the Docker API at {SOCKET} did not answer ({type(error).__name__}" + (
        f": {said[0][:200]})" if said else ")"
    )


def run_small(api, container_id: str, argv: list[str], environment: dict | None = None) -> tuple[int, str, str]:
    """Run a short command in a container; return its exit code, stdout and stderr (each cut at 1 MiB)."""
    created = api.exec_create(container_id, argv, stdout=True, stderr=True, environment=environment or {})
    out, err = bytearray(), bytearray()
    for stdout, stderr in api.exec_start(created["Id"], stream=True, demux=True):
        if stdout and len(out) < SMALL_LIMIT:
            out += stdout
        if stderr and len(err) < SMALL_LIMIT:
            err += stderr
    code = api.exec_inspect(created["Id"])["ExitCode"]
    return code, out.decode(errors="replace"), err.decode(errors="replace")


def container_environment(api, container_id: str) -> dict[str, str]:
    """Return the container's environment (Config.Env) as a mapping."""
    pairs = api.inspect_container(container_id)["Config"].get("Env") or []
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


def masked(text: str, environment: dict[str, str]) -> str:
    """Given a tool's message and the credentials it ran with, return the message with every password masked."""
    for key, value in environment.items():
        if "PASSWORD" in key or key.endswith("PWD"):
            text = text.replace(value, "***") if value else text
    return text


def own_labels(client) -> dict[str, str]:
    """Return the labels of this sidecar's own container (its hostname is its id), or {} if Docker does not know it."""
    try:
        return client.containers.get(socket.gethostname()).labels or {}
    except Exception:  # a Docker error: docker.errors.NotFound when the hostname is not a container id
        return {}
