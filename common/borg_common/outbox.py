"""The durable outbox: one JSON file per document, written before any network call.

Each file holds {"document": …, "pending": [urls], "created_at": ISO time, "attempts": {url: n}}.
File names start with a zero-padded nanosecond stamp, so sorting by name is oldest first. Every
change is written atomically (temp file in the same directory, fsync, rename, fsync the directory),
so a kill at any moment leaves either the old file or the new one. Files are created mode 0600
because pending URLs may carry tokens. Callers serialise writers (the sidecar's run lock).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from borg_common.files import atomic_write, fsync_directory, read_regular
from borg_common.values import duration_text

logger = logging.getLogger(__name__)

DEFAULT_MAX_ENTRIES = 1000
SUFFIX = ".json"
CORRUPT_SUFFIX = ".corrupt"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Entry:
    """One document in the outbox and the URLs it has not reached yet."""

    path: Path
    document: dict[str, Any]
    pending: tuple[str, ...]
    created_at: str
    attempts: dict[str, int]


def put(
    directory: Path,
    document: dict[str, Any],
    urls: list[str],
    *,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    max_age: float | None = None,
) -> Path | None:
    """Given a document and the URLs it must reach, write it to the outbox and return its file.

    A document with no URLs is not written and None is returned. Afterwards the outbox is trimmed
    to max_entries (see trim). Raise TypeError if the document is not JSON-serialisable, OSError if
    the directory cannot be written.
    """
    pending = list(dict.fromkeys(urls))
    if not pending:
        return None
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    record = {"document": document, "pending": pending, "created_at": created_at, "attempts": {}}
    text = json.dumps(record, sort_keys=True)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{_next_stamp(directory):020d}-{_identity(document)}{SUFFIX}"
    atomic_write(path, text, 0o600)
    logger.debug("outbox: stored %s for %d receiver(s)", path.name, len(pending))
    trim(directory, max_entries, max_age)
    return path


def entries(directory: Path) -> list[Entry]:
    """Given the outbox directory, return its entries oldest first.

    A file that cannot be read or parsed is renamed to <name>.corrupt with a warning and skipped; a
    missing directory is an empty outbox.
    """
    found = []
    for path in _files(directory):
        try:
            found.append(_load(path))
        except FileNotFoundError:
            continue
        except (OSError, ValueError, TypeError, KeyError) as error:
            _move_aside(path, error)
    return found


def mark_done(entry: Entry, url: str) -> Entry | None:
    """Given an entry and a URL that needs nothing more (delivered, rejected or removed), forget the URL.

    The file is rewritten without it, or removed when no URL is left (then None is returned). A file
    that has disappeared meanwhile is not re-created. Raise OSError if the directory cannot be written.
    """
    pending = tuple(u for u in entry.pending if u != url)
    attempts = {u: n for u, n in entry.attempts.items() if u != url}
    if not pending:
        with contextlib.suppress(FileNotFoundError):
            entry.path.unlink()
            fsync_directory(entry.path.parent)
        return None
    return _rewrite(replace(entry, pending=pending, attempts=attempts))


def record_failure(entry: Entry, url: str) -> Entry:
    """Given an entry and a URL whose delivery round failed, return the entry with that URL's count raised.

    Raise OSError if the directory cannot be written.
    """
    attempts = {**entry.attempts, url: entry.attempts.get(url, 0) + 1}
    return _rewrite(replace(entry, attempts=attempts))


def trim(directory: Path, max_entries: int = DEFAULT_MAX_ENTRIES, max_age: float | None = None) -> int:
    """Given the outbox directory, remove the oldest files beyond max_entries and, with max_age, those
    stored more than max_age seconds ago (by their name's stamp); return how many went.

    One warning names the count, so a dead receiver cannot fill the state volume unnoticed.
    """
    files = _files(directory)
    by_count = files[: max(len(files) - max_entries, 0)]
    oldest_kept = time.time_ns() - int(max_age * 1e9) if max_age is not None else 0
    by_age = [path for path in files[len(by_count) :] if _stamp(path) < oldest_kept]
    for path in by_count + by_age:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    if by_count:
        logger.warning(
            "outbox: %d documents exceed the limit of %d; dropped the %d oldest (%s … %s) undelivered",
            len(files),
            max_entries,
            len(by_count),
            by_count[0].name,
            by_count[-1].name,
        )
    if by_age:
        logger.warning(
            "outbox: dropped %d undelivered document(s) older than %s (%s … %s)",
            len(by_age),
            duration_text(int(max_age)),
            by_age[0].name,
            by_age[-1].name,
        )
    return len(by_count) + len(by_age)


def size(directory: Path) -> int:
    """Given the outbox directory, return how many documents are waiting in it."""
    return len(_files(directory))


def _files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    names = (p for p in directory.iterdir() if p.name.endswith(SUFFIX) and not p.name.startswith("."))
    return sorted(names, key=lambda p: p.name)


def _stamp(path: Path) -> int:
    """Given an outbox file, return the nanosecond stamp its name starts with (its mtime if the name has none)."""
    prefix = path.name.split("-", 1)[0]
    if prefix.isdigit():
        return int(prefix)
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return time.time_ns()


def _next_stamp(directory: Path) -> int:
    """Return a nanosecond stamp later than every file's, so names sort in put order even if the clock steps back."""
    newest = 0
    for path in _files(directory):
        prefix = path.name.split("-", 1)[0]
        if prefix.isdigit():
            newest = max(newest, int(prefix))
    return max(time.time_ns(), newest + 1)


def _identity(document: dict[str, Any]) -> str:
    raw = str(document.get("run_id") or document.get("id") or "document")
    return _UNSAFE.sub("_", raw).strip("._")[:64] or "document"


def _load(path: Path) -> Entry:
    record = json.loads(read_regular(path).decode("utf-8"))  # never through a symlink, never a FIFO
    document, pending, created_at, attempts = (record[k] for k in ("document", "pending", "created_at", "attempts"))
    if not (
        isinstance(document, dict)
        and isinstance(pending, list)
        and pending
        and all(isinstance(u, str) for u in pending)
        and isinstance(created_at, str)
        and isinstance(attempts, dict)
        and all(isinstance(n, int) for n in attempts.values())
    ):
        raise ValueError("not an outbox record")
    return Entry(path, document, tuple(pending), created_at, attempts)


def _move_aside(path: Path, error: Exception) -> None:
    target = path.with_name(path.name + CORRUPT_SUFFIX)
    try:
        os.replace(path, target)
    except OSError as move_error:
        logger.warning("outbox: skipping unreadable %s (%s); cannot move it aside: %s", path.name, error, move_error)
        return
    logger.warning("outbox: moved unreadable %s aside to %s (%s)", path.name, target.name, error)


def _rewrite(entry: Entry) -> Entry:
    if not entry.path.exists():
        return entry
    record = {
        "document": entry.document,
        "pending": list(entry.pending),
        "created_at": entry.created_at,
        "attempts": entry.attempts,
    }
    atomic_write(entry.path, json.dumps(record, sort_keys=True), 0o600)
    return entry
