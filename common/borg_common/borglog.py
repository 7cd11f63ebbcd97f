"""Borg's --log-json stream, read the same way by both images."""

from __future__ import annotations

import collections
import json
from collections.abc import Callable
from dataclasses import dataclass, field

LOG_LIMIT = 500  # borg's INFO and WARNING lines a command puts in the container log; errors always go there


@dataclass
class LogJson:
    """Reads borg's --log-json stream: renders each line for people, keeps the message ids.

    With a sink (the day log's writer, borg_client.daylog), the per-file lines of --list go to the
    sink only, and so do borg's INFO and WARNING lines past LOG_LIMIT: the container log stays
    bounded whatever the number of files, the sink gets every line. Without one, every line is
    rendered (the server's short commands).
    """

    sink: Callable[[str], None] | None = None
    msgids: list[str] = field(default_factory=list)
    files: int = 0
    statuses: collections.Counter = field(default_factory=collections.Counter)
    shown: int = 0  # lines rendered for the container log
    held: int = 0  # lines that went to the sink only
    expected: frozenset[str] = frozenset()  # message ids the caller expects and explains itself: kept, not logged

    def render(self, line: str) -> str | None:
        """Given one line of borg's stderr, return the text to log (None: progress noise, or the sink has it)."""
        if self.sink is not None and line.startswith('{"type": "file_status"'):
            return self.listed(line)
        try:
            entry = json.loads(line)
        except ValueError:
            return self.bounded(line, "INFO")
        if not isinstance(entry, dict):
            return self.bounded(line, "INFO")
        kind = entry.get("type")
        if kind == "log_message":
            level, msgid = entry.get("levelname", "INFO"), entry.get("msgid")
            text = f"{level}: {entry.get('message', '')}"
            if msgid:
                self.msgids.append(msgid)
                if msgid in self.expected:
                    return None
                if level in ("ERROR", "CRITICAL"):
                    text += f" [{msgid}]"
            return self.bounded(text, level)
        if kind == "file_status":
            self.files += 1
            return f"{entry.get('status')} {entry.get('path')}"
        return None

    def listed(self, line: str) -> None:
        """Given a file_status line of borg create --list, write "STATUS PATH" to the sink and count it."""
        try:
            entry = json.loads(line)
            text = f"{entry['status']} {entry['path']}"
        except (ValueError, KeyError, TypeError):
            text = line
        else:
            self.files += 1
            self.statuses[entry["status"]] += 1
        self.sink(text)
        return None

    def bounded(self, text: str, level: str) -> str | None:
        """Given a rendered line and its level, return it for the container log (past the limit: to the sink)."""
        if self.sink is None or level in ("ERROR", "CRITICAL") or self.shown < LOG_LIMIT:
            self.shown += 1
            return text
        self.held += 1
        self.sink(text)
        return None

    def summary(self, what: str, day_log: str) -> str | None:
        """Given the command ("borg create") and where the day log is, return the line that sums up the list.

        None when nothing was listed and nothing held back.
        """
        if not self.files and not self.held:
            return None
        counts = ", ".join(f"{status} {count}" for status, count in sorted(self.statuses.items(), key=str))
        text = f"{what} listed {self.files} files" + (f" ({counts})" if counts else "")
        if self.held:
            text += f"; {self.held} more of borg's lines"
        return f"{text}: every one is in the day log {day_log}"
