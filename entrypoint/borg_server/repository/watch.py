"""The watch over an append-only client's repository: its deletes, archives and tamper findings, in one step.

Deletes and tampering are watched for append-only clients only: a client allowed to delete
compacts its own repository, which removes segments and deletes legitimately.
"""

from __future__ import annotations

import logging
from pathlib import Path

from borg_server.records.client_state import ClientState
from borg_server.repository import archives, baseline, deletes, manifest, segments

logger = logging.getLogger(__name__)

MAX_SHRINKS = 100  # unacknowledged manifest shrinks kept


def watch_repository(name: str, state: ClientState, repository: Path, admin_session: bool, now: str) -> None:
    """Update an append-only client's deletes and tamper findings from its repository.

    admin_session: an admin key changed the repository since the last scan (it may have compacted,
    which removes segments legitimately). A segment that cannot be read is recorded as tampering.
    """
    before = state.tampering
    if not segments.has_repository(repository):
        if state.segments:  # it existed: removing a repository is the biggest change of all
            baseline.record_unreadable(state, FileNotFoundError(f"{repository / 'config'} is missing"), now)
        return
    try:
        baseline.check_tampering(state, repository, now, compacted=admin_session)
        scanned = state.scanned
        new = deletes.scan_deletes(state, repository, now)
        if new:
            logger.warning("client %s: %d new delete(s) found in its repository", name, new)
        if state.scanned is not None and (scanned is None or state.scanned > scanned):
            watch_manifest(name, state, repository, -1 if scanned is None else scanned, now)
        if scanned is not None and (state.scanned is None or state.scanned < scanned):
            state.archives = None  # rolled back: the list is read again from the first segment
        if state.scanned is not None and (state.archives is None or scanned is None or state.scanned > scanned):
            archives.follow(state, repository, -1 if scanned is None else scanned)
    except (segments.SegmentError, OSError) as error:
        baseline.record_unreadable(state, error, before.seen_at if before else now)


def adopt_copy(state: ClientState, repository: Path) -> int | None:
    """Given the state of a replica's copy on a server that is now its primary (a promoted replica), make it the
    monitor's: the replica's record goes, and the review of deletes continues after the segment through which
    the old primary's monitor had reviewed them (ReplicaState.reviewed_through, as last copied), so history the
    old primary had reviewed and compacted is not reported again, and deletes it had not reviewed are. Return
    that segment (None: the copy does not say, so the whole history is reviewed)."""
    replica, state.replica = state.replica, None
    last = segments.last_commit(repository)
    through = replica.reviewed_through if replica else None
    if through is None or last is None or through > last:
        return None
    state.scanned = through
    return through


def watch_manifest(name: str, state: ClientState, repository: Path, after: int, now: str) -> None:
    """Record the manifest PUTs committed after segment after (up to state.scanned) and the shrinks among them."""
    puts = manifest.manifest_puts(repository, after, state.scanned)
    found, state.manifest = manifest.shrinks(state.manifest, puts, now)
    for shrink in found:
        logger.warning(
            "client %s: the manifest shrank from %d to %d bytes in segment %d with no archive deleted",
            name, shrink.previous_size, shrink.size, shrink.segment,
        )  # fmt: skip
    state.manifest_shrinks += found
    if len(state.manifest_shrinks) > MAX_SHRINKS:  # the first ones and the latest stay; the alert stays raised
        state.manifest_shrinks = state.manifest_shrinks[:1] + state.manifest_shrinks[-(MAX_SHRINKS - 1) :]
