"""`borg-server compact CLIENT`: free the space of deleted archives, only after every delete was reviewed.

The steps (gate, scan, hard-link snapshot, borg compact, borg check, new baseline) are compaction/compact.py's,
shared with the monitor's automatic compaction. This command refuses, for an append-only client, while
any delete or change to committed files is not acknowledged (`borg-server audit`), and removes the
snapshot once the check passed unless asked to keep it (only then is the disk space actually free).
"""

from __future__ import annotations

import shutil

from borg_server.compaction import compact as compaction
from borg_server.compaction.compact import CompactionFailed  # noqa: F401 (the error the command raises)
from borg_server.records.client_state import ClientState
from borg_server.records.configuration import ClientSpec, ServerConfig
from borg_server.repository import baseline, segments
from borg_server.system.paths import Paths

REFUSED = 3


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


def compact(client: ClientSpec, server: ServerConfig, paths: Paths, keep_snapshot: bool) -> int:
    """Compact the client's repository safely; return 0, REFUSED, or raise CompactionFailed."""
    repository = paths.client_repository(client.name)

    def refuse(found: ClientState) -> str | None:
        return refusal(client.name, found, segments.last_commit(repository)) if client.append_only else None

    try:
        outcome = compaction.compact(client, paths, refuse, automatic=False)
    except compaction.Refused as error:
        print(f"borg-server: refused: client {client.name}: {error}")
        return REFUSED
    before, after, snapshot = outcome.before, outcome.after, outcome.snapshot
    if keep_snapshot:
        print(f"client {client.name}: compacted {before} → {after} bytes; snapshot kept in {snapshot} "
              f"(the space it holds is freed when you remove it)")  # fmt: skip
    else:
        shutil.rmtree(snapshot)
        print(f"client {client.name}: compacted {before} → {after} bytes ({before - after} freed); check passed")
    return 0
