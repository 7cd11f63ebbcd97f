"""Apply a validated configuration: directories, keys, exports, authorized_keys, sshd config.

Every step is idempotent and logs one line per decision. Nothing here validates user input:
that happened before (config.load), so a bad configuration never reaches this module.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from string import Template

from borg_common.files import atomic_write
from borg_server import accounts, authorized_keys, gate, ownership, pairing, safe_files, system
from borg_server.config import ClientSpec, ServerConfig
from borg_server.keys import KeyProblem, PublicKey, parse_public_key
from borg_server.paths import Paths

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent


def apply(config: ServerConfig, paths: Paths) -> None:
    """Given a validated configuration, bring the system in line with it."""
    system.ensure_account(config.puid, config.pgid)
    safe_files.ensure_real_directories(state_directories(paths))
    prepare_state(paths, config)
    ensure_client_accounts(config, paths)
    gate.prepare(paths, [client.name for client in config.clients])
    host_key = ensure_host_key(paths)
    write_sshd_config(config, paths)
    generate_missing_keys(config, paths)
    grants = []
    for client in config.clients:
        key = client.key or generated_key(client, paths)
        if key is None:
            continue  # warned: no grant, so nothing read from the state volume can keep or add a key
        pairing.write_export(client, key is not client.key, host_key, paths, config)
        grants += authorized_keys.grants_for(client, key)
    forget_removed_clients(config, paths)
    if atomic_write(paths.authorized_keys, authorized_keys.render(grants), 0o644):
        logger.info("authorized_keys: written with %d keys for %d clients", len(grants), len(config.clients))
    else:
        logger.info("authorized_keys: unchanged (%d keys)", len(grants))


def prepare_state(paths: Paths, config: ServerConfig) -> None:
    """Create the state directories and the audit log, root-owned (only the broker and root append to the log)."""
    for directory, mode in (
        (paths.state, 0o755),
        (paths.ssh, 0o755),
        (paths.audit_log.parent, 0o700),
        (paths.homes, 0o755),
        (paths.state / "clients", 0o700),
        (paths.state / "export", 0o755),
        (paths.runtime, 0o755),
        (paths.repositories, 0o755),
    ):
        directory.mkdir(parents=True, exist_ok=True)
        os.chown(directory, 0, 0)
        os.chmod(directory, mode)
    paths.audit_log.touch(mode=0o600, exist_ok=True)
    os.chown(paths.audit_log, 0, 0)
    os.chmod(paths.audit_log, 0o600)


def ensure_host_key(paths: Paths) -> PublicKey:
    """Generate the ed25519 host key once, fix its permissions, log its fingerprint; return it."""
    if not paths.host_key.exists():
        system.generate_keypair(paths.host_key, "borg-appliance host key")
        logger.info("host key: generated %s", paths.host_key)
    os.chmod(paths.host_key, 0o600)
    public = Path(f"{paths.host_key}.pub")
    os.chmod(public, 0o644)
    key = parse_public_key(public.read_text())
    logger.info("host key: ssh-ed25519 %s", key.fingerprint)
    return key


def write_sshd_config(config: ServerConfig, paths: Paths) -> None:
    """Render sshd's and supervisord's configuration from the checked-in templates; test sshd's."""
    values = {
        "port": config.ssh_port,
        "host_key": paths.host_key,
        "log_level": config.ssh_log_level,
        "authorized_keys": paths.authorized_keys,
        "sshd_config": paths.sshd_config,
        "audit_log": paths.audit_log,
    }
    for template, target in (
        ("sshd_config.template", paths.sshd_config),
        ("supervisord.conf", paths.supervisord_config),
    ):
        atomic_write(target, Template((TEMPLATES / template).read_text()).substitute(values), 0o644)
    system.test_sshd_config(paths.sshd_config)


def ensure_client_accounts(config: ServerConfig, paths: Paths) -> None:
    """Give every client its account (accounts.py), name them in /etc, own each client's files (ownership.py)."""
    recorded = accounts.ensure(paths, [client.name for client in config.clients], config.puid, config.pgid)
    accounts.write_entries(recorded.values(), paths)
    for client in config.clients:
        recorded[client.name] = ownership.ensure_client_tree(recorded[client.name], paths)
    accounts.save(paths.accounts, recorded)


def generate_missing_keys(config: ServerConfig, paths: Paths) -> None:
    """Generate, once, the keypairs of clients without a configured key; one ssh-keygen per core at a time."""
    missing = [paths.client_keys(c.name) / "id_ed25519" for c in config.clients if c.key is None]
    missing = [private_key for private_key in missing if may_generate(private_key)]

    def generate(private_key: Path) -> None:
        private_key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        system.generate_keypair(private_key, f"borg-appliance client {private_key.parent.name}")
        logger.info("client %s: generated key %s", private_key.parent.name, private_key)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(generate, missing))


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


def state_directories(paths: Paths) -> list[Path]:
    """Return the server's own directories in the state volume, parents first."""
    monitor = [paths.monitor, paths.monitor_state("x").parent, paths.monitor_outbox]
    return [paths.ssh, paths.audit_log.parent, paths.state / "clients", paths.state / "export", *monitor]


def generated_key(client: ClientSpec, paths: Paths) -> PublicKey | None:
    """Return the client's generated public key (made by generate_missing_keys); None, with a warning
    saying what to remove, if what is there is not a key file (a directory, symlink, garbage)."""
    public = paths.client_keys(client.name) / "id_ed25519.pub"
    try:
        if not safe_files.is_real_directory(public.parent):
            raise safe_files.Unexpected(f"{public.parent} is {safe_files.describe(public.parent)}, not a directory")
        key = parse_public_key(safe_files.read_regular(public, 64 * 1024))
        safe_files.read_regular(paths.client_keys(client.name) / "id_ed25519", 64 * 1024)  # exported next
    except (OSError, KeyProblem) as error:
        logger.warning(
            "client %s: its generated key cannot be used (%s); the client gets no key until %s is removed "
            "(a new key is generated at the next start or reload)", client.name, error, public.parent,
        )  # fmt: skip
        return None
    logger.info("client %s: key %s (generated)", client.name, key.fingerprint)
    return key


def forget_removed_clients(config: ServerConfig, paths: Paths) -> None:
    """Remove generated keys and exports of clients no longer configured; keep their data.

    Only regular files and symlinks (the links themselves) in a real directory are removed; anything
    else there, and every entry that is not a directory, is skipped with one warning line.
    """
    names = {client.name for client in config.clients}
    for parent in (paths.state / "clients", paths.state / "export"):
        for entry in sorted(parent.iterdir()):
            if entry.name in names:
                continue
            if not safe_files.is_real_directory(entry):
                logger.warning("%s: %s is not a client's directory; skipped", entry, safe_files.describe(entry))
                continue
            for item in sorted(entry.iterdir()):
                if safe_files.is_real_directory(item):
                    logger.warning("%s: a directory where only files belong; skipped", item)
                    continue
                item.unlink()
            try:
                entry.rmdir()
            except OSError:
                pass  # an export directory that is a volume's mount point stays, empty
            logger.info("client %s: removed from the configuration; deleted %s (its data is kept)", entry.name, entry)
