"""Bringing one client's copy to the primary's commit: fetch and check into staging, then move into place.

fetch_client fetches the new segments and borg's config, index, hints and integrity files of the
primary's last commit into a staging directory; each segment must have the listed size and sha256
and be an intact borg segment, and the last one must end with a COMMIT. install, behind the
client's closed gate, moves the segments the primary removed aside (replica/held.py) and the
staged files into the copy, so borg opens it as it is (nothing to rebuild).
"""

from __future__ import annotations

import configparser
import contextlib
import os
import shutil
from pathlib import Path

from borg_server.records.client_state import ClientState, SegmentPrint
from borg_server.records.replica_state import Held
from borg_server.replica.held import held_name
from borg_server.replica.primary import Moved, Primary
from borg_server.repository import segments
from borg_server.system.paths import Paths

TRANSACTION_FILES = ("hints", "index", "integrity")
DEFAULT_SEGMENTS_PER_DIR = 1000


def segments_per_dir(config: Path) -> int:
    """Given a repository's config file, return borg's segments_per_dir."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config)
    return parser.getint("repository", "segments_per_dir", fallback=DEFAULT_SEGMENTS_PER_DIR)


def check_segment(path: Path, number: int, last: bool) -> None:
    """Raise Moved unless the fetched segment (a file named by its number) is intact and, the last, committed."""
    try:
        for _entry in segments.iter_segment(path):
            pass
    except segments.SegmentError as error:
        raise Moved(f"segment {number} is not an intact borg segment: {error}") from None
    if last and not segments.is_committed(path):
        raise Moved(f"segment {number}, the primary's last commit, ends with no COMMIT")


def fetch_client(
    primary: Primary, name: str, listed: dict, new: list[int], staging: Path, gid: int
) -> dict[int, SegmentPrint]:
    """Fetch the new segments and the commit's files into staging; return the new segments' prints."""
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(mode=0o700, parents=True)
    last = listed["last_commit"]
    for file in ("config", *(f"{kind}.{last}" for kind in TRANSACTION_FILES)):
        primary.fetch(name, file, staging / file, gid)
    with contextlib.suppress(Moved):
        primary.fetch(name, "README", staging / "README", gid)
    prints = {}
    for number in new:
        target = staging / str(number)
        size, sha256 = primary.fetch(name, f"segment:{number}", target, gid)
        if [size, sha256] != listed["segments"][str(number)]:
            raise Moved(f"segment {number} changed while it was copied")
        check_segment(target, number, number == last)
        status = target.stat()
        prints[number] = SegmentPrint(size, sha256, status.st_mtime_ns, status.st_ctime_ns, status.st_ino)
    return prints


def install(paths: Paths, name: str, listed: dict, prints: dict[int, SegmentPrint], aside: list[int],
            found: ClientState, now: str, gid: int) -> tuple[Held, ...]:  # fmt: skip
    """Behind the client's closed gate: move the set-aside segments out, the staged files in; return what is held."""
    repository, staging, held_directory = (paths.client_repository(name), paths.replica_staging(name),
                                           paths.replica_held(name))  # fmt: skip
    if not repository.is_dir():
        repository.mkdir(mode=0o770)
        os.chown(repository, 0, gid)
        os.chmod(repository, 0o770)
    per_dir = segments_per_dir(staging / "config")
    present = segments.segment_files(repository)
    held = []
    for number in aside:
        if number in present:
            held_directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            file = held_name(number, now)
            os.replace(present[number], held_directory / file)
            held.append(Held(number, now, file))
        found.segments.pop(number, None)
    for number, print_ in prints.items():
        directory = repository / "data" / str(number // per_dir)
        for level in (repository / "data", directory):
            if not level.is_dir():
                level.mkdir(mode=0o750)
                os.chown(level, 0, gid)
        os.replace(staging / str(number), directory / str(number))
        found.segments[number] = print_
    last = listed["last_commit"]
    keep = {f"{kind}.{last}" for kind in TRANSACTION_FILES}
    for old in repository.iterdir():
        if old.name.split(".")[0] in TRANSACTION_FILES and old.name not in keep and old.is_file():
            old.unlink()
    for file in ("config", "README", *keep):
        if (staging / file).exists():
            os.replace(staging / file, repository / file)
    shutil.rmtree(staging, ignore_errors=True)
    return tuple(held)
