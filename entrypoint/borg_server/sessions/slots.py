"""How many sessions of one client run at once: one slot file per session, held with flock, at most MAX_SESSIONS.

A session takes the first of its client's slot files (`<volatile>/sessions/<client>.<n>`, n below the
client's MAX_SESSIONS) that no other session holds, with a non-blocking exclusive flock, and hands it to
its borg serve, which keeps it until it ends; so the count is right when sessions start at the same
instant, and a session that dies (borg serve killed, the broker restarted) holds nothing: the kernel
drops its lock. When every slot is held, the session is refused (sessions/session.py).
"""

from __future__ import annotations

import fcntl
import os
from typing import BinaryIO

from borg_server.system.paths import Paths


def take(paths: Paths, client: str, limit: int) -> BinaryIO | None:
    """Given a client and its MAX_SESSIONS, return an open slot file locked for this session; None if all are held.

    The caller closes the file when the session ends (its borg serve keeps its own copy of the descriptor).
    """
    directory = paths.session_slots
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for number in range(limit):
        descriptor = os.open(
            directory / f"{client}.{number}", os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        slot = os.fdopen(descriptor, "rb")
        try:
            fcntl.flock(slot, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            slot.close()
            continue
        return slot
    return None
