"""The recovery kit: `borg-client recovery-kit` writes it beside the key export and prints it; whether a person
said it was saved off the host (`--confirm-saved`) is one question, `saved(paths)`, for status and the digest.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from borg_client import kit_format, repository
from borg_client.config import ClientConfig
from borg_client.paths import Paths
from borg_common.files import atomic_write

logger = logging.getLogger(__name__)

COMMAND = "borg-client recovery-kit"
NEVER_SAVED = f"never confirmed saved: run {COMMAND}, keep its output off this host, then {COMMAND} --confirm-saved"


def write(config: ClientConfig, made: datetime | None = None) -> tuple[Path, str]:
    """Export the key again (file and paper form), write the kit beside it and return where and its text.

    Raise repository.RunFailed if borg cannot export the key.
    """
    paths = config.paths
    key_file = repository.export_key(config)
    text = kit_format.render(
        config.client, config.repository, config.encryption, key_file.read_text(), paths.paper_key_file.read_text(),
        pinned_lines(config.known_hosts), made or datetime.now(UTC),
    )  # fmt: skip
    atomic_write(paths.recovery_kit, text, 0o600)
    logger.info("recovery kit written to %s", paths.recovery_kit)
    return paths.recovery_kit, text


def pinned_lines(known_hosts: Path) -> list[str]:
    """Given the known_hosts file in use, return its host key lines (no comments, no blank lines)."""
    try:
        text = known_hosts.read_text(errors="replace")
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def confirm_saved(paths: Paths, now: datetime | None = None) -> str:
    """Record that a person saved the kit off the host; return when, as recorded."""
    when = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    atomic_write(paths.kit_saved, json.dumps({"confirmed_at": when}) + "\n", 0o600)
    return when


def saved(paths: Paths) -> bool:
    """Given the state volume, return whether a person ever confirmed the recovery kit saved off the host."""
    return confirmed_at(paths) is not None


def confirmed_at(paths: Paths) -> str | None:
    """Given the state volume, return when the kit was confirmed saved (ISO 8601), or None if never."""
    try:
        return json.loads(paths.kit_saved.read_text())["confirmed_at"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def status_line(paths: Paths) -> str:
    """Given the state volume, return what `status` says about the kit."""
    when = confirmed_at(paths)
    return f"confirmed saved on {when}" if when else NEVER_SAVED
