"""`borg-server compact CLIENT`: free the space of deleted archives, only after every delete was reviewed.

In an append-only repository a client's deletes are only written down; the first compaction
applies all of them for good. So this command:
1. closes the client's gate (gate.py): new sessions wait, running ones are waited for;
2. scans the repository and refuses while any delete is not acknowledged (`borg-server audit`);
3. takes a hard-link snapshot of the repository (instant; compaction writes new segments and
   unlinks old ones, so the snapshot keeps the repository exactly as it was);
4. runs `borg compact` and `borg check --repository-only` as the client's own account;
5. takes the monitor's baseline again and, unless asked to keep it, removes the snapshot (only
   then is the disk space actually free). On any failure the snapshot stays and the command says
   how to return to it.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from borg_server import accounts, audit_log, baseline, disk, findings, gate, segments, state, system
from borg_server.config import ClientSpec, ServerConfig
from borg_server.paths import Paths
from borg_server.state import ClientState

logger = logging.getLogger(__name__)

SESSION_WAIT = 3600  # seconds to wait for the client's running sessions to end
REFUSED = 3


class CompactionFailed(Exception):
    """A step failed; the message says which and what state the repository is in."""


def refusal(name: str, found: ClientState, last_commit: int | None) -> str | None:
    """Given an append-only client's fresh findings, return why compaction must not run (None: it may)."""
    review = f"review them with: borg-server audit {name}"
    if found.deletes:
        first, last = found.deletes[0].segment, found.deletes[-1].segment
        return (
            f"{found.pending_deletes()} unacknowledged delete(s) (segments {first}..{last}); "
            f"compaction would apply them for good; {review}"
        )
    if found.tampering:
        return f"committed files changed ({baseline.describe_tampering(found.tampering)}); {review}"
    if found.scanned != last_commit:
        return f"the repository was not scanned completely (through {found.scanned} of {last_commit}); {review}"
    return None


def take_snapshot(repository: Path, directory: Path) -> Path:
    """Hard-link the repository into a new directory below directory (root-only); return it."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory.parent, 0o700)
    snapshot = directory / datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%S.%fZ")
    if snapshot.exists():
        raise CompactionFailed(f"{snapshot} exists already; nothing was changed")
    system.checked(["cp", "-al", str(repository), str(snapshot)])
    return snapshot


def compact(client: ClientSpec, server: ServerConfig, paths: Paths, keep_snapshot: bool) -> int:
    """Compact the client's repository safely; return 0, REFUSED, or raise CompactionFailed."""
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
        with gate.compaction(paths, client.name, SESSION_WAIT):
            return gated_compaction(client, server, paths, repository, keep_snapshot, started)
    except gate.GateClosed as error:
        raise CompactionFailed(str(error)) from None


def gated_compaction(
    client: ClientSpec, server: ServerConfig, paths: Paths, repository: Path, keep_snapshot: bool, started: float
) -> int:
    with state.locked(paths.monitor_state(client.name)) as found:
        if client.append_only:
            findings.watch_repository(client.name, found, repository, admin_session=False, now=state.now_text())
            reason = refusal(client.name, found, segments.last_commit(repository))
            if reason:
                print(f"borg-server: refused: client {client.name}: {reason}")
                return REFUSED
    snapshot = take_snapshot(repository, paths.snapshot_directory(client.name))
    before = disk.directory_size(repository)
    logger.info("client %s: snapshot %s taken; compacting %d bytes", client.name, snapshot, before)
    rollback = (
        f"the repository as it was before is kept in {snapshot}; to return to it: "
        f"rm -rf {repository} && mv {snapshot} {repository}"
    )
    account = accounts.lookup(paths, client.name)  # known: compact() looked it up before
    as_client = (account.uid, account.gid, paths.client_home(client.name))
    compacted, _ = system.run_borg(
        ["compact", "--log-json", "--lock-wait", str(SESSION_WAIT), str(repository)], *as_client
    )
    if compacted.returncode != 0:
        raise CompactionFailed(f"borg compact failed (exit {compacted.returncode}); {rollback}")
    checked, _ = system.run_borg(["check", "--repository-only", "--log-json", str(repository)], *as_client)
    if checked.returncode != 0:
        raise CompactionFailed(f"borg check found problems after compaction (exit {checked.returncode}); {rollback}")
    after = disk.directory_size(repository)
    with state.locked(paths.monitor_state(client.name)) as found:
        baseline.rebaseline(found, repository)
        found.scanned = segments.last_commit(repository)  # compaction copied DELETEs below it: not new
    audit_log.append_record(
        paths.audit_log,
        {
            "event": "server-compact",
            "client": client.name,
            "started_at": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
            "finished_at": state.now_text(),
            "bytes_before": before,
            "bytes_after": after,
        },
    )
    if keep_snapshot:
        print(f"client {client.name}: compacted {before} → {after} bytes; snapshot kept in {snapshot} "
              f"(the space it holds is freed when you remove it)")  # fmt: skip
    else:
        shutil.rmtree(snapshot)
        print(f"client {client.name}: compacted {before} → {after} bytes ({before - after} freed); check passed")
    return 0
