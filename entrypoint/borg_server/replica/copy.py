"""The replica's side of replication: one round that pulls every client's committed segments, never damage.

One round (REPLICATE_CRON, or `borg-server replicate`) opens one SSH session to the primary's reader
(replica/primary.py to sessions/replica_source.py) with the replica key and the pinned host key, lists every
client's committed state and, per client, under the client's state lock:

1. judges every segment copied before (the baseline, state.segments, SegmentPrint as the monitor
   takes them) against the primary's: one that changed, shrank or vanished there, or that the
   primary's monitor finds damaged (the listing's "damaged"), is a mismatch and is never copied
   over; the good copy stays and `replica_mismatch` is raised. A vanished segment is
   no mismatch when the primary's last audited compaction changed since the last round (or the
   client may delete, APPEND_ONLY=no): it is set aside and deleted REPLICA_KEEP_REMOVED later
   (replica/held.py);
2. fetches only the segments it does not have, up to the primary's last commit (never half a
   transaction), with borg's config, index, hints and integrity files of that commit, checked, into
   staging (replica/install.py);
3. closes the client's gate (repository/gate.py: read sessions wait), moves the removed segments aside and the
   fetched files into place, and records the copy (records/replica_state.py).

So the copy only grows, holds exactly the primary's committed state where the two agree, and keeps
its own segments where they do not. With the copy it keeps how far the primary's monitor had reviewed
the deletes (reviewed_through), where a promoted replica's monitor starts. Alerts (replica/alerts.py):
`replica_mismatch`, `replica_lag` (no complete copy for REPLICA_MAX_LAG) and `replica_unreachable`
(UNREACHABLE_ROUNDS rounds in a row could not get the primary's list), shipped to REPORT_URLS at the
end of every round.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from datetime import UTC, datetime

from borg_common import files
from borg_common.settings import CLIENT_NAME
from borg_server.records import state_file
from borg_server.records.client_state import ClientState
from borg_server.records.configuration import ServerConfig
from borg_server.records.replica_state import MISMATCH_KINDS, ReplicaState
from borg_server.replica.alerts import emit_alerts, ship, watch_lag, watch_primary
from borg_server.replica.held import expire_held
from borg_server.replica.install import fetch_client, install
from borg_server.replica.primary import Moved, Primary, PrimaryError
from borg_server.repository import gate
from borg_server.system import accounts, ownership
from borg_server.system.paths import Paths

logger = logging.getLogger(__name__)

GATE_WAIT = 600  # seconds a round waits for a client's read sessions before it tries again next round


def client_gid(paths: Paths, server: ServerConfig, name: str) -> int:
    """The group that may read the client's copy: its own account's on this replica, else root's."""
    if name not in {client.name for client in server.clients}:
        return 0
    try:
        return accounts.lookup(paths, name).gid
    except (accounts.UnknownClient, OSError):
        return 0


def judge(found: ClientState, listed: dict, accept: bool) -> tuple[dict[int, str], list[int]]:
    """Given the copy's state and the primary's listing of the client, return the mismatches and what to set aside.

    A copied segment that changed or shrank on the primary, or vanished there without a compaction, or that the
    primary's monitor finds damaged (listed "damaged": its kind there, where the listed hash is still the copy's),
    is a mismatch (segment -> kind); one that vanished with a compaction (or from a client that may delete) is set
    aside. accept: the primary's state is taken, so every mismatch is set aside instead.
    """
    theirs = {int(n): tuple(value) for n, value in listed["segments"].items()}
    damaged = {int(n): kind for n, kind in (listed.get("damaged") or {}).items() if kind in MISMATCH_KINDS}
    replica = found.replica or ReplicaState()
    compacted = listed.get("compacted_at") != replica.compacted_at or not listed.get("append_only", True)
    mismatch, aside = {}, []
    for number, mine in sorted(found.segments.items()):
        other = theirs.get(number)
        same = other is not None and (other[0], other[1]) == (mine.size, mine.sha256)
        if same and number not in damaged:
            continue
        kind = damaged[number] if same else "removed" if other is None else "truncated" if other[0] < mine.size \
            else "changed"  # fmt: skip
        if accept or (kind == "removed" and compacted and number not in damaged):
            aside.append(number)
        else:
            mismatch[number] = kind
    return mismatch, aside


def reviewed(listed: dict, copied: int | None) -> int | None:
    """Given the primary's listing and the copy's commit, return through which segment the primary's monitor had
    reviewed the copy's deletes (None: not known)."""
    through = listed.get("reviewed_through")
    if not isinstance(through, int) or isinstance(through, bool) or copied is None:
        return None
    return min(through, copied)


def replicate_client(primary: Primary, server: ServerConfig, paths: Paths, name: str, listed: dict,
                     accept: bool = False) -> str:  # fmt: skip
    """Bring one client's copy up to the primary's last commit (see the module docstring); return what happened."""
    moment = datetime.now(UTC)
    now = moment.isoformat(timespec="seconds")
    gid = client_gid(paths, server, name)
    ownership.own_replica_copy(paths, name, gid)
    with state_file.locked(paths.monitor_state(name)) as found:
        replica = found.replica or ReplicaState()
        mismatch, aside = judge(found, listed, accept)
        for number, kind in sorted(mismatch.items()):
            if replica.mismatch.get(number) != kind:
                logger.error("client %s: segment %d %s on the primary; the replica keeps its copy", name, number, kind)
        last = listed.get("last_commit")
        new = [int(n) for n in listed["segments"] if int(n) not in found.segments or int(n) in aside]
        new = [n for n in sorted(new) if n not in mismatch]
        replica = dataclasses.replace(replica, mismatch=mismatch, primary_commit=last, primary_seen_at=now,
                                      lag_segments=len(new))  # fmt: skip
        outcome = "up to date"
        ahead = [number for number in mismatch if last is None or number > last]
        if ahead:
            outcome = (f"not copied this round (the copy holds segments {', '.join(map(str, ahead))} after the "
                       f"primary's last commit {last}: was the primary rolled back?)")  # fmt: skip
        elif last is not None and (new or aside or replica.copied_commit != last) and not listed.get("complete"):
            outcome = "the primary is committing; copied next round"
        elif last is not None and (new or aside or replica.copied_commit != last):
            try:
                prints = fetch_client(primary, name, listed, new, paths.replica_staging(name), gid)
                with gate.compaction(paths, name, GATE_WAIT):
                    held = install(paths, name, listed, prints, aside, found, now, gid)
            except (Moved, gate.GateClosed) as error:
                shutil.rmtree(paths.replica_staging(name), ignore_errors=True)
                outcome = f"not copied this round ({error})"
            else:
                copied = sum(print_.size for print_ in prints.values())
                replica = dataclasses.replace(replica, held=replica.held + held, copied_commit=last, lag_segments=0,
                                              compacted_at=listed.get("compacted_at"))  # fmt: skip
                outcome = f"copied {len(prints)} segment(s), {copied} bytes, up to commit {last}"
                if held:
                    outcome += f"; set aside {len(held)} segment(s) the primary removed"
        if not outcome.startswith(("not copied", "the primary is")):
            replica = dataclasses.replace(replica, last_copy_at=now, lag_segments=0)
        if mismatch and not outcome.startswith("not copied"):
            kept = ", ".join(f"{number} {kind}" for number, kind in sorted(mismatch.items()))
            held_back = f"kept its own copy of segments that differ on the primary ({kept}): replica_mismatch"
            outcome = held_back if outcome == "up to date" else f"{outcome}; {held_back}"
        if replica.copied_commit == last:
            replica = dataclasses.replace(replica, reviewed_through=reviewed(listed, last))
        replica = dataclasses.replace(replica, held=expire_held(paths, name, replica.held, keep_removed(server),
                                                                moment),
                                      bytes=sum(print_.size for print_ in found.segments.values()))  # fmt: skip
        found.replica = dataclasses.replace(replica, last_round_at=now, last_outcome=outcome)
        emit_alerts(server, paths, name, found, moment)
    logger.info("client %s: %s", name, outcome)
    return outcome


def keep_removed(server: ServerConfig) -> int:
    return server.replication.keep_removed if server.replication else 0


def replicate(server: ServerConfig, paths: Paths, accept: str | None = None) -> int:
    """Run one round over every client of the primary (one round at a time), then ship its alerts (a manual
    round's reach REPORT_URLS as a scheduled one's); return 0, 1 if any client failed, 2 for an unknown accept."""
    paths.runtime.mkdir(parents=True, exist_ok=True)
    with files.held_lock(paths.replicate_lock):
        code, unreached = copy_every_client(server, paths, accept)
        watch_primary(server, paths, unreached, datetime.now(UTC))
        watch_lag(server, paths)
    ship(server, paths)
    return code


def copy_every_client(server: ServerConfig, paths: Paths, accept: str | None) -> tuple[int, str | None]:
    """Open the session to the primary, bring every listed client's copy up to date; return replicate's code and,
    if the round could not get the primary's list, why (None: it did)."""
    try:
        primary = Primary(server.replication, paths)
    except OSError as error:
        logger.error("replication: cannot start ssh: %s", error)
        return 1, f"ssh cannot start: {error}"
    failed, unreached = False, None
    try:
        try:
            listing = primary.listing()
        except (PrimaryError, Moved) as error:
            unreached = str(error)
            raise
        if accept is not None and accept not in listing:
            logger.error("replication: the primary has no repository of client %s", accept)
            return 2, None
        gate.prepare(paths, list(listing))
        for name, listed in sorted(listing.items()):
            if not CLIENT_NAME.match(name) or not isinstance(listed, dict):
                logger.error("replication: the primary listed %r, not a client; skipped", name[:40])
                continue
            try:
                outcome = replicate_client(primary, server, paths, name, listed, accept == name)
            except (OSError, KeyError, TypeError, ValueError) as error:
                logger.error("client %s: not copied: %s", name, error)
                note_outcome(paths, name, f"not copied: {error}")
                failed = True
                continue
            failed = failed or outcome.startswith("not copied")
    except (PrimaryError, Moved) as error:
        logger.error("replication: %s", error)
        failed = True
    finally:
        primary.close()
    return (1 if failed else 0), unreached


def note_outcome(paths: Paths, name: str, outcome: str) -> None:
    """Record a round's outcome for a client whose copy failed midway (status and the status page show it); a state
    that cannot be written now is left as it was (the log has the outcome)."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        with state_file.locked(paths.monitor_state(name)) as found:
            found.replica = dataclasses.replace(
                found.replica or ReplicaState(), last_outcome=outcome, last_round_at=now
            )
    except (OSError, ValueError) as error:
        logger.error("client %s: the round's outcome cannot be recorded: %s", name, error)
