"""The archives the server can tell apart in a client's repository without its key, and the deletes that took them.

Borg writes a new archive's object last in its transaction, right before it rewrites the manifest
(repository/segments.py): so the last PUT before a manifest PUT in a transaction is an archive (a
backup, a checkpoint, or an archive renamed under its new id). A later DELETE of that key takes it
out of the list; only a DELETE of kind "delete" (prune, `borg delete`) counts as an archive deleted,
not a checkpoint clean-up or a rename, which remove no backup. The list (oldest first, ids as their
first KEPT_HEX hex digits) and the marks on each delete group (how many archives, whether the newest
then) are what automatic compaction's rule for unusual deletes reads (compaction/policy.py).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from borg_server.records.client_state import ClientState
from borg_server.repository import segments

KEPT_HEX = 16  # 64 bits of a random archive id: enough to tell a client's archives apart


def short(key: bytes) -> str:
    return key.hex()[:KEPT_HEX]


def follow(state: ClientState, repository: Path, after: int) -> None:
    """Update state.archives with the transactions committed after segment after up to state.scanned, and mark
    the client's delete groups in those segments with the archives they deleted. With no list yet
    (state.archives None), read the repository from its first segment.

    Raise SegmentError (or OSError) if a segment cannot be read; nothing is changed then.
    """
    if state.scanned is None:
        return
    start = -1 if state.archives is None else after
    known = list(state.archives or [])
    kinds = {(d.segment, d.offset): d.kind for d in segments.deletes_since(repository, start, state.scanned)}
    taken: dict[int, list[bool]] = {}  # segment → for each archive deleted there, whether it was the newest then
    last_put = None
    for entry in segments.entries_between(segments.segment_files(repository), start + 1, state.scanned):
        if entry.tag == "commit":
            last_put = None
        elif entry.tag == "put" and entry.key == segments.MANIFEST_KEY:
            if last_put is not None and last_put not in known:
                known.append(last_put)
            last_put = None
        elif entry.tag == "put" and entry.key is not None:
            last_put = short(entry.key)
        elif entry.tag == "delete" and entry.key is not None and entry.key != segments.MANIFEST_KEY:
            key = short(entry.key)
            if key in known:
                newest = known[-1] == key
                known.remove(key)
                if kinds.get((entry.segment, entry.offset)) == "delete":
                    taken.setdefault(entry.segment, []).append(newest)
    state.archives = known
    state.deletes = [
        dataclasses.replace(group, archives=len(taken[group.segment]), newest=any(taken[group.segment]))
        if group.segment in taken else group
        for group in state.deletes
    ]  # fmt: skip
