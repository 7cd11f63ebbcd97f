"""Checks before a run touches anything: what to back up, and whether the server is the pinned one."""

from __future__ import annotations

import logging
import os

from borg_client.config import REPO_PATTERN, ClientConfig
from borg_client.failures import Failure
from borg_common import process

logger = logging.getLogger(__name__)

SCAN_TIMEOUT = 10


class PreflightFailed(Failure):
    """A run must not start; the message says what to fix, the cause what kind of problem it is."""


def sources(config: ClientConfig) -> list[str]:
    """Return the directories to back up: each one a mount point under /backup, not empty unless allowed."""
    how = f"mount each volume to back up as {config.sources}/<name>"
    if not config.sources.is_dir():
        raise PreflightFailed(f"{config.sources} does not exist: {how}", "sources")
    found = sorted(entry for entry in config.sources.iterdir() if entry.is_dir())
    if not found:
        raise PreflightFailed(f"nothing is mounted under {config.sources}: {how}", "sources")
    for source in found:
        if not os.path.ismount(source):
            raise PreflightFailed(
                f"{source} is not a mount point, so it is the container's own empty directory: mount the volume there",
                "sources",
            )
        if not config.allow_empty and not any(source.iterdir()):
            raise PreflightFailed(f"{source} is empty; if that is expected, set BACKUP_ALLOW_EMPTY=yes", "sources")
    return [str(source) for source in found]


def server_address(repository: str) -> tuple[str, int]:
    """Given an ssh:// repository URL, return (host, port)."""
    match = REPO_PATTERN.fullmatch(repository)
    if not match:
        raise PreflightFailed(f"BORG_REPO {repository!r} is not ssh://[user@]host[:port]/path", "settings")
    return match["host"].strip("[]"), int(match["port"] or 22)


def key_pairs(text: str) -> set[tuple[str, str]]:
    """Given known_hosts-style lines, return their (key type, base64 key) pairs."""
    pairs = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and not line.startswith("#"):
            pairs.add((fields[1], fields[2]))
    return pairs


def pinned_and_offered(config: ClientConfig) -> tuple[str, set, set]:
    """Return the server as known_hosts names it, the host keys pinned for it and those it offers now (ssh-keyscan).

    With no key pinned, the server is not asked.
    """
    host, port = server_address(config.repository)
    pattern = host if port == 22 else f"[{host}]:{port}"
    pinned_lines = process.run(
        ["ssh-keygen", "-F", pattern, "-f", str(config.known_hosts)], capture_stdout=True, log_level=logging.DEBUG
    ).stdout
    pinned = key_pairs(pinned_lines)
    if not pinned:
        return pattern, pinned, set()
    scan = process.run(
        ["ssh-keyscan", "-T", str(SCAN_TIMEOUT), "-p", str(port), "-t", ",".join(sorted({t for t, _ in pinned})), host],
        capture_stdout=True,
        log_level=logging.DEBUG,
    )
    return pattern, pinned, key_pairs(scan.stdout)


def unreachable(host: str, port: int) -> str:
    return f"cannot reach the backup server {host} on port {port}"


def server_missing(config: ClientConfig) -> str | None:
    """Return what is missing for the server to be there (it does not answer), or None once it answers.

    None too when no host key is pinned: that is a run's failure to report, not something to wait for.
    """
    host, port = server_address(config.repository)
    _, pinned, offered = pinned_and_offered(config)
    return None if offered or not pinned else f"the backup server ({unreachable(host, port)})"


def check_host_key(config: ClientConfig) -> None:
    """Make sure the server answers and shows the pinned host key; raise PreflightFailed if not.

    Only a key exchange happens (ssh-keyscan). A run asks this before containers are stopped, and to
    explain a borg create that failed; otherwise ssh itself refuses a server without the pinned key
    (StrictHostKeyChecking=yes) before any borg session opens, so a run saves the extra connection.
    """
    host, port = server_address(config.repository)
    pattern, pinned, offered = pinned_and_offered(config)
    if not pinned:
        message = f"{config.known_hosts} pins no host key for {pattern}: pair the sidecar with the server"
        raise PreflightFailed(message, "host-key")
    if not offered:
        raise PreflightFailed(unreachable(host, port), "unreachable")
    if not offered & pinned:
        raise PreflightFailed(
            f"host key verification failed: the backup server {host}:{port} shows a host key that is not the one "
            f"pinned in {config.known_hosts}: "
            "someone may be impersonating it; no backup was sent. If the server's key was changed on purpose, "
            "pin the new one (borg-server show-client prints it)",
            "host-key",
        )
    logger.debug("server %s:%d shows the pinned host key", host, port)
