"""The replica's side of replication: pull every client's committed segments from the primary, never damage.

One round (REPLICATE_CRON, or `borg-server replicate`) opens one SSH session to the primary's reader
(replica_source.py) with the replica key and the pinned host key, lists every client's committed
state and, per client, under the client's state lock:

1. compares every segment copied before (the baseline, state.segments, SegmentPrint as the monitor
   takes them) with the primary's: one that changed, shrank or vanished there is a mismatch and is
   never copied over; the good copy stays and `replica_mismatch` is raised. A vanished segment is
   no mismatch when the primary's last audited compaction changed since the last round (or the
   client may delete, APPEND_ONLY=no): it is moved aside and deleted REPLICA_KEEP_REMOVED later;
2. fetches only the segments it does not have, up to the primary's last commit (never half a
   transaction), into a staging directory; each must have the listed size and sha256 and be an
   intact borg segment, and the last one must end with a COMMIT;
3. fetches borg's config, index, hints and integrity files of that commit, so borg opens the copy
   as it is (nothing to rebuild: the client keys only read);
4. closes the client's gate (gate.py: read sessions wait), moves the removed segments aside and the
   fetched files into place, and records the copy (replica_state.py).

So the copy only grows, holds exactly the primary's committed state where the two agree, and keeps
its own segments where they do not. Alerts go through alerts.py: `replica_mismatch` and
`replica_lag` (no complete copy for REPLICA_MAX_LAG).
"""

from __future__ import annotations

import configparser
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from borg_common.settings import CLIENT_NAME
from borg_server import accounts, alerts, gate, safe_files, segments, state
from borg_server.config import ServerConfig
from borg_server.config_replica import Replication
from borg_server.paths import Paths
from borg_server.replica_state import Held, ReplicaState
from borg_server.state import ClientState, SegmentPrint

logger = logging.getLogger(__name__)

GATE_WAIT = 600  # seconds a round waits for a client's read sessions before it tries again next round
BLOCK = 1024 * 1024
MAX_LISTING = 256 * 1024 * 1024
TRANSACTION_FILES = ("hints", "index", "integrity")
DEFAULT_SEGMENTS_PER_DIR = 1000


class PrimaryError(Exception):
    """The primary could not be reached or answered what its reader never sends; the message says which."""


class Moved(Exception):
    """The primary changed a client's repository during the round (a new commit, a compaction): next round."""


def ssh_argv(replication: Replication, key: Path, known_hosts: Path) -> list[str]:
    """Given the settings and where the key and pinned host key are, return the ssh command to the reader."""
    return [
        "ssh", "-T", "-i", str(key), "-p", str(replication.port),
        "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=30", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4",
        f"{replication.user}@{replication.host}", "replica",
    ]  # fmt: skip


class Primary:
    """One SSH session to the primary's reader: list, then get files (see replica_source)."""

    def __init__(self, replication: Replication, paths: Paths):
        paths.replica_ssh.mkdir(mode=0o700, parents=True, exist_ok=True)
        key, known_hosts = paths.replica_ssh / "id_replica", paths.replica_ssh / "known_hosts"
        with open(replication.ssh_key_file, "rb") as source:  # ssh wants a key only its owner reads
            descriptor = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(descriptor, "wb") as target:
                shutil.copyfileobj(source, target)
        known_hosts.write_text(replication.known_hosts_line)
        self.errors = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            ssh_argv(replication, key, known_hosts), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors
        )

    def request(self, message: dict) -> int:
        """Send one request; return the size of the answer's body; raise Moved or PrimaryError."""
        try:
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline(4096)
        except OSError:
            line = b""
        if not line:
            raise PrimaryError(f"the primary closed the session: {self.ssh_errors()}")
        try:
            header = json.loads(line)
        except ValueError:
            raise PrimaryError("the primary answered what its reader never sends") from None
        if header.get("ok") is not True:
            raise Moved(str(header.get("error")))
        if not isinstance(header.get("size"), int) or header["size"] < 0:
            raise PrimaryError("the primary answered what its reader never sends")
        return header["size"]

    def listing(self) -> dict:
        """Return every client's committed state on the primary, as the reader lists it."""
        size = self.request({"op": "list"})
        if size > MAX_LISTING:
            raise PrimaryError(f"the primary's list has {size} bytes")
        body = self.read_exactly(size)
        try:
            return json.loads(body)
        except ValueError:
            raise PrimaryError("the primary's list is not JSON") from None

    def fetch(self, client: str, name: str, target: Path, gid: int) -> tuple[int, str]:
        """Fetch one listed file into target (root:gid, mode 640); return its size and sha256."""
        size = self.request({"op": "get", "client": client, "file": name})
        digest = hashlib.sha256()
        with open_new(target, gid) as file:
            left = size
            while left:
                block = self.read_exactly(min(BLOCK, left))
                digest.update(block)
                file.write(block)
                left -= len(block)
        return size, digest.hexdigest()

    def read_exactly(self, size: int) -> bytes:
        data = self.process.stdout.read(size)
        if len(data) != size:
            raise PrimaryError(f"the primary's answer was cut short: {self.ssh_errors()}")
        return data

    def ssh_errors(self) -> str:
        self.errors.seek(0)
        lines = self.errors.read().decode(errors="replace").strip().splitlines()
        return " / ".join(lines[-3:]) or "no message"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.errors.close()


def open_new(path: Path, gid: int) -> BinaryIO:
    """Create (replace) a file for writing, root:gid, mode 640, never through a symlink."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)
    os.fchown(descriptor, 0, gid)
    return os.fdopen(descriptor, "wb")


def client_gid(paths: Paths, server: ServerConfig, name: str) -> int:
    """The group that may read the client's copy: its own account's on this replica, else root's."""
    if name not in {client.name for client in server.clients}:
        return 0
    try:
        return accounts.lookup(paths, name).gid
    except (accounts.UnknownClient, OSError):
        return 0


def own_tree(paths: Paths, name: str, gid: int) -> None:
    """Make the client's copy root's, readable by gid: directories 750 (the repository's own 770, for borg's
    lock files alone), files 640. Walked only when the top directory's group is not gid yet."""
    top = paths.client_directory(name)
    top.mkdir(mode=0o750, parents=True, exist_ok=True)
    if (os.lstat(top).st_uid, os.lstat(top).st_gid) == (0, gid):
        return
    for directory, subdirectories, files in os.walk(top):
        os.lchown(directory, 0, gid)
        os.chmod(directory, 0o770 if Path(directory) == paths.client_repository(name) else 0o750)
        for entry in files:
            path = os.path.join(directory, entry)
            if not os.path.islink(path):
                os.lchown(path, 0, gid)
                os.chmod(path, 0o640)
        subdirectories[:] = [d for d in subdirectories if not os.path.islink(os.path.join(directory, d))]
    logger.info("client %s: its copy belongs to root, readable by gid %d", name, gid)


def judge(found: ClientState, listed: dict, accept: bool) -> tuple[dict[int, str], list[int]]:
    """Given the copy's state and the primary's listing of the client, return the mismatches and what to set aside.

    A copied segment that changed or shrank on the primary, or vanished there without a compaction, is a
    mismatch (segment -> kind); one that vanished with a compaction (or from a client that may delete)
    is set aside. accept: the primary's state is taken, so every mismatch is set aside instead.
    """
    theirs = {int(n): tuple(value) for n, value in listed["segments"].items()}
    replica = found.replica or ReplicaState()
    compacted = listed.get("compacted_at") != replica.compacted_at or not listed.get("append_only", True)
    mismatch, aside = {}, []
    for number, mine in sorted(found.segments.items()):
        other = theirs.get(number)
        if other is not None and (other[0], other[1]) == (mine.size, mine.sha256):
            continue
        kind = "removed" if other is None else "truncated" if other[0] < mine.size else "changed"
        if accept or (kind == "removed" and compacted):
            aside.append(number)
        else:
            mismatch[number] = kind
    return mismatch, aside


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


def held_name(number: int, now: str) -> str:
    """Return the file name a set-aside segment gets: its number and when it was set aside."""
    return f"{number}.{now.replace(':', '-')}"


def adopt_orphans(paths: Paths, name: str, held: tuple[Held, ...]) -> tuple[Held, ...]:
    """Return held plus the set-aside files the state does not know (a round that failed after moving them)."""
    directory, known = paths.replica_held(name), {entry.file for entry in held}
    orphans = []
    for file in sorted(directory.iterdir()) if safe_files.is_real_directory(directory) else []:
        number, _, moment = file.name.partition(".")
        if file.name not in known and number.isdigit() and held_name(int(number), moment) == file.name:
            date, _, time = moment.partition("T")
            with contextlib.suppress(ValueError):
                orphans.append(Held(int(number), datetime.fromisoformat(f"{date}T{time.replace('-', ':')}").isoformat(),
                                    file.name))  # fmt: skip
    return held + tuple(orphans)


def expire_held(paths: Paths, name: str, held: tuple[Held, ...], keep: int, now: datetime) -> tuple[Held, ...]:
    """Delete the held segments older than keep seconds; return those still kept."""
    kept = []
    for entry in adopt_orphans(paths, name, held):
        if (now - datetime.fromisoformat(entry.removed_at)).total_seconds() >= keep:
            (paths.replica_held(name) / entry.file).unlink(missing_ok=True)
            logger.info("client %s: deleted segment %d, removed on the primary at %s", name, entry.segment,
                        entry.removed_at)  # fmt: skip
        else:
            kept.append(entry)
    return tuple(kept)


def replicate_client(primary: Primary, server: ServerConfig, paths: Paths, name: str, listed: dict,
                     accept: bool = False) -> str:  # fmt: skip
    """Bring one client's copy up to the primary's last commit (see the module docstring); return what happened."""
    moment = datetime.now(UTC)
    now = moment.isoformat(timespec="seconds")
    gid = client_gid(paths, server, name)
    own_tree(paths, name, gid)
    with state.locked(paths.monitor_state(name)) as found:
        replica = found.replica or ReplicaState()
        mismatch, aside = judge(found, listed, accept)
        for number, kind in sorted(mismatch.items()):
            if replica.mismatch.get(number) != kind:
                logger.error("client %s: segment %d %s on the primary; the replica keeps its copy", name, number, kind)
        last = listed.get("last_commit")
        new = [int(n) for n in listed["segments"] if int(n) not in found.segments or int(n) in aside]
        new = [n for n in sorted(new) if n not in mismatch]
        replica = dataclasses.replace(replica, mismatch=mismatch, primary_commit=last, primary_seen_at=now,
                                      lag_segments=len(new))  # fmt: skip
        outcome = "up to date"
        ahead = [number for number in mismatch if last is None or number > last]
        if ahead:
            outcome = (f"not copied this round (the copy holds segments {', '.join(map(str, ahead))} after the "
                       f"primary's last commit {last}: was the primary rolled back?)")  # fmt: skip
        elif last is not None and (new or aside or replica.copied_commit != last) and not listed.get("complete"):
            outcome = "the primary is committing; copied next round"
        elif last is not None and (new or aside or replica.copied_commit != last):
            try:
                prints = fetch_client(primary, name, listed, new, paths.replica_staging(name), gid)
                with gate.compaction(paths, name, GATE_WAIT):
                    held = install(paths, name, listed, prints, aside, found, now, gid)
            except (Moved, gate.GateClosed) as error:
                shutil.rmtree(paths.replica_staging(name), ignore_errors=True)
                outcome = f"not copied this round ({error})"
            else:
                copied = sum(print_.size for print_ in prints.values())
                replica = dataclasses.replace(replica, held=replica.held + held, copied_commit=last, lag_segments=0,
                                              compacted_at=listed.get("compacted_at"))  # fmt: skip
                outcome = f"copied {len(prints)} segment(s), {copied} bytes, up to commit {last}"
                if held:
                    outcome += f"; set aside {len(held)} segment(s) the primary removed"
        if not outcome.startswith(("not copied", "the primary is")):
            replica = dataclasses.replace(replica, last_copy_at=now, lag_segments=0)
        replica = dataclasses.replace(replica, held=expire_held(paths, name, replica.held, keep_removed(server),
                                                                moment),
                                      bytes=sum(print_.size for print_ in found.segments.values()))  # fmt: skip
        found.replica = replica
        emit_alerts(server, paths, name, found, moment)
    logger.info("client %s: %s", name, outcome)
    return outcome


def keep_removed(server: ServerConfig) -> int:
    return server.replication.keep_removed if server.replication else 0


def conditions(name: str, found: ClientState, now: datetime, max_lag: int) -> dict[str, tuple[str, dict]]:
    """Given a client's copy, return the replica's conditions that hold: replica_mismatch, replica_lag."""
    active = {}
    replica = found.replica or ReplicaState()
    if replica.mismatch:
        listed = ", ".join(f"{n} {kind}" for n, kind in sorted(replica.mismatch.items()))
        active["replica_mismatch"] = (
            f"client {name}: committed segments differ on the primary ({listed}); the replica keeps its copies "
            f"and copies none of them (borg-server replicate --accept {name} takes the primary's)",
            {
                "segments": {str(n): kind for n, kind in sorted(replica.mismatch.items())},
                "count": len(replica.mismatch),
            },
        )
    since = replica.last_copy_at or found.first_seen
    lag = (now - datetime.fromisoformat(since)).total_seconds()
    if lag > max_lag:
        active["replica_lag"] = (
            f"client {name}: the replica's copy is {alerts.human_duration(lag)} behind (REPLICA_MAX_LAG "
            f"{alerts.human_duration(max_lag)}); last complete copy {replica.last_copy_at or 'never'}",
            {"last_copy_at": replica.last_copy_at, "lag_s": int(lag), "lag_segments": replica.lag_segments,
             "max_lag_s": max_lag},
        )  # fmt: skip
    return active


def emit_alerts(server: ServerConfig, paths: Paths, name: str, found: ClientState, now: datetime) -> None:
    """Update and emit the client's replica alerts (under its state lock)."""
    active = conditions(name, found, now, server.replication.max_lag)
    documents = alerts.transitions(found, active, name, server.server_host, now.isoformat(timespec="seconds"))
    alerts.emit(documents, paths.monitor_outbox, server.report_urls)


def known_clients(paths: Paths) -> list[str]:
    """Return the clients this replica has a copy (a state file) of."""
    directory = paths.monitor_state("x").parent
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.json") if CLIENT_NAME.match(p.stem))


def watch_lag(server: ServerConfig, paths: Paths) -> None:
    """Raise or clear replica_lag for every copy (also while the primary cannot be reached)."""
    for name in known_clients(paths):
        with state.locked(paths.monitor_state(name)) as found:
            emit_alerts(server, paths, name, found, datetime.now(UTC))


def replicate(server: ServerConfig, paths: Paths, accept: str | None = None) -> int:
    """Run one round over every client of the primary (one round at a time); return 0, or 1 if any failed."""
    paths.runtime.mkdir(parents=True, exist_ok=True)
    with safe_files.open_lock(paths.replicate_lock) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            primary = Primary(server.replication, paths)
        except OSError as error:
            logger.error("replication: cannot start ssh: %s", error)
            return 1
        failed = False
        try:
            listing = primary.listing()
            if accept is not None and accept not in listing:
                logger.error("replication: the primary has no repository of client %s", accept)
                return 2
            gate.prepare(paths, list(listing))
            for name, listed in sorted(listing.items()):
                if not CLIENT_NAME.match(name) or not isinstance(listed, dict):
                    logger.error("replication: the primary listed %r, not a client; skipped", name[:40])
                    continue
                try:
                    outcome = replicate_client(primary, server, paths, name, listed, accept == name)
                except (OSError, KeyError, TypeError, ValueError) as error:
                    logger.error("client %s: not copied: %s", name, error)
                    failed = True
                    continue
                failed = failed or outcome.startswith("not copied")
        except (PrimaryError, Moved) as error:
            logger.error("replication: %s", error)
            failed = True
        finally:
            primary.close()
        watch_lag(server, paths)
        return 1 if failed else 0
