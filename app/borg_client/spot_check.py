"""The spot check of a restore drill: a random sample of an archive's regular files, extracted into a bounded
scratch directory and compared byte for byte with the live files that have not changed since (same size and mtime).

A file that changed since the archive was made is skipped and counted; a file that did not change and still
differs is the finding: silent corruption on the live disk or in the backup. The scratch directory holds one
batch at a time (at most SCRATCH_LIMIT, and half of its free space); a file larger than that is compared as
borg streams it (extract --stdout), never written.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from borg_client import borg
from borg_client.borgcall import Control, call_borg, explain, stream_borg
from borg_client.config import ClientConfig
from borg_client.drills import Sample
from borg_client.failures import Failure

logger = logging.getLogger(__name__)

SCRATCH_LIMIT = 1 << 30  # bytes one batch extracts at most (and never more than half the free space)
BLOCK = 1 << 20  # bytes compared at a time
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SOURCES = "backup/"  # the live volumes' place in an archive (/backup/<name>/…)


@dataclass(frozen=True)
class Entry:
    """One regular file of an archive: its path there (backup/data/file), size and mtime (µs since the epoch)."""

    path: str
    size: int
    mtime_us: int


@dataclass
class Tally:
    """What a spot check found: files compared (and their bytes), skipped because they changed, and differing."""

    drawn: int = 0
    compared: int = 0
    bytes: int = 0
    skipped: int = 0
    differing: list[str] = field(default_factory=list)  # one sentence each, naming the file


def entries(json_lines: str) -> list[Entry]:
    """Given borg list --json-lines output, return the regular files under backup/ (not the dumps).

    A path a patterns file cannot hold (a line break, white space at either end) is left out.
    """
    found = []
    for line in json_lines.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        path = item.get("path", "")
        if item.get("type") != "-" or not path.startswith(SOURCES) or path != path.strip() or "\n" in path:
            continue
        found.append(Entry(path, int(item.get("size") or 0), archived_mtime(item["mtime"])))
    return found


def archived_mtime(text: str) -> int:
    """Given an mtime as borg lists it (local time, to the microsecond), return microseconds since the epoch."""
    moment = datetime.fromisoformat(text)
    moment = moment if moment.tzinfo else moment.astimezone()
    return (moment - EPOCH) // timedelta(microseconds=1)


def choose(found: list[Entry], sample: Sample, rng: random.Random | None = None) -> list[Entry]:
    """Given an archive's regular files and VERIFY_SAMPLE, return the ones to compare, in path order."""
    drawn = (rng or random.SystemRandom()).sample(found, sample.size(len(found)))
    return sorted(drawn, key=lambda entry: entry.path)


def unchanged(entry: Entry, live: Path) -> bool:
    """Return whether the live file is still the archived one by its looks: a regular file, same size and mtime."""
    try:
        status = os.lstat(live)
    except OSError:
        return False
    same_time = abs(status.st_mtime_ns // 1000 - entry.mtime_us) <= 1  # borg lists mtime rounded to the µs
    return stat.S_ISREG(status.st_mode) and status.st_size == entry.size and same_time


def first_difference(one: Path, other: Path) -> int | None:
    """Given two files, return the offset of the first byte in which they differ (or where one ends), or None."""
    offset = 0
    with open(one, "rb") as left, open(other, "rb") as right:
        while True:
            a, b = left.read(BLOCK), right.read(BLOCK)
            if a != b:
                return offset + next(
                    (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
                )
            if not a:
                return None
            offset += len(a)


def differs(path: str, offset: int) -> str:
    """Return the sentence naming a file that differs from the archive although it did not change."""
    return (
        f"/{path} differs from the archive from byte {offset} on although its size and mtime are unchanged "
        "(silent corruption of the live file or of the backup)"
    )


def batches(chosen: list[Entry], limit: int) -> Iterator[list[Entry]]:
    """Given the files to extract and the scratch space's limit in bytes, yield groups that fit; a file larger than
    the limit alone."""
    group, size = [], 0
    for entry in chosen:
        if group and size + entry.size > limit:
            yield group
            group, size = [], 0
        group.append(entry)
        size += entry.size
    if group:
        yield group


def patterns(group: list[Entry]) -> str:
    """Given files of an archive, return the borg patterns file that extracts exactly them."""
    return "".join(f"+ pp:{entry.path}\n" for entry in group) + "- fm:*\n"


def space(scratch: Path) -> int:
    """Given the scratch directory, return how many bytes one batch may take there."""
    return max(0, min(SCRATCH_LIMIT, shutil.disk_usage(scratch).free // 2))


def check(config: ClientConfig, archive: str, sample: Sample, scratch: Path, control: Control) -> Tally:
    """Given the newest archive and an empty scratch directory, compare a sample of its files with the live ones.

    Raise Failure if borg cannot list or extract them (the message says which and why).
    """
    listing = call_borg(config, borg.list_paths_argv(archive, SOURCES.rstrip("/")), capture_json=True, control=control)
    if listing.returncode != 0:
        raise Failure(explain(listing, f"borg list of {archive} failed"), msgids=listing.msgids)
    chosen = choose(entries(listing.stdout), sample)
    tally = Tally(drawn=len(chosen))
    root = config.sources.parent
    kept = [entry for entry in chosen if unchanged(entry, root / entry.path)]
    tally.skipped = len(chosen) - len(kept)
    limit = space(scratch)
    for group in batches(kept, limit):
        if len(group) == 1 and group[0].size > limit:
            compare_streamed(config, archive, group[0], root, tally)
        else:
            compare_extracted(config, archive, group, scratch, root, tally, control)
    logger.info(
        "spot check of %s: %d file(s) compared, %d skipped (changed since), %d differ",
        archive, tally.compared, tally.skipped, len(tally.differing),
    )  # fmt: skip
    return tally


def compare_extracted(config, archive, group, scratch: Path, root: Path, tally: Tally, control: Control) -> None:
    """Extract group into scratch, compare each file with its live one, count it in tally; empty scratch again."""
    files, listed = scratch / "files", scratch / "patterns"
    files.mkdir(parents=True, exist_ok=True)
    listed.write_text(patterns(group))
    try:
        call = call_borg(config, borg.extract_patterns_argv(archive, listed), cwd=files, control=control)
        if unreadable(call, f"borg extract of {len(group)} file(s) of {archive}", tally):
            return
        for entry in group:
            restored = files / entry.path
            if not restored.is_file():
                tally.differing.append(f"/{entry.path} is listed in the archive but borg extract did not restore it")
                continue
            tally_one(entry, first_difference(restored, root / entry.path), root, tally)
    finally:
        shutil.rmtree(files, ignore_errors=True)
        listed.unlink(missing_ok=True)


class _Differs(Exception):
    """Ends a streamed comparison at the first difference."""


def compare_streamed(config: ClientConfig, archive: str, entry: Entry, root: Path, tally: Tally) -> None:
    """Compare one large file as borg streams it with the live one, count it in tally."""
    offset = 0
    with open(root / entry.path, "rb") as live:

        def sink(data: bytes) -> None:
            nonlocal offset
            theirs = live.read(len(data))
            if theirs != data:
                offset += next((i for i, (x, y) in enumerate(zip(data, theirs, strict=False)) if x != y), len(theirs))
                raise _Differs
            offset += len(data)

        try:
            call = stream_borg(config, borg.extract_stdout_argv(archive, entry.path), sink)
        except _Differs:
            tally_one(entry, offset, root, tally)
            return
        if unreadable(call, f"borg extract --stdout of /{entry.path}", tally):
            return
        ended = None if live.read(1) == b"" else offset
    tally_one(entry, ended, root, tally)


def unreadable(call, what: str, tally: Tally) -> bool:
    """Given a finished extract, return whether it failed because the repository's data is damaged (counted in tally
    as a finding); raise Failure if it failed otherwise. A warning (an owner it could not set) is no failure."""
    if call.outcome.status != "failure":
        return False
    if any("Integrity" in msgid for msgid in call.msgids):
        tally.differing.append(f"{explain(call, what + ' failed')}: the repository's data for it is damaged")
        return True
    raise Failure(explain(call, f"{what} failed"), msgids=call.msgids)


def tally_one(entry: Entry, offset: int | None, root: Path, tally: Tally) -> None:
    """Given a compared file and where it first differs (None: nowhere), count it; one that changed meanwhile is
    skipped."""
    if not unchanged(entry, root / entry.path):
        tally.skipped += 1  # written while the drill read it: a change, not a corruption
        return
    tally.compared += 1
    tally.bytes += entry.size
    if offset is not None:
        tally.differing.append(differs(entry.path, offset))
