"""The pairing formats: what a sidecar needs to reach its repository (known_hosts line, repo URL, export files).

`setup` writes the export directory of every client; `borg-server show-client` prints the same
line and URL, so what a person copies by hand is what a same-host sidecar mounts.
"""

from __future__ import annotations

import os
from pathlib import Path

from borg_common.files import atomic_write
from borg_server.config import ClientSpec, ServerConfig
from borg_server.keys import PublicKey
from borg_server.paths import REPOSITORY_NAME, Paths


def known_hosts_line(host_key: PublicKey, config: ServerConfig) -> str:
    """Given the host key, return the known_hosts line clients pin, for BORG_SERVER_NAME."""
    host = config.server_host if config.server_port == 22 else f"[{config.server_host}]:{config.server_port}"
    return f"{host} {host_key.type} {host_key.blob}\n"


def repository_url(config: ServerConfig) -> str:
    """Return the URL a client puts in BORG_REPO; relative to its directory, so it works anywhere."""
    host = f"[{config.server_host}]" if ":" in config.server_host else config.server_host
    return f"ssh://borg@{host}:{config.server_port}/./{REPOSITORY_NAME}"


def write_export(client: ClientSpec, generated: bool, host_key: PublicKey, paths: Paths, config: ServerConfig) -> None:
    """Write what a sidecar needs to pair: name, known_hosts, repository URL, a generated private key."""
    export = paths.client_export(client.name)
    export.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(export, 0o700)
    atomic_write(export / "known_hosts", known_hosts_line(host_key, config), 0o644)
    atomic_write(export / "repo_url", repository_url(config) + "\n", 0o644)
    atomic_write(export / "client_name", client.name + "\n", 0o644)
    exported_key = export / "id_ed25519"
    if generated:
        private_key = paths.client_keys(client.name) / "id_ed25519"
        atomic_write(exported_key, private_key.read_bytes(), 0o600)
        atomic_write(export / "id_ed25519.pub", Path(f"{private_key}.pub").read_bytes(), 0o644)
    else:
        for stale in (exported_key, export / "id_ed25519.pub"):
            stale.unlink(missing_ok=True)
