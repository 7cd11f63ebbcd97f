"""Compacting a client's repository safely: the steps `borg-server compact` and the monitor's automatic one share.

In an append-only repository a client's deletes are only written down; the first compaction
applies all of them for good. So a compaction:
1. closes the client's gate (repository/gate.py): new sessions wait, running ones are waited for;
2. scans the repository under the client's state lock and asks the caller whether it may go on;
3. takes a hard-link snapshot of the repository (instant; compaction writes new segments and
   unlinks old ones, so the snapshot keeps the repository exactly as it was);
4. runs `borg compact` and `borg check --repository-only` as the client's own account;
5. takes the monitor's baseline again, marks the deletes it applied as acknowledged, records the
   compaction (state and audit log). The snapshot is the caller's: kept, or removed. On any failure
   it stays and the error says how to return to it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from borg_server.records import state_file
from borg_server.records.client_state import ClientState
from borg_server.records.compaction_state import Compacted
from borg_server.records.configuration import ClientSpec
from borg_server.repository import audit_log, baseline, deletes, gate, segments, watch
from borg_server.system import accounts, commands, disk_usage
from borg_server.system.paths import Paths

logger = logging.getLogger(__name__)

SESSION_WAIT = 3600  # seconds to wait for the client's running sessions to end


class CompactionFailed(Exception):
    """A step failed; the message says which and what state the repository is in."""


class Busy(CompactionFailed):
    """The client's sessions did not end in time (or another compaction runs); nothing was changed."""


class Refused(Exception):
    """The caller's check found a reason not to compact; nothing was changed."""


@dataclass(frozen=True)
class Outcome:
    """A compaction that passed its check: the repository's bytes before and after, the snapshot taken."""

    before: int
    after: int
    snapshot: Path


def take_snapshot(repository: Path, directory: Path) -> Path:
    """Hard-link the repository into a new directory below directory (root-only); return it."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory.parent, 0o700)
    snapshot = directory / datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%S.%fZ")
    if snapshot.exists():
        raise CompactionFailed(f"{snapshot} exists already; nothing was changed")
    commands.checked(["cp", "-al", str(repository), str(snapshot)])
    return snapshot


def compact(
    client: ClientSpec,
    paths: Paths,
    refuse: Callable[[ClientState], str | None],
    automatic: bool,
    keep_until: str | None = None,
    wait: float = SESSION_WAIT,
) -> Outcome:
    """Compact the client's repository; return the outcome.

    refuse is given the freshly scanned state under the closed gate and returns why not to go on (None:
    go on). keep_until (automatic compactions) records until when the snapshot is kept. Raise Refused,
    Busy if the client's sessions still run after wait seconds, or CompactionFailed if a step fails.
    """
    repository = paths.client_repository(client.name)
    if not segments.has_repository(repository):
        raise CompactionFailed(f"client {client.name} has no repository at {repository} yet; nothing to compact")
    try:
        accounts.lookup(paths, client.name)
    except (accounts.UnknownClient, OSError) as error:
        raise CompactionFailed(f"{error}; nothing was changed") from None
    started = time.time()
    logger.info("client %s: new sessions wait; waiting for running sessions to finish", client.name)
    try:
        with gate.compaction(paths, client.name, wait):
            return gated(client, paths, repository, refuse, automatic, keep_until, started)
    except gate.GateClosed as error:
        raise Busy(str(error)) from None


def gated(
    client: ClientSpec,
    paths: Paths,
    repository: Path,
    refuse: Callable[[ClientState], str | None],
    automatic: bool,
    keep_until: str | None,
    started: float,
) -> Outcome:
    """The steps behind the closed gate (see compact)."""
    with state_file.locked(paths.monitor_state(client.name)) as found:
        if client.append_only:
            watch.watch_repository(client.name, found, repository, admin_session=False, now=state_file.now_text())
        reason = refuse(found)
        through = found.scanned
    if reason:
        raise Refused(reason)
    snapshot = take_snapshot(repository, paths.snapshot_directory(client.name))
    before = disk_usage.directory_size(repository)
    logger.info("client %s: snapshot %s taken; compacting %d bytes", client.name, snapshot, before)
    rollback = (
        f"the repository as it was before is kept in {snapshot}; to return to it: "
        f"rm -rf {repository} && mv {snapshot} {repository}"
    )
    account = accounts.lookup(paths, client.name)  # known: compact() looked it up before
    as_client = (account.uid, account.gid, paths.client_home(client.name))
    compacted, _ = commands.run_borg(
        ["compact", "--log-json", "--lock-wait", str(SESSION_WAIT), str(repository)], *as_client
    )
    if compacted.returncode != 0:
        raise CompactionFailed(f"borg compact failed (exit {compacted.returncode}); {rollback}")
    checked, _ = commands.run_borg(["check", "--repository-only", "--log-json", str(repository)], *as_client)
    if checked.returncode != 0:
        raise CompactionFailed(f"borg check found problems after compaction (exit {checked.returncode}); {rollback}")
    after, now = disk_usage.directory_size(repository), state_file.now_text()
    with state_file.locked(paths.monitor_state(client.name)) as found:
        baseline.rebaseline(found, repository)
        if found.deletes and through is not None:  # only deletes refuse() accepted: the gate kept new ones out
            deletes.acknowledge(found, through, False, now)
        found.scanned = segments.last_commit(repository)  # compaction copied DELETEs below it: not new
        kept = found.retention.snapshots | ({str(snapshot): keep_until} if keep_until else {})
        last = Compacted(now, before, after, automatic, keep_until)
        found.retention = dataclasses.replace(found.retention, last=last, snapshots=kept)
    record = {"event": "server-compact", "client": client.name, "automatic": automatic, "finished_at": now}
    started_at = datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds")
    audit_log.append_record(
        paths.audit_log, record | {"started_at": started_at, "bytes_before": before, "bytes_after": after}
    )
    return Outcome(before, after, snapshot)
