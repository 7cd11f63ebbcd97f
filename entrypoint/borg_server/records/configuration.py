"""The validated configuration's records: what every feature reads, without the reader that makes them.

config/ reads and validates the settings (environment, BORG_SERVER_CONFIG's YAML) into these; everything
else imports only these records, so that a feature does not pull in the YAML reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from borg_common.digest import DEFAULT_CRON as DEFAULT_DIGEST_CRON
from borg_common.notify import Notify
from borg_server.system.host_key import GivenHostKey
from borg_server.system.ssh_keys import PublicKey

DEFAULT_DISK_ALERT_USED = 90  # percent
DEFAULT_COMPACT_DELAY = 86400  # time to read a deletes alert and act on it
DEFAULT_SNAPSHOT_KEEP = 7 * 86400  # how long the monitor keeps a snapshot
DEFAULT_MAX_SESSIONS = 8  # sessions a client may have open at once: a backup, a check, a prune, a restore, …
MAXIMUM_SESSIONS = 1000  # MAX_SESSIONS' upper bound


@dataclass(frozen=True)
class ClientSpec:
    """One client: its name, its keys (None: the server generates a key pair) and its limits."""

    name: str
    env_name: str
    key: PublicKey | None
    admin_key: PublicKey | None
    quota: int | None
    append_only: bool
    max_age: int
    auto_compact: str = "admin"  # one of AUTO_COMPACT
    generate_admin_key: bool = False  # ADMIN_KEY=generate: the server makes the admin keypair and exports it
    max_sessions: int = DEFAULT_MAX_SESSIONS  # MAX_SESSIONS, or BORG_CLIENT_<NAME>_MAX_SESSIONS


@dataclass(frozen=True)
class ReplicaKey:
    """The primary's grant to a replica: its public key, or None when the server generates it (generate)."""

    key: PublicKey | None
    generate: bool


@dataclass(frozen=True)
class Replication:
    """A replica's settings: where its primary is, how it is pinned and reached, when and how it copies."""

    user: str
    host: str  # bare, without brackets around IPv6
    port: int
    host_key: PublicKey
    ssh_key_file: Path
    cron: str
    keep_removed: int  # seconds a segment removed by a compaction on the primary is still kept here
    max_lag: int  # seconds since the last complete copy before the replica_lag alert

    @property
    def known_hosts_line(self) -> str:
        """The pinned primary host key, as a known_hosts line for the host and port of REPLICATE_FROM."""
        host = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        return f"{host} {self.host_key.type} {self.host_key.blob}\n"


@dataclass(frozen=True)
class ServerConfig:
    """The validated server configuration; server_host is bare (no brackets around IPv6)."""

    clients: tuple[ClientSpec, ...]
    server_host: str
    server_port: int
    ssh_port: int
    puid: int
    pgid: int
    ssh_log_level: str
    monitor_interval: int
    check_interval: int
    metrics_port: int | None
    report_urls: tuple[str, ...]
    status_port: int | None = None  # STATUS_PORT: the status page (status/page.py); None: off
    status_password: str | None = field(default=None, repr=False)  # STATUS_PASSWORD(_FILE); None: none asked
    log_level: str = "INFO"  # LOG_LEVEL: one of Python's logging levels, upper case
    disk_alert_used: float = DEFAULT_DISK_ALERT_USED / 100  # DISK_ALERT_USED as a share
    disk_reserve: int | None = None  # DISK_RESERVE in bytes; None: the default (disk_space.reserve_size)
    compact_delay: int = DEFAULT_COMPACT_DELAY  # COMPACT_DELAY: the newest admin delete is this old first
    snapshot_keep: int = DEFAULT_SNAPSHOT_KEEP  # SNAPSHOT_KEEP: an automatic compaction's snapshot is kept this long
    host_key: GivenHostKey | None = None  # BORG_HOST_KEY_FILE; None: generated once in the state volume
    replica_key: ReplicaKey | None = None  # BORG_REPLICA_KEY: a replica may read every repository
    replication: Replication | None = None  # REPLICATE_FROM: this server is a replica of that one
    notify: Notify = Notify()  # NOTIFY_URLS, NOTIFY_ON: the alerts, for a person (borg_common.notify)
    digest_cron: str | None = DEFAULT_DIGEST_CRON  # DIGEST_CRON (borg_common.digest); None: off


@dataclass(frozen=True)
class Endpoint:
    """Where clients reach the server and the host key they pin: what pairing needs, without any client."""

    server_host: str
    server_port: int
    host_key: GivenHostKey | None
