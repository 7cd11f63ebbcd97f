"""Borg's --log-json stream, read the same way by both images."""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class LogJson:
    """Reads borg's --log-json stream: renders each line for people, keeps the message ids."""

    msgids: list[str] = field(default_factory=list)
    files: int = 0

    def render(self, line: str) -> str | None:
        """Given one line of borg's stderr, return the text to log (None for progress noise)."""
        try:
            entry = json.loads(line)
        except ValueError:
            return line
        if not isinstance(entry, dict):
            return line
        kind = entry.get("type")
        if kind == "log_message":
            level, msgid = entry.get("levelname", "INFO"), entry.get("msgid")
            text = f"{level}: {entry.get('message', '')}"
            if msgid:
                self.msgids.append(msgid)
                if level in ("ERROR", "CRITICAL"):
                    text += f" [{msgid}]"
            return text
        if kind == "file_status":
            self.files += 1
            return f"{entry.get('status')} {entry.get('path')}"
        return None
