"""Borg's command lines and environment, built by pure functions, and its exit codes interpreted."""

from __future__ import annotations

import shlex
import uuid
from dataclasses import dataclass
from pathlib import Path

from borg_client.config import ClientConfig
from borg_common.borglog import LogJson  # noqa: F401 (borg.LogJson is part of this module's interface)

LOCK_WAIT = 600  # seconds any borg command waits for the repository lock (another run, an admin's prune)
WARNING_CODES = range(100, 128)  # modern exit codes: "some files could not be read" and friends


@dataclass(frozen=True)
class Outcome:
    """What a borg exit code means for a run."""

    status: str  # success | warning | failure
    reason: str


def borg_environment(config: ClientConfig, base: dict[str, str]) -> dict[str, str]:
    """Given the configuration and the process environment, return the environment for borg.

    Everything borg keeps lives in the state volume; ssh pins the server's host key and never asks.
    """
    state = config.state
    ssh = [
        "ssh",
        "-i", str(config.ssh_key),
        "-o", f"UserKnownHostsFile={config.known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "IdentitiesOnly=yes",
        "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=15",
        "-o", "ServerAliveInterval=10",
        "-o", "ServerAliveCountMax=30",
    ]  # fmt: skip
    environment = {key: value for key, value in base.items() if not key.startswith("BORG_")}
    environment.update(
        {
            "BORG_REPO": config.repository,
            "BORG_RSH": shlex.join(ssh),
            "BORG_EXIT_CODES": "modern",
            "BORG_HOST_ID": host_id(state, config.client),
            "BORG_KEYS_DIR": str(state / "keys"),
            "BORG_SECURITY_DIR": str(state / "security"),
            "BORG_CACHE_DIR": str(state / "cache"),
            "BORG_CONFIG_DIR": str(state / "config"),
            "BORG_RELOCATED_REPO_ACCESS_IS_OK": "no",
            "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "no",
            "BORG_DISPLAY_PASSPHRASE": "no",
            "LANG": "C.UTF-8",
        }
    )
    if config.passphrase_file:
        environment["BORG_PASSCOMMAND"] = shlex.join(["cat", str(config.passphrase_file)])
    elif config.passcommand:
        environment["BORG_PASSCOMMAND"] = config.passcommand
    elif config.passphrase:
        environment["BORG_PASSPHRASE"] = config.passphrase
    return environment


def host_id(state: Path, client: str) -> str:
    """Return a BORG_HOST_ID that survives container re-creation, so stale locks can be broken.

    Borg recognises its own stale locks by host id and pid; a container's hostname changes when it
    is re-created, so the id is made once and kept in the state volume.
    """
    path = state / "host_id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        identity = f"borg-appliance-{client}@{uuid.uuid4().hex}"
        path.write_text(identity + "\n")
        return identity


def create_argv(config: ClientConfig, archive: str, sources: list[str]) -> list[str]:
    """Given the configuration, an archive name and source paths, return the borg create argv."""
    argv = ["borg", "create", "--json", "--list", "--filter", "AME", "--show-rc"]
    argv += ["--compression", config.compression, "--checkpoint-interval", "600"]
    if config.exclude_caches:
        argv.append("--exclude-caches")
    return argv + [f"::{archive}"] + sources


def init_argv(config: ClientConfig) -> list[str]:
    return ["borg", "init", "--encryption", config.encryption]


def list_argv(extra: list[str] | None = None) -> list[str]:
    return ["borg", "list", *(extra or [])]


def key_export_argv(repository: str, target: Path, paper: bool = False) -> list[str]:
    return ["borg", "key", "export", *(["--paper"] if paper else []), repository, str(target)]


def outcome(returncode: int) -> Outcome:
    """Given borg's modern exit code, return success, warning or failure."""
    if returncode == 0:
        return Outcome("success", "borg finished without problems")
    if returncode == 1 or returncode in WARNING_CODES:
        return Outcome("warning", f"borg finished with warnings (exit {returncode}); some files may be missing")
    return Outcome("failure", f"borg failed (exit {returncode})")
