"""The authorized_keys file: one restricted line per client key, each forced into borg serve."""

from __future__ import annotations

from dataclasses import dataclass

from borg_server.config import ClientSpec
from borg_server.keys import PublicKey

SERVE_COMMAND = "/usr/local/bin/borg-server serve"


@dataclass(frozen=True)
class Grant:
    """One key's access: which client, which role (append, full or admin), which key, what quota."""

    client: str
    role: str
    key: PublicKey
    quota: int | None = None


def client_role(client: ClientSpec) -> str:
    """Given a client, return the role of its ordinary key: append unless append-only is off."""
    return "append" if client.append_only else "full"


def key_line(grant: Grant) -> str:
    """Given a grant, return its authorized_keys line: `restrict` plus a forced command.

    `restrict` turns off forwarding of every kind, pty, X11, agent and ~/.ssh/rc; the forced
    command ignores whatever the client asks to run.
    """
    command = f"{SERVE_COMMAND} --client {grant.client} --role {grant.role} --fingerprint {grant.key.fingerprint}"
    if grant.quota is not None and grant.role != "admin":
        command += f" --quota {grant.quota}"
    return f'restrict,command="{command}" {grant.key.line}'


def grants_for(client: ClientSpec, key: PublicKey, admin_key: PublicKey | None = None) -> list[Grant]:
    """Given a client, its ordinary key and its generated admin key (if any), return its grants.

    The admin role goes to the configured admin key, or else to admin_key (ADMIN_KEY=generate).
    """
    grants = [Grant(client.name, client_role(client), key, client.quota)]
    admin = client.admin_key or admin_key
    if admin is not None:
        grants.append(Grant(client.name, "admin", admin))
    return grants


def render(grants: list[Grant]) -> str:
    """Given grants, return the whole authorized_keys file."""
    header = "# Written by borg-server at every start from the configuration; edits here are lost.\n"
    return header + "".join(key_line(grant) + "\n" for grant in grants)
