"""The replication settings: the primary's replica key (BORG_REPLICA_KEY) and a replica's REPLICATE_* settings.

A primary grants one key read access to every client's committed segments (sessions/replica_source.py). A
server with REPLICATE_FROM is a replica: it pulls every repository from that primary on REPLICATE_CRON
(replica/copy.py) and gives its clients' keys read access only.
"""

from __future__ import annotations

import re
from pathlib import Path

from borg_common import cron
from borg_common.settings import Settings
from borg_common.values import cut
from borg_server.config.clients import GENERATE
from borg_server.records.configuration import ClientSpec, ReplicaKey, Replication
from borg_server.system.ssh_keys import KeyProblem, PublicKey, parse_public_key

DEFAULT_CRON = "0 * * * *"  # hourly: a day's backups reach the replica within the hour
DEFAULT_KEEP_REMOVED, MAXIMUM_KEEP_REMOVED = 7 * 86400, 365 * 86400
DEFAULT_MAX_LAG, MINIMUM_MAX_LAG, MAXIMUM_MAX_LAG = 26 * 3600, 60, 52 * 7 * 86400
SSH_URL = re.compile(r"ssh://(?P<user>[a-z_][a-z0-9_-]{0,31})@(?P<host>[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])"
                     r"(?::(?P<port>[0-9]{1,5}))?/?")  # fmt: skip


def read_replica_key(settings: Settings) -> ReplicaKey | None:
    """Return BORG_REPLICA_KEY (None if unset); record a bad key."""
    text = settings.string("BORG_REPLICA_KEY")
    if text is None:
        return None
    if text.strip() == GENERATE:
        return ReplicaKey(None, True)
    try:
        return ReplicaKey(parse_public_key(text), False)
    except KeyProblem as problem:
        settings.problem(settings.label("BORG_REPLICA_KEY"), str(problem))
        return None


def read_replication(settings: Settings) -> Replication | None:
    """Return the replica's settings if REPLICATE_FROM is set (None if not); record every bad or missing one."""
    url = settings.string("REPLICATE_FROM")
    if url is None:
        for name in ("REPLICATE_HOST_KEY", "REPLICATE_SSH_KEY_FILE", "REPLICATE_CRON", "REPLICA_KEEP_REMOVED",
                     "REPLICA_MAX_LAG"):  # fmt: skip
            if settings.is_set(name):
                settings.problem(settings.label(name), "is set, but REPLICATE_FROM is not: this server is no replica")
        return None
    match = SSH_URL.fullmatch(url.strip())
    if match is None or not 1 <= int(match["port"] or 22) <= 65535:
        settings.problem(
            settings.label("REPLICATE_FROM"), "is not ssh://user@host[:port] (e.g. ssh://replica@primary:22)"
        )
    host_key = _host_key(settings)
    key_file = settings.string("REPLICATE_SSH_KEY_FILE", limit=4096)
    if key_file is None:
        settings.problem("REPLICATE_SSH_KEY_FILE", "is required with REPLICATE_FROM: the replica key's private half")
    elif not Path(key_file).is_file():
        shown = cut(settings.shown("REPLICATE_SSH_KEY_FILE", key_file, quote=False))  # a file's text: never quoted
        settings.problem(settings.label("REPLICATE_SSH_KEY_FILE"), f"{shown} is not a readable file")
    schedule = settings.string("REPLICATE_CRON", DEFAULT_CRON)
    cron.check(settings, "REPLICATE_CRON", schedule)
    keep = settings.duration("REPLICA_KEEP_REMOVED", DEFAULT_KEEP_REMOVED, 0, MAXIMUM_KEEP_REMOVED)
    lag = settings.duration("REPLICA_MAX_LAG", DEFAULT_MAX_LAG, MINIMUM_MAX_LAG, MAXIMUM_MAX_LAG)
    if match is None or host_key is None or key_file is None:
        return None
    host = match["host"].strip("[]")
    return Replication(match["user"], host, int(match["port"] or 22), host_key, Path(key_file), schedule, keep, lag)


def _host_key(settings: Settings) -> PublicKey | None:
    """Return REPLICATE_HOST_KEY: the primary's host public key, alone or as a known_hosts line."""
    text = settings.string("REPLICATE_HOST_KEY")
    if text is None:
        settings.problem("REPLICATE_HOST_KEY", "is required with REPLICATE_FROM: the primary's pinned host key")
        return None
    fields = text.split()
    if len(fields) >= 3 and fields[1].startswith(("ssh-", "ecdsa-", "sk-")):  # a known_hosts line: host first
        fields = fields[1:]
    try:
        return parse_public_key(" ".join(fields[:2]))
    except KeyProblem as problem:
        settings.problem(settings.label("REPLICATE_HOST_KEY"), str(problem))
        return None


def check_replica_clients(settings: Settings, clients: list[ClientSpec], replica_key: ReplicaKey | None) -> None:
    """On a replica, record what would let anyone write: an admin key, a client that may delete, a replica key."""
    if replica_key is not None:
        settings.problem("BORG_REPLICA_KEY", "is set on a replica (REPLICATE_FROM); a replica serves no replica")
    for client in clients:
        if client.admin_key or client.generate_admin_key:
            settings.problem(
                f"BORG_CLIENT_{client.env_name}_ADMIN_KEY", "is set on a replica; no key can write to a replica"
            )
        if not client.append_only:
            settings.problem(
                f"BORG_CLIENT_{client.env_name}_APPEND_ONLY", "is no on a replica; no key can write to a replica"
            )
