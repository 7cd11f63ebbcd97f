"""The figures of every client (`borg-server status`, metrics): the monitor's findings plus what is on disk now."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from borg_common import outbox
from borg_server.monitor import disk_alert
from borg_server.records import state_file
from borg_server.records.configuration import ServerConfig
from borg_server.repository import audit_log, disk_space
from borg_server.system import disk_usage
from borg_server.system.paths import Paths


@dataclass(frozen=True)
class ClientStatus:
    """One client's figures, shown by `borg-server status` and exported as metrics."""

    client: str
    last_backup: str | None
    age_s: int | None
    repository_bytes: int
    quota_bytes: int | None
    quota_used: float | None
    append_only: bool
    unacknowledged_deletes: int | None  # None: not watched (the client may delete)
    tampered_segments: int | None
    last_check_at: str | None
    last_check: str | None  # ok | failed | None (never checked)
    alerts: list[str]
    auto_compact: str | None = None  # AUTO_COMPACT: admin | off; None: not watched (the client may delete)
    pending_admin_deletes: int = 0  # unacknowledged deletes written by admin sessions (compacted by themselves)
    next_compaction_at: str | None = None  # the earliest an automatic compaction may run
    compaction_blocked: str | None = None  # why the monitor does not compact by itself
    last_compaction_at: str | None = None
    last_compaction_freed_bytes: int | None = None
    max_age_s: int | None = None  # BORG_CLIENT_<NAME>_MAX_AGE: older than this, the last backup is stale
    alert_messages: dict[str, str] = field(default_factory=dict)  # each raised alert's message, as sent


@dataclass(frozen=True)
class ServerStatus:
    """The server's own figures: the repositories' file system and the server's alerts (e.g. disk)."""

    path: str
    total_bytes: int
    free_bytes: int
    used_ratio: float
    reserve_bytes: int
    alerts: list[str]
    alert_messages: dict[str, str] = field(default_factory=dict)
    notifications_waiting: int = 0  # in the notifications' outbox: not yet taken by every NOTIFY_URLS service


def server_status(config: ServerConfig, paths: Paths) -> ServerStatus:
    """Given the configuration, return the repositories' file system measured now, the server's raised alerts and
    the notifications waiting for delivery."""
    usage = disk_space.measure(paths.repositories, config.disk_reserve)
    raised = disk_alert.load(paths.monitor_server_state).alerts
    messages = {kind: raised[kind].message for kind in sorted(raised)}
    return ServerStatus(
        usage.path,
        usage.total_bytes,
        usage.free_bytes,
        usage.used_ratio,
        usage.reserve_bytes,
        sorted(raised),
        messages,
        outbox.size(paths.notify_outbox),
    )


def collect(config: ServerConfig, paths: Paths, now: datetime | None = None) -> list[ClientStatus]:
    """Given the configuration, return every client's status: the monitor's findings plus what is on disk now.

    The last backup also counts sessions the monitor has not read yet (those that added data); the size is
    measured now.
    """
    now = now or datetime.now(UTC)
    offset = audit_log.read_position(paths.monitor_position).get("audit_offset", 0)
    recent, _ = audit_log.read_sessions(paths.audit_log, offset)
    result = []
    for client in config.clients:
        found = state_file.load(paths.monitor_state(client.name))
        last = audit_log.last_backup(found.last_backup, recent, client.name, paths.client_repository(client.name))
        size = disk_usage.directory_size(paths.client_directory(client.name))
        check, retention = found.check, found.retention
        compacted = retention.last
        result.append(
            ClientStatus(
                client=client.name,
                last_backup=last,
                age_s=int((now - datetime.fromisoformat(last)).total_seconds()) if last else None,
                repository_bytes=size,
                quota_bytes=client.quota,
                quota_used=round(size / client.quota, 4) if client.quota else None,
                append_only=client.append_only,
                unacknowledged_deletes=found.pending_deletes() if client.append_only else None,
                tampered_segments=found.tampered_files if client.append_only else None,
                last_check_at=check.at if check else None,
                last_check=("ok" if check.ok else "failed") if check else None,
                alerts=sorted(found.alerts),
                auto_compact=client.auto_compact if client.append_only else None,
                pending_admin_deletes=retention.pending_admin,
                next_compaction_at=retention.next_at,
                compaction_blocked=retention.blocked,
                last_compaction_at=compacted.at if compacted else None,
                last_compaction_freed_bytes=None if compacted is None or compacted.failed else compacted.bytes_freed,
                max_age_s=client.max_age,
                alert_messages={kind: found.alerts[kind].message for kind in sorted(found.alerts)},
            )
        )
    return result
