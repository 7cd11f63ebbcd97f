"""The keypairs the server generates: made once, read back for the exports, removed when no longer asked for.

A client without a configured key, a client with ADMIN_KEY=generate and BORG_REPLICA_KEY=generate each
get a keypair the server makes in the state volume and exports (provision/pairing.py). What is found in their
place that is not a key file is never trusted: the client gets no key, with a warning saying what to
remove. Keys and exports of clients no longer configured are deleted; their data is kept.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from borg_common import files as safe_files
from borg_server.provision import pairing
from borg_server.records.configuration import ClientSpec, ServerConfig
from borg_server.system import commands
from borg_server.system.paths import Paths
from borg_server.system.ssh_keys import KeyProblem, PublicKey, parse_public_key

logger = logging.getLogger(__name__)


def generate_missing_keys(config: ServerConfig, paths: Paths) -> int:
    """Generate, once, the keypairs of clients without a configured key and the admin keypairs of clients
    with ADMIN_KEY=generate (in process: a thousand take well under a second); return how many."""
    missing = [paths.client_keys(c.name) / "id_ed25519" for c in config.clients if c.key is None]
    missing += [paths.admin_key(c.name) for c in config.clients if c.generate_admin_key]
    missing += [paths.replica_key] if config.replica_key and config.replica_key.generate else []
    generated = 0
    for private_key in missing:
        if not may_generate(private_key):
            continue
        private_key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        kind = "replica" if private_key == paths.replica_key else "client"
        kind = "admin" if private_key.name == paths.admin_key("x").name else kind
        commands.generate_keypair(private_key, f"borg-appliance {kind} {private_key.parent.name}")
        logger.info("client %s: generated %s key %s", private_key.parent.name, kind, private_key)
        generated += 1
    return generated


def may_generate(private_key: Path) -> bool:
    """Return whether a keypair is to be generated at private_key: nothing is there, in a real directory
    (or none yet). A symlink or other stray entry at the public key's place is removed first."""
    directory, public = private_key.parent, Path(f"{private_key}.pub")
    if (
        safe_files.describe(directory) not in ("nothing", "a directory")
        or safe_files.describe(private_key) != "nothing"
    ):
        return False  # a key is there already, or something generated_key warns about
    return safe_files.describe(directory) == "nothing" or safe_files.clear_for_write(public)


def generated_key(client: ClientSpec, paths: Paths) -> PublicKey | None:
    """Return the client's generated public key (made by generate_missing_keys); None, with a warning
    saying what to remove, if what is there is not a key file (a directory, symlink, garbage)."""
    return read_generated(client.name, "key", paths.client_keys(client.name) / "id_ed25519")


def generated_admin_key(
    client: ClientSpec, host_key: PublicKey, paths: Paths, config: ServerConfig
) -> PublicKey | None:
    """With ADMIN_KEY=generate, return the client's generated admin key and write its admin export; without,
    remove any generated admin keypair and admin export it had (a given admin key exports nothing)."""
    if not client.generate_admin_key:
        forget_admin_key(client.name, paths)
        return None
    key = read_generated(client.name, "admin key", paths.admin_key(client.name))
    if key is not None:
        pairing.write_admin_export(client, host_key, paths, config)
    return key


def replica_grant(config: ServerConfig, host_key: PublicKey, paths: Paths) -> PublicKey | None:
    """Return the key the replica reads with (BORG_REPLICA_KEY, or the generated one, exported for the replica);
    without BORG_REPLICA_KEY=generate, delete a generated replica keypair and its export."""
    setting = config.replica_key
    if setting is None or not setting.generate:
        for entry in (paths.replica_key, Path(f"{paths.replica_key}.pub")):
            if safe_files.describe(entry) == "a file":
                entry.unlink()
                logger.info("replica key: BORG_REPLICA_KEY is not generate; deleted %s", entry)
        if safe_files.is_real_directory(paths.replica_export):
            for item in paths.replica_export.iterdir():
                if not safe_files.is_real_directory(item):
                    item.unlink()
        return setting.key if setting else None
    key = read_generated("replica", "key", paths.replica_key)
    if key is not None:
        logger.info("replica key: %s (generated)", key.fingerprint)
        files = pairing.key_files(paths.replica_key) | {
            "known_hosts": (pairing.known_hosts_line(host_key, config), 0o644),
            "replicate_from": (pairing.replicate_url(config) + "\n", 0o644),
        }
        pairing.write_files("replica", "replica export", paths.replica_export, files)
    return key


def read_generated(name: str, what: str, private_key: Path) -> PublicKey | None:
    """Given a client's generated private key, return its public key; None, with a warning saying what to
    remove, if what is there is not a key file (a directory, symlink, garbage)."""
    public = Path(f"{private_key}.pub")
    try:
        if not safe_files.is_real_directory(public.parent):
            raise safe_files.NotRegular(f"{public.parent} is {safe_files.describe(public.parent)}, not a directory")
        key = parse_public_key(safe_files.read_regular(public, 64 * 1024).decode(errors="replace"))
        safe_files.read_regular(private_key, 64 * 1024).decode(errors="replace")  # exported next
    except (OSError, KeyProblem) as error:
        remove = public.parent if what == "key" else f"{private_key} and {public.name}"
        logger.warning(
            "client %s: its generated %s cannot be used (%s); the client gets no %s until %s is removed "
            "(a new %s is generated at the next start or reload)", name, what, error, what, remove, what,
        )  # fmt: skip
        return None
    logger.debug("client %s: %s %s (generated)", name, what, key.fingerprint)  # setup.apply counts them in one line
    return key


def forget_admin_key(name: str, paths: Paths) -> None:
    """Remove a client's generated admin keypair and its admin export (the entries themselves, never through
    a symlink); so switching ADMIN_KEY back to generate makes a new key, and the old one is gone for good."""
    admin_key, export = str(paths.admin_key(name)), str(paths.admin_export(name))
    if not any(os.path.lexists(entry) for entry in (admin_key, f"{admin_key}.pub", export)):
        return  # the usual case: nothing to remove, three lstat calls
    removed = False
    if safe_files.is_real_directory(paths.client_keys(name)):
        for entry in (paths.admin_key(name), Path(f"{paths.admin_key(name)}.pub")):
            if safe_files.describe(entry) not in ("nothing", "a directory"):
                entry.unlink()
                removed = True
    export = paths.admin_export(name)
    if safe_files.is_real_directory(export):
        removed = clear_directory(export) or removed
    elif safe_files.describe(export) != "nothing":
        logger.warning("%s: %s is not an admin export; skipped", export, safe_files.describe(export))
    if removed:
        logger.info("client %s: ADMIN_KEY is not generate; deleted its generated admin key and %s", name, export)


def clear_directory(directory: Path) -> bool:
    """Given a real directory, remove its regular files and symlinks (the links themselves), then itself if
    empty and not a mount point; a directory inside is skipped with a warning. Return whether anything went."""
    removed = False
    for item in sorted(directory.iterdir()):
        if safe_files.is_real_directory(item):
            logger.warning("%s: a directory where only files belong; skipped", item)
            continue
        item.unlink()
        removed = True
    try:
        directory.rmdir()
        removed = True
    except OSError:
        pass  # an export directory that is a volume's mount point stays, empty
    return removed


def forget_removed_clients(config: ServerConfig, paths: Paths) -> None:
    """Remove generated keys and exports of clients no longer configured; keep their data.

    Only regular files and symlinks (the links themselves) in a real directory are removed; anything
    else there, and every entry that is not a directory, is skipped with one warning line.
    """
    names = {client.name for client in config.clients}
    for parent in (paths.state / "clients", paths.state / "export", paths.state / "export-admin"):
        listed = os.listdir(parent) if safe_files.is_real_directory(parent) else []
        for entry in sorted(parent / name for name in listed if name not in names):  # Paths for the removed only
            if not safe_files.is_real_directory(entry):
                logger.warning("%s: %s is not a client's directory; skipped", entry, safe_files.describe(entry))
                continue
            clear_directory(entry)
            if entry.name.startswith("."):  # no client's name does: a new export a crash left half written
                logger.info("%s: a half-written export left by an interrupted start; deleted", entry)
            else:
                removed = "client %s: removed from the configuration; deleted %s (its data is kept)"
                logger.info(removed, entry.name, entry)
