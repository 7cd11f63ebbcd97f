"""Apply a validated configuration: state directories, accounts, host key, exports, authorized_keys, sshd config.

Every step is idempotent and logs one line per decision. Nothing here validates user input:
that happened before (config.load), so a bad configuration never reaches this module.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from string import Template

from borg_common import files
from borg_common.files import atomic_write, sync_filesystem
from borg_server.provision import authorized_keys, generated_keys, pairing
from borg_server.records import state_file
from borg_server.records.configuration import ServerConfig
from borg_server.repository import gate, watch
from borg_server.system import accounts, commands, ownership
from borg_server.system.host_key import GivenHostKey, repair_kept_host_key
from borg_server.system.paths import Paths
from borg_server.system.ssh_keys import PublicKey, parse_public_key

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent


def apply(config: ServerConfig, paths: Paths) -> None:
    """Given a validated configuration, bring the system in line with it."""
    commands.ensure_account(config.puid, config.pgid)
    commands.ensure_replica_account()
    files.ensure_real_directories(state_directories(paths))
    prepare_state(paths, config)
    ensure_client_accounts(config, paths)
    if config.replication is None:
        adopt_promoted_copies(config, paths)
    gate.prepare(paths, [client.name for client in config.clients])
    host_key = ensure_host_key(paths, config.host_key)
    write_sshd_config(config, paths)
    generated = generated_keys.generate_missing_keys(config, paths)
    if generated:
        sync_filesystem(paths.state)  # the new keys, in one go rather than two fsyncs each
    grants, kept = [], 0
    for client in config.clients:
        admin_key = generated_keys.generated_admin_key(client, host_key, paths, config)
        key = client.key or generated_keys.generated_key(client, paths)
        if key is None:
            continue  # warned: no grant, so nothing read from the state volume can keep or add a key
        pairing.write_export(client, key is not client.key, host_key, paths, config)
        grants += authorized_keys.grants_for(client, key, admin_key, replica=config.replication is not None)
        kept += key is not client.key
    logger.info("clients: %d with a configured key, %d with a generated one; %d keypairs generated at this start",
                sum(client.key is not None for client in config.clients), kept, generated)  # fmt: skip
    generated_keys.forget_removed_clients(config, paths)
    replica_key = generated_keys.replica_grant(config, host_key, paths)
    atomic_write(paths.replica_authorized_keys, authorized_keys.render_replica(replica_key), 0o644)
    if atomic_write(paths.authorized_keys, authorized_keys.render(grants, replica_key), 0o644):
        logger.info("authorized_keys: written with %d keys for %d clients%s", len(grants), len(config.clients),
                    " and the replica key" if replica_key else "")  # fmt: skip
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
        (paths.state / "export-admin", 0o755),
        (paths.replica_key.parent, 0o700),
        (paths.replica_export, 0o755),
        (paths.runtime, 0o755),
        (paths.volatile, 0o700),
        (paths.repositories, 0o755),
    ):
        directory.mkdir(parents=True, exist_ok=True)
        os.chown(directory, 0, 0)
        os.chmod(directory, mode)
    files.ensure_file(paths.audit_log, 0o600)  # never through a symlink: the broker appends to it


def ensure_host_key(paths: Paths, given: GivenHostKey | None = None) -> PublicKey:
    """Put the host key in place, fix its permissions, log its fingerprint; return it.

    Given one (BORG_HOST_KEY_FILE), it is copied into place with mode 600, as sshd requires, and its public
    key derived with ssh-keygen -y; without, an ed25519 key is generated once and kept in the state volume.
    """
    public = Path(f"{paths.host_key}.pub")
    repair_kept_host_key(paths.host_key)  # a symlink, directory or garbage there is moved aside
    if given is not None:
        replaced = paths.host_key.exists()
        if atomic_write(paths.host_key, given.text, 0o600) and replaced:
            logger.warning("host key: replaced by %s's; clients must pin the new one (known_hosts)", given.label)
        elif replaced is False:
            logger.info("host key: written from %s", given.label)
        atomic_write(public, commands.checked(["ssh-keygen", "-y", "-f", str(paths.host_key)]) + "\n", 0o644)
    elif not paths.host_key.exists():
        commands.generate_keypair(paths.host_key, "borg-appliance host key")
        logger.info("host key: generated %s", paths.host_key)
    os.chmod(paths.host_key, 0o600)
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
        "replica_authorized_keys": paths.replica_authorized_keys,
        "sshd_config": paths.sshd_config,
        "audit_log": paths.audit_log,
        "supervisor_socket": paths.supervisor_socket,
        "supervisord_pid": paths.supervisord_pid,
    }
    for template, target in (
        ("sshd_config.template", paths.sshd_config),
        ("supervisord.conf", paths.supervisord_config),
    ):
        text = Template((TEMPLATES / template).read_text()).substitute(values)
        atomic_write(target, text, 0o644, durable=False)  # in /run, made again at every start
    commands.test_sshd_config(paths.sshd_config)


def ensure_client_accounts(config: ServerConfig, paths: Paths) -> None:
    """Give every client its account (system/accounts.py), name them in /etc, own each client's files
    (system/ownership.py)."""
    recorded = accounts.ensure(paths, [client.name for client in config.clients], config.puid, config.pgid)
    accounts.write_entries(recorded.values(), paths)
    for client in config.clients:
        if config.replication is None:
            recorded[client.name] = ownership.ensure_client_tree(recorded[client.name], paths)
        else:  # a replica's copy is root's; the client's account may only read it
            ownership.ensure_private_directory(paths.client_home(client.name), recorded[client.name])
            ownership.own_replica_copy(paths, client.name, recorded[client.name].gid)
    accounts.save(paths.accounts, recorded)


def adopt_promoted_copies(config: ServerConfig, paths: Paths) -> None:
    """On a primary, make every client's copy left by a replica (this server was one: promoted) the monitor's
    (repository/watch.py adopt_copy); log where its review of deletes continues."""
    for client in config.clients:
        if not paths.monitor_state(client.name).is_file():
            continue
        with state_file.locked(paths.monitor_state(client.name)) as found:
            if found.replica is None:
                continue
            through = watch.adopt_copy(found, paths.client_repository(client.name))
        if through is None:
            logger.warning("client %s: a replica's copy, now this primary's; its whole history is reviewed for "
                           "deletes (borg-server audit %s)", client.name, client.name)  # fmt: skip
        else:
            logger.info("client %s: a replica's copy, now this primary's; the deletes the old primary reviewed "
                        "through segment %d are not reported again", client.name, through)  # fmt: skip


def state_directories(paths: Paths) -> list[Path]:
    """Return the server's own directories in the state volume, parents first."""
    monitor = [paths.monitor, paths.monitor_state("x").parent, paths.monitor_outbox, paths.notify_outbox]
    exports = [paths.state / "export", paths.state / "export-admin", paths.replica_export, paths.replica_key.parent]
    return [paths.ssh, paths.audit_log.parent, paths.homes, paths.state / "clients", *exports, *monitor]
