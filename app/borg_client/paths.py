"""Where the sidecar keeps its state: one record naming every file and directory in the state volume."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    """The state volume of one client: borg's own directories, the run journal, the outbox, the logs."""

    state: Path
    client: str

    @property
    def outbox(self) -> Path:
        """Reports not delivered yet, one file each (borg_common.outbox)."""
        return self.state / "outbox"

    @property
    def notify_outbox(self) -> Path:
        """Notifications not delivered yet, one file each (borg_common.notify)."""
        return self.state / "notify-outbox"

    @property
    def digest_record(self) -> Path:
        """The cron time of the last digest sent (borg_common.digest): a restart does not send it again."""
        return self.state / "digest.json"

    @property
    def runs(self) -> Path:
        """The run journal: the last runs' reports, for `status` and the health check."""
        return self.state / "runs.json"

    @property
    def runs_lock(self) -> Path:
        """Serialises writers of the run journal (a skipped report and a manual run may finish at once)."""
        return self.state / "runs.lock"

    @property
    def run_lock(self) -> Path:
        """Held for the whole of a run, so that runs never overlap."""
        return self.state / "run.lock"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    def day_log(self, day: date) -> Path:
        """The file every log line of the day goes to, with the full list of files borg saw."""
        return self.logs / f"{self.client}-{day:%Y-%m-%d}.log"

    @property
    def key_export(self) -> Path:
        return self.state / "key-export"

    @property
    def key_file(self) -> Path:
        """The repository key as `borg key export` writes it."""
        return self.key_export / f"{self.client}.key"

    @property
    def paper_key_file(self) -> Path:
        """The repository key in paper form (`borg key export --paper`)."""
        return self.key_export / f"{self.client}.key.txt"

    @property
    def recovery_kit(self) -> Path:
        """The recovery kit as `borg-client recovery-kit` printed it last (borg_client.recovery_kit)."""
        return self.key_export / f"{self.client}.recovery-kit.txt"

    @property
    def kit_saved(self) -> Path:
        """When a person said the recovery kit was saved off the host (`recovery-kit --confirm-saved`)."""
        return self.state / "recovery-kit-saved.json"

    @property
    def repository_record(self) -> Path:
        """What the last backup saw of the repository (borg_client.history)."""
        return self.state / "repository.json"

    @property
    def keys(self) -> Path:
        """BORG_KEYS_DIR."""
        return self.state / "keys"

    @property
    def security(self) -> Path:
        """BORG_SECURITY_DIR."""
        return self.state / "security"

    @property
    def cache(self) -> Path:
        """BORG_CACHE_DIR."""
        return self.state / "cache"

    @property
    def replica_security(self) -> Path:
        """BORG_SECURITY_DIR with RESTORE_FROM_REPLICA: what borg learns of a replica, apart from the primary's."""
        return self.state / "replica" / "security"

    @property
    def replica_cache(self) -> Path:
        """BORG_CACHE_DIR with RESTORE_FROM_REPLICA."""
        return self.state / "replica" / "cache"

    @property
    def borg_config(self) -> Path:
        """BORG_CONFIG_DIR."""
        return self.state / "config"

    @property
    def host_id(self) -> Path:
        """The BORG_HOST_ID made once for this state volume."""
        return self.state / "host_id"

    @property
    def waiting(self) -> Path:
        """What the scheduler waits for at start (the backup server), while it waits (borg_client.waiting)."""
        return self.state / "waiting"

    @property
    def verify_record(self) -> Path:
        """The last restore drill (last_verified) and the drills since the last data check (borg_client.verify)."""
        return self.state / "verify.json"

    @property
    def drill_scratch(self) -> Path:
        """Where a restore drill extracts its sample, emptied after each drill and at the next one after a kill."""
        return self.state / "drill"

    @property
    def stopped_containers(self) -> Path:
        """The journal of containers stopped for a run, until they are started again."""
        return self.state / "stopped-containers.json"

    @property
    def coverage_notified(self) -> Path:
        """The coverage findings already notified (borg_client.coverage_audit), so each is notified once."""
        return self.state / "coverage-notified.json"
