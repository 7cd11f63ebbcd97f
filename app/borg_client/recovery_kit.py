"""The recovery kit: `borg-client recovery-kit` writes it beside the key export and prints it; whether a person
said it was saved off the host (`--confirm-saved`) is one question, `saved(paths)`, for status and the digest.
"""

from __future__ import annotations

import hashlib
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
NEW_KIT = f"run {COMMAND}, keep its output off this host, then {COMMAND} --confirm-saved"


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
    """Record that a person saved the kit off the host, for the key exported now; return when, as recorded."""
    when = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    record = {"confirmed_at": when, "key_sha256": key_digest(paths)}
    atomic_write(paths.kit_saved, json.dumps(record) + "\n", 0o600)
    return when


def key_digest(paths: Paths) -> str | None:
    """Given the state volume, return the sha256 of the key export (None: no export), which a kit holds."""
    try:
        return hashlib.sha256(paths.key_file.read_bytes()).hexdigest()
    except OSError:
        return None


def recorded(paths: Paths) -> dict | None:
    """Given the state volume, return the last confirmation ({"confirmed_at", "key_sha256"}), or None."""
    try:
        record = json.loads(paths.kit_saved.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("confirmed_at"), str) else None


def saved(paths: Paths) -> bool:
    """Given the state volume, return whether a person confirmed a kit of the current key saved off the host.

    A new key (a new repository, a changed passphrase) needs a new kit: a confirmation of the old one does not count.
    """
    return confirmed_at(paths) is not None


def confirmed_at(paths: Paths) -> str | None:
    """Given the state volume, return when a kit of the current key was confirmed saved (ISO 8601), or None."""
    record = recorded(paths)
    return record["confirmed_at"] if record and record.get("key_sha256") == key_digest(paths) else None


def status_line(paths: Paths) -> str:
    """Given the state volume, return what `status` says about the kit."""
    when, record = confirmed_at(paths), recorded(paths)
    if when:
        return f"confirmed saved on {when}"
    if record:
        return f"the key changed since a kit was confirmed saved on {record['confirmed_at']}: {NEW_KIT}"
    return f"never confirmed saved: {NEW_KIT}"
