"""The monitor's automatic compaction (AUTO_COMPACT=admin): after each scan, decide, compact, expire snapshots.

Each delete group is attributed to the sessions that wrote it (audit_log.sessions_of, as `borg-server
audit` does); retention.decide says whether to compact. The compaction itself is compaction/compact.py's
(gate, snapshot, borg compact, borg check), and decides again behind the closed gate. Each one is an
event: a `compacted` document (state `event`, or `failed`) through the monitor's outbox, and a log
line. Its snapshot is kept for SNAPSHOT_KEEP, then removed here. A failed automatic compaction stops
the next ones until a compaction by hand (`borg-server compact`) succeeds.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from borg_server.compaction import compact
from borg_server.compaction.policy import Decision, Group, decide, snapshots_expired
from borg_server.monitor import alerts
from borg_server.records import state_file
from borg_server.records.client_state import Acknowledgement, ClientState
from borg_server.records.compaction_state import Compacted
from borg_server.records.configuration import ClientSpec, ServerConfig
from borg_server.repository import audit_log, baseline, segments
from borg_server.system.paths import Paths

logger = logging.getLogger(__name__)

GATE_WAIT = 60  # seconds the monitor waits for a client's sessions to end; busy: it tries at the next scan


def groups(found: ClientState, records: list[dict], client: str) -> list[Group]:
    """Given the client's state and every audit record, return its pending delete groups with their writers' roles
    and keys."""
    found_groups = []
    for group in found.deletes:
        sessions = audit_log.sessions_of(records, client, group.segment, group.committed_at)
        found_groups.append(
            Group(
                group.segment,
                group.count,
                group.committed_at or group.seen_at,
                tuple(sorted({r.get("role", "?") for r in sessions})),
                group.archives,
                group.newest,
                tuple(sorted({(str(r.get("role", "?")), str(r.get("fingerprint") or "?")) for r in sessions})),
            )
        )
    return found_groups


def blocker(client: ClientSpec, found: ClientState, repository: Path) -> str | None:
    """Return what holds the client's automatic compaction back besides its deletes' writers (None: nothing)."""
    review = f"review with borg-server audit {client.name}"
    last = found.retention.last
    if not client.append_only:
        return "APPEND_ONLY is no: the client's own key may delete and compact"
    if last is not None and last.failed:
        return f"the automatic compaction at {last.at} failed ({last.failed}); compact by hand once it is fixed"
    if found.tampering:
        return f"committed files changed ({baseline.describe_tampering(found.tampering)}); {review}"
    if found.check is not None and not found.check.ok:
        return f"the repository check at {found.check.at} failed; compact by hand once the repository is sound"
    if found.manifest_shrinks:
        return f"the manifest shrank with no archive deleted; {review}"
    if found.scanned != segments.last_commit(repository):
        return "the repository was not scanned to its last commit yet"
    return None


def acknowledged_since(found: ClientState) -> str | None:
    """Return when deletes were last acknowledged after the last compaction (None: not since)."""
    return max((done.at for done in acknowledgements_since(found)), default=None)


def acknowledgements_since(found: ClientState) -> list[Acknowledgement]:
    """Return the acknowledgements of deletes made after the last compaction."""
    last = found.retention.last.at if found.retention.last else ""
    return [done for done in found.acknowledged if done.deletes and done.at > last]


def evaluate(
    client: ClientSpec, server: ServerConfig, paths: Paths, found: ClientState, records: Callable[[], list[dict]]
) -> Decision:
    """Given a client's fresh state and a way to read the audit log, return the decision for now."""
    repository = paths.client_repository(client.name)
    written = groups(found, records(), client.name) if found.deletes else []
    held, acknowledged = blocker(client, found, repository), acknowledged_since(found)
    now = datetime.now(UTC)
    remaining = None if found.archives is None else len(found.archives)
    return decide(client.name, client.auto_compact, written, acknowledged, held, now, server.compact_delay, remaining)


def note(
    client: ClientSpec, server: ServerConfig, paths: Paths, found: ClientState, records: Callable[[], list[dict]]
) -> Decision:
    """Given a client's fresh state (held locked), decide and keep the decision in it (status, the held alert);
    return it."""
    decision = evaluate(client, server, paths, found, records)
    found.retention = dataclasses.replace(
        found.retention, pending_admin=decision.pending_admin, next_at=decision.next_at, blocked=decision.blocked,
        held=decision.held,
    )  # fmt: skip
    return decision


def expire_snapshots(client: ClientSpec, paths: Paths, now: datetime) -> None:
    """Remove the client's automatic snapshots whose SNAPSHOT_KEEP is over (only below its snapshot directory)."""
    with state_file.locked(paths.monitor_state(client.name)) as found:
        kept = dict(found.retention.snapshots)
        for path in snapshots_expired(kept, now):
            if Path(path).parent == paths.snapshot_directory(client.name):
                try:
                    shutil.rmtree(path)
                except FileNotFoundError:
                    pass
                except OSError as error:
                    logger.error("client %s: snapshot %s cannot be removed: %s", client.name, path, error)
                    continue
                logger.info("client %s: snapshot %s removed (its SNAPSHOT_KEEP is over)", client.name, path)
            del kept[path]
        found.retention = dataclasses.replace(found.retention, snapshots=kept)


def run(client: ClientSpec, server: ServerConfig, paths: Paths) -> list[dict]:
    """Expire the client's snapshots, decide, and compact if it is time; emit and return the event documents."""
    expire_snapshots(client, paths, datetime.now(UTC))
    read = lambda: audit_log.read_all(paths.audit_log)  # noqa: E731 (read only when there are deletes)
    with state_file.locked(paths.monitor_state(client.name)) as found:
        decision = note(client, server, paths, found, read)
        acknowledged = sum(done.deletes for done in acknowledgements_since(found))
    if not decision.compact:
        return []
    until = (datetime.now(UTC) + timedelta(seconds=server.snapshot_keep)).isoformat(timespec="seconds")
    logger.info(
        "client %s: compacting by itself: %d admin delete(s) and %d acknowledged by a person",
        client.name, decision.pending_admin, acknowledged,
    )  # fmt: skip

    def refuse(fresh: ClientState) -> str | None:
        again = evaluate(client, server, paths, fresh, read)
        return None if again.compact else again.blocked or "nothing to compact any more"

    try:
        outcome = compact.compact(client, paths, refuse, True, until, GATE_WAIT)
    except (compact.Refused, compact.Busy) as error:
        logger.info("client %s: no automatic compaction now: %s", client.name, error)
        return []
    except compact.CompactionFailed as error:
        logger.error("client %s: the automatic compaction FAILED: %s", client.name, error)
        with state_file.locked(paths.monitor_state(client.name)) as found:
            failed = Compacted(state_file.now_text(), 0, 0, True, failed=str(error))
            found.retention = dataclasses.replace(found.retention, last=failed)
        message = f"client {client.name}: the automatic compaction failed: {error}"
        documents = [event(client, server, "failed", message, {"error": str(error)})]
    else:
        with state_file.locked(paths.monitor_state(client.name)) as found:
            found.retention = dataclasses.replace(
                found.retention, pending_admin=0, next_at=None, blocked=None, held=False
            )
        freed = max(0, outcome.before - outcome.after)
        message = (
            f"client {client.name}: compacted by itself: {freed} bytes freed ({outcome.before} → {outcome.after}); "
            f"check passed; snapshot {outcome.snapshot} kept until {until}"
        )
        logger.info("%s", message)
        details = {"bytes_before": outcome.before, "bytes_after": outcome.after, "bytes_freed": freed,
                   "admin_deletes": decision.pending_admin, "acknowledged_deletes": acknowledged,
                   "snapshot": str(outcome.snapshot),
                   "snapshot_kept_until": until}  # fmt: skip
        documents = [event(client, server, "event", message, details)]
        if server.snapshot_keep == 0:
            expire_snapshots(client, paths, datetime.now(UTC))
    alerts.emit(documents, server, paths)
    return documents


def event(client: ClientSpec, server: ServerConfig, change: str, message: str, details: dict) -> dict:
    """Return the `compacted` document of an automatic compaction (change: event or failed)."""
    now = state_file.now_text()
    return alerts.document("compacted", change, client.name, server.server_host, message, details, now, now)
