"""Dumps streamed into borg create: one named pipe per dump, fed by a thread from the exec's output.

Each dump is a named pipe under dumps/<container>/<database>.sql that borg create reads
(--read-special) while a thread copies the exec's output into it, a chunk at a time, so the
sidecar's memory does not grow with the dump and nothing is staged on disk. What each dump did is its
Result; a dump that failed or came out empty is a problem that fails the run (run.py).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import stat
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from borg_client.container_exec import masked
from borg_client.dumps import Dump, source_path

logger = logging.getLogger(__name__)

ERROR_LIMIT = 4000  # characters of a dump's stderr kept for the report
OPEN_POLL = 0.1  # seconds between tries to open a pipe borg has not opened yet


@dataclass
class Result:
    """What one dump did: bytes streamed, seconds, the exec's exit code and its stderr tail."""

    dump: Dump
    bytes: int = 0
    seconds: float = 0.0
    exit_code: int | None = None
    error: str = ""  # the tool's stderr (or why the stream stopped), credentials masked
    started: bool = False  # borg opened the pipe

    def problem(self) -> str | None:
        """Return why this dump failed (for the report), or None if it is good."""
        where = f"dump of {self.dump.database} in container {self.dump.container}"
        detail = f": {self.error.strip().splitlines()[-1]}" if self.error.strip() else ""
        if not self.started:
            return f"{where} was never read by borg create{detail}"
        if self.exit_code not in (0, None) or (self.exit_code is None and self.error):
            code = f" (exit {self.exit_code})" if self.exit_code is not None else ""
            return f"{where} failed{code}{detail}"
        if self.bytes == 0:
            return f"{where} came out empty{detail}"
        return None

    def to_dict(self) -> dict:
        return {
            "container": self.dump.container,
            "kind": self.dump.kind,
            "database": self.dump.database,
            "path": self.dump.path,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "status": "failure" if self.problem() else "success",
        }


def special_files(sources: list[str]) -> list[str]:
    """Return the files under sources borg would read as data with --read-special: fifos, devices, links to them.

    A fifo in a volume would make borg wait forever, a device read it whole; they are excluded.
    """
    found = []
    for source in sources:
        for directory, names, files in os.walk(source):
            for name in names + files:
                path = os.path.join(directory, name)
                try:
                    mode = os.lstat(path).st_mode
                    if stat.S_ISLNK(mode):
                        mode = os.stat(path).st_mode
                except OSError:
                    continue
                if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                    found.append(path)
    return found


def open_for_writing(pipe: Path, cancelled: threading.Event) -> int | None:
    """Open the pipe for writing once borg opens it for reading; return the descriptor, None if cancelled."""
    while not cancelled.is_set():
        try:
            descriptor = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno != errno.ENXIO:  # ENXIO: nobody reads it yet
                raise
            time.sleep(OPEN_POLL)
            continue
        os.set_blocking(descriptor, True)
        return descriptor
    return None


def pump(client, dump: Dump, pipe: Path, result: Result, cancelled: threading.Event) -> None:
    """Once borg reads the pipe, run the dump in its container and copy its output into the pipe, chunk by chunk.

    Records bytes, seconds, the exit code and the stderr tail in result; never raises.
    """
    try:
        descriptor = open_for_writing(pipe, cancelled)
    except OSError as error:
        result.error = f"cannot open the pipe: {error}"
        return
    if descriptor is None:
        return
    result.started, began = True, time.monotonic()
    errors: deque[bytes] = deque()
    kept = 0
    try:
        logger.info("dumping %s of container %s into %s", dump.database, dump.container, dump.path)
        api = client.api
        created = api.exec_create(dump.container_id, list(dump.argv), stdout=True, stderr=True,
                                  environment=dump.environment)  # fmt: skip
        for stdout, stderr in api.exec_start(created["Id"], stream=True, demux=True):
            if stdout:
                view = memoryview(stdout)
                while view:
                    view = view[os.write(descriptor, view) :]
                result.bytes += len(stdout)
            if stderr:
                errors.append(stderr)
                kept += len(stderr)
                while kept > ERROR_LIMIT and len(errors) > 1:
                    kept -= len(errors.popleft())
        result.exit_code = api.exec_inspect(created["Id"])["ExitCode"]
    except BrokenPipeError:
        errors.append(b"borg create stopped reading the dump")
    except Exception as error:  # a Docker API error, a socket timeout: the dump is incomplete
        errors.append(f"{type(error).__name__}: {error}".encode())
    finally:
        os.close(descriptor)
        result.seconds = time.monotonic() - began
        result.error = masked(b"".join(errors).decode(errors="replace")[-ERROR_LIMIT:], dump.environment)
    if result.exit_code == 0 and not result.error.strip():
        logger.info("dumped %s of container %s: %d bytes in %.1f s", dump.database, dump.container,
                    result.bytes, result.seconds)  # fmt: skip


@contextmanager
def streaming(client, dumps: list[Dump]) -> Iterator[tuple[Path | None, list[Result]]]:
    """While inside, serve each dump through its named pipe; yield the directory borg create runs in and the results.

    The directory holds dumps/<container>/<database>.sql (pipes only: no dump touches the disk) and
    dumps/<container>/source.json (the container's kind, image and user, for a drill);
    on the way out every pump still waiting for borg is cancelled, then the directory is removed.
    Without dumps, yield (None, []).
    """
    if not dumps:
        yield None, []
        return
    root = Path(tempfile.mkdtemp(prefix="borg-client-dumps-"))
    cancelled, threads, results = threading.Event(), [], []
    try:
        for dump in dumps:
            pipe = root / dump.path
            pipe.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.mkfifo(pipe, 0o600)
            described = root / source_path(dump.container)
            if not described.exists():  # the image a drill restores into (dump_drill.py)
                described.write_text(json.dumps(dump.source(), sort_keys=True) + "\n")
            result = Result(dump)
            thread = threading.Thread(target=pump, args=(client, dump, pipe, result, cancelled), daemon=True)
            thread.start()
            threads.append(thread)
            results.append(result)
        yield root, results
    finally:
        cancelled.set()
        for thread in threads:
            thread.join()
        shutil.rmtree(root, ignore_errors=True)


def problems(results: list[Result]) -> list[str]:
    """Return why dumps failed, one message each (empty: every dump is good)."""
    return [problem for problem in (result.problem() for result in results) if problem]
