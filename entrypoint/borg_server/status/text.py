"""What `borg-server status` and `show-client` print: the clients' figures as a table or JSON, one client's pairing."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from borg_common import files
from borg_common.values import human_size
from borg_server.provision import pairing
from borg_server.records.configuration import ClientSpec, ServerConfig
from borg_server.status import tables
from borg_server.status.facts import ClientStatus, ServerStatus
from borg_server.system import accounts
from borg_server.system.paths import Paths
from borg_server.system.ssh_keys import KeyProblem, parse_public_key


def render(statuses: list[ClientStatus], as_json: bool = False, server: ServerStatus | None = None) -> str:
    """Return statuses as JSON or as an aligned table; with server, its line follows the table.

    JSON with server is {"server": ..., "clients": [...]}; without, the list of clients alone (as before).
    """
    if as_json:
        clients = [asdict(status) for status in statuses]
        return json.dumps(clients if server is None else {"server": asdict(server), "clients": clients}, indent=2)
    table = client_table(statuses)
    return table if server is None else f"{table}\n\n{server_line(server)}"


def server_line(server: ServerStatus) -> str:
    """Return the server's figures in one line: the repositories' disk, the room kept, its alerts, the notifications
    waiting for delivery."""
    return (
        f"SERVER DISK {server.path}: {human_size(server.free_bytes)} free of {human_size(server.total_bytes)} "
        f"({server.used_ratio:.0%} used), {human_size(server.reserve_bytes)} kept for clean-up; "
        f"alerts: {','.join(server.alerts) or '-'}; notifications waiting: {server.notifications_waiting}"
    )


def client_table(statuses: list[ClientStatus]) -> str:
    """Return the clients' figures as an aligned table, one row per client."""
    rows = [("CLIENT", "LAST BACKUP", "AGE", "SIZE", "QUOTA", "APPEND-ONLY", "DELETES", "CHECK", "ALERTS",
             "AUTO-COMPACT", "ADMIN DELETES", "NEXT COMPACTION", "LAST FREED")]  # fmt: skip
    for s in statuses:
        quota = f"{human_size(s.quota_bytes)} ({s.quota_used:.0%})" if s.quota_bytes else "-"
        check = f"{s.last_check} {s.last_check_at}" if s.last_check else "never"
        deletes = "-" if s.unacknowledged_deletes is None else str(s.unacknowledged_deletes)
        freed = "-" if s.last_compaction_freed_bytes is None else human_size(s.last_compaction_freed_bytes)
        rows.append(
            (s.client, s.last_backup or "never", human_age(s.age_s), human_size(s.repository_bytes), quota,
             "yes" if s.append_only else "no", deletes, check, ",".join(s.alerts) or "-", s.auto_compact or "-",
             str(s.pending_admin_deletes), next_compaction(s), freed)
        )  # fmt: skip
    return tables.render(rows)


def next_compaction(s: ClientStatus) -> str:
    """Return when the client's deletes may compact by themselves: a time, "blocked", or "-" (nothing to do)."""
    if s.auto_compact != "admin":
        return "-"
    return "blocked" if s.compaction_blocked else s.next_compaction_at or "-"


def human_age(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    return f"{days}d {hours}h" if days else f"{hours}h {rest // 60}m" if hours else f"{rest // 60}m {rest % 60}s"


def pinned_host_line(config: ServerConfig, paths: Paths) -> str:
    """Return the known_hosts line a client pins, or a hint if the host key does not exist yet."""
    try:
        key = parse_public_key(files.read_regular(Path(f"{paths.host_key}.pub"), 64 * 1024).decode(errors="replace"))
    except (OSError, KeyProblem):
        return "(no host key yet: start the server once)"
    return pairing.known_hosts_line(key, config).strip()


def account_line(paths: Paths, name: str) -> str:
    """Return the client's Unix account (user name and uid) that its sessions run as."""
    try:
        account = accounts.lookup(paths, name)
    except (accounts.UnknownClient, OSError) as error:
        return f"- ({error})"
    return f"{account.user} (uid {account.uid}, gid {account.gid})"


def admin_key_line(client: ClientSpec, paths: Paths) -> str:
    """Return the fingerprint of the client's admin key (configured or generated) and where it comes from, or -."""
    if client.admin_key is not None:
        return f"{client.admin_key.fingerprint}  (configured)"
    if not client.generate_admin_key:
        return "-"
    try:
        key = parse_public_key(
            files.read_regular(Path(f"{paths.admin_key(client.name)}.pub"), 64 * 1024).decode(errors="replace")
        )
    except (OSError, KeyProblem):
        return "(not generated yet: start the server once)"
    return f"{key.fingerprint}  (generated, exported to {paths.admin_export(client.name)})"


def show_client(config: ServerConfig, paths: Paths, name: str) -> str | None:
    """Return a client's public key, fingerprint and repository URL, or None if not configured."""
    client = next((client for client in config.clients if client.name == name), None)
    if client is None:
        return None
    key = client.key
    origin = "configured"
    if key is None:
        try:
            key = parse_public_key(
                files.read_regular(paths.client_keys(name) / "id_ed25519.pub", 64 * 1024).decode(errors="replace")
            )
        except (OSError, KeyProblem):
            key = None
        origin = f"generated, exported to {paths.client_export(name)}"
    lines = [
        f"client:         {client.name}",
        f"public key:     {key.line if key else '(not generated yet: start the server once)'}",
        f"fingerprint:    {key.fingerprint if key else '-'}  ({origin})",
        f"admin key:      {admin_key_line(client, paths)}",
        f"repository URL: {pairing.repository_url(config)}",
        f"known_hosts:    {pinned_host_line(config, paths)}",
        f"directory:      {paths.client_directory(name)}",
        f"account:        {account_line(paths, name)}",
        f"append-only:    {'yes' if client.append_only else 'no'}",
        f"quota:          {human_size(client.quota)}",
    ]
    return "\n".join(lines)
