"""The pairing formats: what a sidecar needs to reach its repository (known_hosts line, repo URL, export files).

`setup` writes the export directory of every client; `borg-server show-client` prints the same
line and URL, so what a person copies by hand is what a same-host sidecar mounts.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from pathlib import Path

from borg_common import files as safe_files
from borg_common.files import atomic_write
from borg_server.records.configuration import ClientSpec, Endpoint, ServerConfig
from borg_server.system import commands
from borg_server.system.paths import REPOSITORY_NAME, Paths
from borg_server.system.ssh_keys import PublicKey

logger = logging.getLogger(__name__)


def known_hosts_line(host_key: PublicKey, config: ServerConfig | Endpoint) -> str:
    """Given the host key, return the known_hosts line clients pin, for BORG_SERVER_NAME."""
    host = config.server_host if config.server_port == 22 else f"[{config.server_host}]:{config.server_port}"
    return f"{host} {host_key.type} {host_key.blob}\n"


def repository_url(config: ServerConfig | Endpoint) -> str:
    """Return the URL a client puts in BORG_REPO; relative to its directory, so it works anywhere."""
    host = f"[{config.server_host}]" if ":" in config.server_host else config.server_host
    return f"ssh://borg@{host}:{config.server_port}/./{REPOSITORY_NAME}"


def replicate_url(config: ServerConfig) -> str:
    """Return the REPLICATE_FROM a replica of this server sets."""
    host = f"[{config.server_host}]" if ":" in config.server_host else config.server_host
    return f"ssh://{commands.REPLICA_USER}@{host}:{config.server_port}"


def write_export(client: ClientSpec, generated: bool, host_key: PublicKey, paths: Paths, config: ServerConfig) -> None:
    """Write what a sidecar needs to pair: name, known_hosts, repository URL, a generated private key.

    An export directory that is a symlink or a file is left alone, with a warning (the export is not
    written); a directory, FIFO or symlink where one of its files belongs is skipped or replaced
    (safe_files.clear_for_write): nothing is written or chmod-ed through a symlink.
    """
    export = paths.client_export(client.name)
    files = pairing_files(client, host_key, config)
    if generated:
        files |= key_files(paths.client_keys(client.name) / "id_ed25519")
    if not write_files(client.name, "pairing export", export, files) or generated:
        return
    for stale in (export / "id_ed25519", export / "id_ed25519.pub"):
        if safe_files.describe(stale) != "a directory":
            stale.unlink(missing_ok=True)


def write_admin_export(client: ClientSpec, host_key: PublicKey, paths: Paths, config: ServerConfig) -> None:
    """Write what the client's admin service needs (ADMIN_KEY=generate): the sidecar's files, with the admin key.

    The same files and formats as write_export, into paths.admin_export, which only the admin service mounts.
    """
    files = pairing_files(client, host_key, config) | key_files(paths.admin_key(client.name))
    write_files(client.name, "admin export", paths.admin_export(client.name), files)


def pairing_files(client: ClientSpec, host_key: PublicKey, config: ServerConfig) -> dict[str, tuple[str, int]]:
    """Given a client and the host key, return the export's files without a key: {name: (content, mode)}."""
    return {
        "known_hosts": (known_hosts_line(host_key, config), 0o644),
        "repo_url": (repository_url(config) + "\n", 0o644),
        "client_name": (client.name + "\n", 0o644),
    }


def key_files(private_key: Path) -> dict[str, tuple[str, int]]:
    """Given a generated private key (read never through a symlink), return the export's id_ed25519 and .pub files."""
    return {
        "id_ed25519": (safe_files.read_regular(private_key, 64 * 1024).decode(errors="replace"), 0o600),
        "id_ed25519.pub": (
            safe_files.read_regular(Path(f"{private_key}.pub"), 64 * 1024).decode(errors="replace"),
            0o644,
        ),
    }


def write_files(client: str, what: str, export: Path, files: dict[str, tuple[str, int]]) -> bool:
    """Given an export directory and its files, write them (directory mode 700); return whether it could be written.

    An export directory that is a symlink or a file is left alone with a warning; an entry in the way
    of one of its files is skipped or replaced (safe_files.clear_for_write).
    """
    kind = safe_files.describe(export)
    if kind not in ("nothing", "a directory"):
        logger.warning(
            "client %s: %s is %s, not a directory; its %s is not written (remove it)", client, export, kind, what
        )
        return False
    if kind == "nothing":
        write_new_directory(export, files)
        return True
    if stat.S_IMODE(os.lstat(export).st_mode) == 0o700 and all(
        safe_files.holds(export / name, content.encode(), mode) for name, (content, mode) in files.items()
    ):
        return True  # as it was: the usual restart, one open per file
    export.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(export, 0o700)
    for name, (content, mode) in files.items():
        if safe_files.clear_for_write(export / name):
            atomic_write(export / name, content, mode, durable=False)  # derived: a torn one is rewritten next start
    return True


def write_new_directory(directory: Path, files: dict[str, tuple[str, int]]) -> None:
    """Given a directory that does not exist, make it (mode 700) with its files, all at once: written into a
    new temporary directory beside it, renamed into place. Half an export is never seen, and a new one
    costs a file system call per file fewer than a rename each."""
    try:
        temporary = tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.")
    except FileNotFoundError:
        directory.parent.mkdir(parents=True, exist_ok=True)
        temporary = tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.")
    for name, (content, mode) in files.items():
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(os.path.join(temporary, name), flags, mode), "wb") as file:
            os.fchmod(file.fileno(), mode)  # whatever the umask
            file.write(content.encode())
    os.rename(temporary, directory)
