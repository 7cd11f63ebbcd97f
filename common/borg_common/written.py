"""Where a setting is written: its value or the file holding it, and reading that file strictly."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Protocol

from borg_common.values import cut


class Problems(Protocol):
    """What read_file records its problem with (borg_common.settings.Settings)."""

    def problem(self, setting: str, message: str) -> None: ...


@dataclass(frozen=True)
class Written:
    """One setting as the user wrote it: its value and the file holding its value ("" if not given), named
    by where it is written ("" in the environment, "BORG_SERVER_CONFIG (path) clients.web.") and its name there
    (BORG_CLIENT_WEB_KEY, key) or its file's name (BORG_CLIENT_WEB_KEY_FILE, key_file)."""

    name: str
    file_name: str
    value: str = ""
    file: str = ""
    where: str = ""

    @property
    def label(self) -> str:
        """Return how a problem names the setting's value."""
        return self.where + self.name

    @property
    def file_label(self) -> str:
        """Return how a problem names the setting's file."""
        return self.where + self.file_name


def read_file(settings: Problems, written: Written, limit: int) -> str | None:
    """Given a setting written as a file, return the file's text without its trailing line ends, or None after
    recording why it cannot be read (missing, not a regular file, larger than limit, not UTF-8)."""
    try:
        mode = os.stat(written.file).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # a FIFO or device would block or never end
            raise OSError(0, "not a regular file")
        with open(written.file, "rb") as file:
            data = file.read(4 * limit + 1)
        if len(data) > 4 * limit:
            raise OSError(0, f"larger than {4 * limit} bytes")
        return data.decode("utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        settings.problem(written.file_label, f"cannot read {cut(written.file)}: {reason}")
        return None
