"""What the monitor knows about each client, as typed records: segment prints, deletes, tampering, checks, alerts.

ClientState: last backup, scanned segment, deletes, baseline, tampering, manifest, check, alerts, retention,
sessions refused.
Each derived figure (pending deletes, tampered files) is defined here once. The records are kept one
JSON file per client (records/state_file.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from borg_server.records import compaction_state, replica_state

ALERTING_KINDS = ("delete", "overwrite")  # checkpoint clean-ups and renames are listed but raise no alert


@dataclass(frozen=True)
class ManifestShrink:
    """The manifest PUT in segment shrank from previous_size to size bytes with no other DELETE since
    the manifest PUT before it (previous_segment), first seen at seen_at."""

    segment: int
    previous_segment: int | None
    previous_size: int
    size: int
    seen_at: str


@dataclass(frozen=True)
class SegmentPrint:
    """A committed segment file as the baseline knows it: its content (size, sha256) and its stat."""

    size: int
    sha256: str
    mtime_ns: int
    ctime_ns: int
    inode: int

    def same_stat(self, other: SegmentPrint) -> bool:
        """Return whether size, times and inode are the same (the cheap test: nothing is read)."""
        return vars(self) | {"sha256": ""} == vars(other) | {"sha256": ""}

    def same_content(self, other: SegmentPrint) -> bool:
        return (self.size, self.sha256) == (other.size, other.sha256)


@dataclass(frozen=True)
class DeleteGroup:
    """The deletes found in one committed segment: a count per kind and the first few object ids (hex); how many
    of them deleted an archive the server knew (repository/archives.py), and whether one was the newest."""

    segment: int
    count: int
    kinds: dict[str, int]
    keys: tuple[str, ...]
    committed_at: str | None
    seen_at: str
    archives: int = 0
    newest: bool = False

    @property
    def alerting(self) -> int:
        """How many of them are of a kind that raises an alert (not borg's checkpoint clean-ups or renames)."""
        return sum(self.kinds.get(kind, 0) for kind in ALERTING_KINDS)


@dataclass(frozen=True)
class Acknowledgement:
    """An admin accepted the deletes through a segment (and the tampering seen, if so)."""

    at: str
    through: int
    deletes: int
    tampering: bool


@dataclass(frozen=True)
class Tampering:
    """Committed files changed since the baseline was taken, first seen at seen_at."""

    changed: tuple[int, ...] = ()
    truncated: tuple[int, ...] = ()
    removed: tuple[int, ...] = ()
    config: bool = False  # the repository's config file changed
    unreadable: str | None = None  # why a committed segment could not be read
    seen_at: str = ""

    @property
    def files(self) -> int:
        """How many committed files changed: segments, and the config counted as one; at least one if unreadable."""
        count = len(self.changed) + len(self.truncated) + len(self.removed) + self.config
        return count or (1 if self.unreadable else 0)


@dataclass(frozen=True)
class CheckResult:
    """The last `borg check --repository-only` of the client's repository."""

    at: str
    ok: bool
    returncode: int
    message: str


@dataclass(frozen=True)
class Refusals:
    """Sessions of the client refused because MAX_SESSIONS of its sessions were open: how many since the first,
    the last one and where it came from."""

    first_at: str
    last_at: str
    count: int
    source: str


@dataclass(frozen=True)
class RaisedAlert:
    """An alert sent as raised and not cleared yet; extent: how much it covered when last sent."""

    since: str
    message: str
    extent: int = 0


@dataclass
class ClientState:
    """What the monitor knows about one client; changed in place under `locked`, then saved."""

    first_seen: str
    last_backup: str | None = None
    scanned: int | None = None
    deletes: list[DeleteGroup] = field(default_factory=list)
    acknowledged: list[Acknowledgement] = field(default_factory=list)
    segments: dict[int, SegmentPrint] = field(default_factory=dict)
    config_digest: str | None = None
    tampering: Tampering | None = None
    check: CheckResult | None = None
    manifest: tuple[int | None, int | None] = (None, None)  # segment and size of the last manifest PUT seen
    manifest_shrinks: list[ManifestShrink] = field(default_factory=list)
    archives: list[str] | None = None  # the archives the server knows, oldest first (None: not read yet)
    alerts: dict[str, RaisedAlert] = field(default_factory=dict)
    retention: compaction_state.Retention = field(default_factory=compaction_state.Retention)  # automatic compaction
    replica: replica_state.ReplicaState | None = None  # on a replica: the copy of this client (replica/copy.py)
    refused: Refusals | None = None  # sessions refused lately (MAX_SESSIONS), until an hour passes without one

    def pending_deletes(self, alerting_only: bool = False) -> int:
        """Return how many deletes wait for acknowledgement (only the kinds that raise an alert, if asked)."""
        return sum(group.alerting if alerting_only else group.count for group in self.deletes)

    @property
    def tampered_files(self) -> int:
        """How many committed files changed (see Tampering.files); 0 without tampering."""
        return self.tampering.files if self.tampering else 0
