"""The authorized_keys files: one restricted line per client key, each forced into borg serve; the replica login's own.

The borg login's file holds every client key and the replica key (ssh://borg@primary works for the
replica too); the replica login's file (sshd_config: Match User replica) holds the replica key alone,
so no client key can log in as replica.
"""

from __future__ import annotations

from dataclasses import dataclass

from borg_server.records.configuration import ClientSpec
from borg_server.system.ssh_keys import PublicKey

SERVE_COMMAND = "/usr/local/bin/borg-server serve"
REPLICA_COMMAND = "/usr/local/bin/borg-server serve-replica"


@dataclass(frozen=True)
class Grant:
    """One key's access: which client, which role (append, full or admin), which key, what quota."""

    client: str
    role: str
    key: PublicKey
    quota: int | None = None
    max_sessions: int | None = None  # the client's sessions open at once (all its keys together)


def client_role(client: ClientSpec) -> str:
    """Given a client, return the role of its ordinary key: append unless append-only is off."""
    return "append" if client.append_only else "full"


def replica_line(key: PublicKey) -> str:
    """Given the replica key, return its authorized_keys line: `restrict`, forced into the reader of committed
    segments (sessions/replica_source.py), which can only list and read them."""
    return f'restrict,command="{REPLICA_COMMAND} --fingerprint {key.fingerprint}" {key.line}'


def key_line(grant: Grant) -> str:
    """Given a grant, return its authorized_keys line: `restrict` plus a forced command.

    `restrict` turns off forwarding of every kind, pty, X11, agent and ~/.ssh/rc; the forced
    command ignores whatever the client asks to run.
    """
    command = f"{SERVE_COMMAND} --client {grant.client} --role {grant.role} --fingerprint {grant.key.fingerprint}"
    if grant.quota is not None and grant.role != "admin":
        command += f" --quota {grant.quota}"
    if grant.max_sessions is not None:
        command += f" --max-sessions {grant.max_sessions}"
    return f'restrict,command="{command}" {grant.key.line}'


def grants_for(
    client: ClientSpec, key: PublicKey, admin_key: PublicKey | None = None, replica: bool = False
) -> list[Grant]:
    """Given a client, its ordinary key and its generated admin key (if any), return its grants.

    The admin role goes to the configured admin key, or else to admin_key (ADMIN_KEY=generate). On a
    replica the client's key reads only (role read) and there is no admin key (config refuses one).
    """
    if replica:
        return [Grant(client.name, "read", key, None, client.max_sessions)]
    grants = [Grant(client.name, client_role(client), key, client.quota, client.max_sessions)]
    admin = client.admin_key or admin_key
    if admin is not None:
        grants.append(Grant(client.name, "admin", admin, None, client.max_sessions))
    return grants


def render(grants: list[Grant], replica_key: PublicKey | None = None) -> str:
    """Given grants (and the replica key, if any), return the whole authorized_keys file."""
    header = "# Written by borg-server at every start from the configuration; edits here are lost.\n"
    replica = [replica_line(replica_key) + "\n"] if replica_key else []
    return header + "".join(key_line(grant) + "\n" for grant in grants) + "".join(replica)


def render_replica(replica_key: PublicKey | None) -> str:
    """Given the replica key (None: none), return the replica login's authorized_keys: that key's line alone."""
    header = "# Written by borg-server at every start: the replica key alone; edits here are lost.\n"
    return header + (replica_line(replica_key) + "\n" if replica_key else "")
