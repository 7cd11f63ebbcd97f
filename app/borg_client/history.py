"""What the sidecar knows of its repository from earlier backups, so a vanished one is never taken for a first run.

After every backup that wrote an archive, the repository's location and id, the last archive and
how many archives this sidecar wrote into it are kept in the state volume. A sidecar with that
record, a successful run in its journal, borg's security dir for a repository or a key export
"has backed up before": for it, a repository that does not exist is gone, not new.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from borg_client import journal
from borg_client.config import REPO_PATTERN
from borg_client.paths import Paths
from borg_common.files import atomic_write

logger = logging.getLogger(__name__)

NEW_REPOSITORY = "borg-client init --new-repository"
KEPT_ASIDE = 10  # replaced copies kept of each file (key export, paper key, repository record)


@dataclass(frozen=True)
class Known:
    """The repository as the last backup saw it."""

    location: str
    repository_id: str
    last_archive: str
    last_time: str  # ISO 8601, as borg create --json gives the archive's end
    archives_written: int  # by this sidecar since the repository id last changed


def read(paths: Paths) -> Known | None:
    """Given the state volume, return the recorded repository, or None if there is no readable record."""
    try:
        return Known(**json.loads(paths.repository_record.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def record_backup(paths: Paths, create_json: str) -> Known | None:
    """Given borg create's --json output of a backup that wrote an archive, update and return the record.

    Return None (and keep the old record) if the output does not name the repository and archive.
    """
    try:
        document = json.loads(create_json)
        location, repository_id = document["repository"]["location"], document["repository"]["id"]
        archive = document["archive"]
        name, time = archive["name"], archive.get("end") or archive.get("start") or ""
    except (ValueError, KeyError, TypeError):
        logger.warning("borg create named no repository and archive: the repository record is not updated")
        return None
    before = read(paths)
    written = before.archives_written + 1 if before and before.repository_id == repository_id else 1
    known = Known(location, repository_id, name, time, written)
    atomic_write(paths.repository_record, json.dumps(asdict(known), indent=1) + "\n", 0o600)
    return known


def evidence(paths: Paths) -> str | None:
    """Given the state volume, return what shows this sidecar has backed up before, or None for a fresh one."""
    if paths.repository_record.exists():
        return f"its repository record {paths.repository_record}"
    if any(run.get("status") in ("success", "warning") for run in journal.last_runs(paths)):
        return f"a successful backup in its run journal {paths.runs}"
    if paths.security.is_dir() and any(paths.security.iterdir()):
        return f"borg's security dir {paths.security}"
    if paths.key_file.exists():
        return f"its key export {paths.key_file}"
    return None


def vanished(paths: Paths, location: str) -> str:
    """Given the state volume and the repository URL, return the failure for a repository that is gone, or, when
    this sidecar wrote to another location, for a BORG_REPO that changed (a typo is no reason to start anew)."""
    known = read(paths)
    if known and same_location(known.location, location) is False:
        return (
            f"there is no repository at BORG_REPO {location}, and this sidecar has backed up to another location, "
            f"{known.location} (the last archive {known.last_archive} on {shown_time(known.last_time)}): is BORG_REPO "
            f"mistyped? Nothing was initialised. Set BORG_REPO back to {known.location}; only if this is a new "
            f"repository on purpose, run `{NEW_REPOSITORY}`"
        )
    if known:
        archives = "1 archive" if known.archives_written == 1 else f"{known.archives_written} archives"
        held = (
            f"the repository {location} (id {known.repository_id[:16]}…) held the {archives} this sidecar wrote "
            f"into it, the last {known.last_archive} on {shown_time(known.last_time)}; it is gone from the server"
        )
    else:
        held = f"the repository {location} is gone from the server, though {evidence(paths)} shows backups into it"
    return (
        f"{held}. Nothing was initialised and the key export was kept. Restore the server's repository "
        f"volume if you can; if its data is really lost, start a new repository with `{NEW_REPOSITORY}`"
    )


def same_location(first: str, second: str) -> bool | None:
    """Given two ssh:// repository URLs, return whether they name the same repository (the user as written, the host
    in any case, port 22 written or not), or None if one is no ssh:// URL."""
    parts = [REPO_PATTERN.fullmatch(url) for url in (first, second)]
    if not all(parts):
        return None
    one, other = ((m["user"] or "", m["host"].lower(), m["port"] or "22", m["path"]) for m in parts)
    return one == other


def shown_time(text: str) -> str:
    """Given an ISO 8601 time as borg writes it (local, naive), return it to the minute, or as it is."""
    try:
        return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return text or "an unknown date"


def set_aside(paths: Paths) -> list[Path]:
    """Move the repository record and the key export of a repository given up to names with a time suffix.

    Return where they went. Nothing is deleted: the old key still opens the old repository's copies.
    """
    moved = []
    for path in (paths.repository_record, paths.key_file, paths.paper_key_file):
        if path.exists():
            target = aside(path)
            path.rename(target)
            moved.append(target)
    return moved


def aside(path: Path) -> Path:
    """Given a file to keep but replace, return the name it is kept under now (a UTC time suffix).

    Of the copies kept before, the newest KEPT_ASIDE - 1 stay (so KEPT_ASIDE with the new one); older ones are removed.
    """
    for old in sorted(path.parent.glob(path.name + ".replaced-*"))[: -(KEPT_ASIDE - 1) or None]:
        old.unlink(missing_ok=True)
        logger.warning("removed %s: only the last %d replaced copies of %s are kept", old, KEPT_ASIDE, path.name)
    return path.with_name(path.name + datetime.now(UTC).strftime(".replaced-%Y%m%dT%H%M%SZ"))
