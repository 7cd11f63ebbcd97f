"""What a client's files take on disk: the bytes below a directory, measured now."""

from __future__ import annotations

import os
from pathlib import Path


def directory_size(path: Path) -> int:
    """Given a directory, return the bytes used by the files below it (0 if it does not exist)."""
    total = 0
    for root, _directories, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total
