"""What `borg-server status` and `show-client` print: per-client facts read from disk."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from borg_server import setup
from borg_server.config import ServerConfig
from borg_server.keys import parse_public_key
from borg_server.paths import Paths

WRITE_ROLES = ("append", "full")


@dataclass(frozen=True)
class ClientStatus:
    """One client's line in the status table."""

    client: str
    last_backup: str | None
    repository_bytes: int
    quota_bytes: int | None
    append_only: bool
    sessions: int


def directory_size(path: Path) -> int:
    """Return the bytes used by the files below path (0 if it does not exist)."""
    total = 0
    for root, _directories, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def read_sessions(audit_log: Path) -> list[dict]:
    """Return the audit log's session records; unreadable lines are skipped."""
    records = []
    try:
        lines = audit_log.read_text(errors="replace").splitlines()
    except OSError:
        return records
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def collect(config: ServerConfig, paths: Paths) -> list[ClientStatus]:
    """Given the configuration, return every client's status."""
    sessions = read_sessions(paths.audit_log)
    result = []
    for client in config.clients:
        own = [record for record in sessions if record.get("client") == client.name]
        writes = [r for r in own if r.get("role") in WRITE_ROLES and r.get("exit_code") == 0]
        result.append(
            ClientStatus(
                client=client.name,
                last_backup=writes[-1]["finished_at"] if writes else None,
                repository_bytes=directory_size(paths.client_directory(client.name)),
                quota_bytes=client.quota,
                append_only=client.append_only,
                sessions=len(own),
            )
        )
    return result


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    if size < 1000:
        return f"{size} B"
    for unit in ("kB", "MB", "GB", "TB"):
        size /= 1000
        if round(size, 1) < 1000 or unit == "TB":
            return f"{size:.1f} {unit}"
    return str(size)


def render(statuses: list[ClientStatus], as_json: bool = False) -> str:
    """Return statuses as JSON or as an aligned table."""
    if as_json:
        return json.dumps([asdict(status) for status in statuses], indent=2)
    rows = [("CLIENT", "LAST BACKUP", "SIZE", "QUOTA", "APPEND-ONLY", "SESSIONS")]
    for s in statuses:
        rows.append(
            (s.client, s.last_backup or "never", human_size(s.repository_bytes), human_size(s.quota_bytes),
             "yes" if s.append_only else "no", str(s.sessions))
        )  # fmt: skip
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def pinned_host_line(config: ServerConfig, paths: Paths) -> str:
    """Return the known_hosts line a client pins, or a hint if the host key does not exist yet."""
    public = Path(f"{paths.host_key}.pub")
    if not public.exists():
        return "(no host key yet: start the server once)"
    return setup.known_hosts_line(parse_public_key(public.read_text()), config).strip()


def show_client(config: ServerConfig, paths: Paths, name: str) -> str | None:
    """Return a client's public key, fingerprint and repository URL, or None if not configured."""
    client = next((client for client in config.clients if client.name == name), None)
    if client is None:
        return None
    key = client.key
    origin = "configured"
    if key is None:
        public = paths.client_keys(name) / "id_ed25519.pub"
        key = parse_public_key(public.read_text()) if public.exists() else None
        origin = f"generated, exported to {paths.client_export(name)}"
    lines = [
        f"client:         {client.name}",
        f"public key:     {key.line if key else '(not generated yet: start the server once)'}",
        f"fingerprint:    {key.fingerprint if key else '-'}  ({origin})",
        f"admin key:      {client.admin_key.fingerprint if client.admin_key else '-'}",
        f"repository URL: {setup.repository_url(config)}",
        f"known_hosts:    {pinned_host_line(config, paths)}",
        f"directory:      {paths.client_directory(name)}",
        f"append-only:    {'yes' if client.append_only else 'no'}",
        f"quota:          {human_size(client.quota)}",
    ]
    return "\n".join(lines)
