"""A wait that a signal handler may end, safely (the monitor's `borg-server scan`, the scheduler's SIGUSR1).

A handler must not take a lock: threading.Event.set() does, and when the signal lands while the main thread
is inside that Event's own lock (in wait() or clear()), the handler waits for a lock its own thread holds,
for ever. So the handler writes a byte to a pipe, and the wait selects on the pipe.
"""

from __future__ import annotations

import os
import select


class Wakeup:
    """A self-pipe: set() from a signal handler (or any thread), wait() in the main thread."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def set(self) -> None:
        """Make the current or the next wait() return True. Takes no lock: safe in a signal handler."""
        try:
            os.write(self._write, b"!")
        except BlockingIOError:
            pass  # the pipe is full of earlier wake-ups: one is pending anyway

    def wait(self, timeout: float) -> bool:
        """Wait up to timeout seconds; return whether set() was called (since the last clear), and clear."""
        ready, _, _ = select.select([self._read], [], [], max(0.0, timeout))
        if not ready:
            return False
        self.clear()
        return True

    def clear(self) -> None:
        """Forget every wake-up so far."""
        try:
            while os.read(self._read, 4096):
                pass
        except BlockingIOError:
            pass
