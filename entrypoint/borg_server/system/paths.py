"""Where the server keeps everything; one record so tests can point it at a temporary tree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPOSITORY_NAME = "main"


@dataclass(frozen=True)
class Paths:
    """The server's directories: repositories, persistent state and run-time files."""

    repositories: Path = Path("/srv/borg")
    state: Path = Path("/var/lib/borg-server")
    runtime: Path = Path("/run/borg-server")
    # supervisord's socket and pid file, the gate files: on the container's tmpfs, emptied at every start. In
    # /run, on fuse-overlayfs, a socket left by a killed container could not be unlinked and supervisord looped.
    volatile: Path = Path("/dev/shm/borg-server")

    @property
    def ssh(self) -> Path:
        """Host keys and authorized_keys: root-owned, outside every client directory."""
        return self.state / "ssh"

    @property
    def host_key(self) -> Path:
        return self.ssh / "ssh_host_ed25519_key"

    @property
    def authorized_keys(self) -> Path:
        return self.ssh / "authorized_keys"

    @property
    def replica_authorized_keys(self) -> Path:
        """The replica login's own authorized_keys: the replica key's line alone (sshd_config's Match User)."""
        return self.ssh / "authorized_keys-replica"

    @property
    def audit_log(self) -> Path:
        """One JSON line per SSH session, appended by the session broker (root; the file is root's, mode 600)."""
        return self.state / "audit" / "sessions.jsonl"

    @property
    def accounts(self) -> Path:
        """The registry of client accounts (uid per client, never reused; system/accounts.py), root-only."""
        return self.state / "accounts.json"

    @property
    def broker_directory(self) -> Path:
        """The session broker's socket directory: only root and the borg login account can enter it."""
        return self.runtime / "broker"

    @property
    def broker_socket(self) -> Path:
        return self.broker_directory / "broker.sock"

    @property
    def sshd_config(self) -> Path:
        return self.runtime / "sshd_config"

    @property
    def supervisord_config(self) -> Path:
        return self.runtime / "supervisord.conf"

    @property
    def supervisor_socket(self) -> Path:
        return self.volatile / "supervisor.sock"

    @property
    def supervisord_pid(self) -> Path:
        return self.volatile / "supervisord.pid"

    def client_directory(self, name: str) -> Path:
        """The client's own directory: the only place its key can reach."""
        return self.repositories / name

    def client_repository(self, name: str) -> Path:
        return self.repositories / name / REPOSITORY_NAME

    @property
    def homes(self) -> Path:
        return self.state / "homes"

    def client_home(self, name: str) -> Path:
        """HOME (and borg's base directory) of the client's account: borg's security dir and cache for its checks."""
        return self.homes / name

    def client_keys(self, name: str) -> Path:
        """Where a generated client keypair is kept (the master copy, never exported from here)."""
        return self.state / "clients" / name

    def client_export(self, name: str) -> Path:
        """What a same-host sidecar mounts: private key, known_hosts, repository URL."""
        return self.state / "export" / name

    def admin_key(self, name: str) -> Path:
        """The private half of a generated admin keypair (ADMIN_KEY=generate), beside the client's own key."""
        return self.client_keys(name) / "admin_ed25519"

    def admin_export(self, name: str) -> Path:
        """What the client's admin service alone mounts: the generated admin key, known_hosts, repository URL."""
        return self.state / "export-admin" / name

    @property
    def monitor(self) -> Path:
        """The monitor's state: one JSON file (and lock) per client, its read position, its outbox."""
        return self.state / "monitor"

    @property
    def monitor_pid(self) -> Path:
        """The running monitor's process id, written once it answers SIGUSR1 (`borg-server scan`)."""
        return self.volatile / "monitor.pid"

    @property
    def monitor_position(self) -> Path:
        """How far the monitor read the audit log, and its last scan (written by the monitor, read by status)."""
        return self.monitor / "monitor.json"

    def monitor_state(self, name: str) -> Path:
        return self.monitor / "clients" / f"{name}.json"

    @property
    def size_history(self) -> Path:
        """The repositories' sizes over the last 30 days, for the status page's trend (status/history.py)."""
        return self.monitor / "sizes.json"

    @property
    def monitor_server_state(self) -> Path:
        """The monitor's state of the server itself: its disk alert, each client's last backup size
        (monitor/disk_alert.py)."""
        return self.monitor / "server.json"

    @property
    def monitor_outbox(self) -> Path:
        return self.monitor / "outbox"

    @property
    def digest_record(self) -> Path:
        """The cron time of the last digest sent (borg_common.digest): a restart does not send it again."""
        return self.monitor / "digest.json"

    @property
    def notify_outbox(self) -> Path:
        """The alerts' notifications not delivered yet, one file each (borg_common.notify)."""
        return self.monitor / "notify-outbox"

    @property
    def gate_directory(self) -> Path:
        """Run-time files that keep a client's sessions and a compaction of its repository apart
        (repository/gate.py): on the tmpfs, where making a thousand of them at a start takes milliseconds (on
        fuse-overlayfs, a second)."""
        return self.volatile / "gate"

    @property
    def session_slots(self) -> Path:
        """One file per session a client may have open at once, held with flock (sessions/slots.py)."""
        return self.volatile / "sessions"

    def gate_lock(self, name: str) -> Path:
        return self.gate_directory / f"{name}.lock"

    def compaction_marker(self, name: str) -> Path:
        """Present while `borg-server compact` works on the client: its new sessions wait."""
        return self.gate_directory / f"{name}.compacting"

    @property
    def replica_key(self) -> Path:
        """On a primary: the generated replica keypair's private half (BORG_REPLICA_KEY=generate)."""
        return self.state / "replica" / "id_ed25519"

    @property
    def replica_export(self) -> Path:
        """On a primary: what the replica mounts (generated key, known_hosts, replicate_from)."""
        return self.state / "export-replica"

    @property
    def replica_ssh(self) -> Path:
        """On a replica: the pinned known_hosts line, root-only, for ssh (a key copy is on the tmpfs: primary.py)."""
        return self.runtime / "replica"

    @property
    def replicate_lock(self) -> Path:
        """Held by the one replication round that runs (scheduled or `borg-server replicate`)."""
        return self.runtime / "replicate.lock"

    @property
    def replica_primary_state(self) -> Path:
        """On a replica: the rounds in a row that could not reach the primary, and the replica_unreachable alert
        (replica/alerts.py)."""
        return self.monitor / "primary.json"

    @property
    def replica_outbox_lock(self) -> Path:
        """On a replica: held by whoever ships the alerts in the outbox (the replicator, `borg-server replicate`)."""
        return self.runtime / "replica-outbox.lock"

    def replica_staging(self, name: str) -> Path:
        """On a replica: files fetched from the primary, checked, before they are moved into the copy."""
        return self.repositories / ".replica" / "staging" / name

    def replica_held(self, name: str) -> Path:
        """On a replica: segments the primary removed (compaction), kept until REPLICA_KEEP_REMOVED has passed."""
        return self.repositories / ".replica" / "removed" / name

    def snapshot_directory(self, name: str) -> Path:
        """Hard-link snapshots taken before compaction: on the repositories' file system, out of every key's reach."""
        return self.repositories / ".snapshots" / name
