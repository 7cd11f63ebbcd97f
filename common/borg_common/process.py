"""The one place that runs subprocesses: argv lists only, output streamed into logging."""

from __future__ import annotations

import collections
import logging
import shlex
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

logger = logging.getLogger(__name__)

MASK = "***"


@dataclass(frozen=True)
class Result:
    """What a finished command returned: exit code, the lines it printed, its bounded tail."""

    returncode: int
    stdout: str
    tail: list[str]


def masked(argv: Iterable[str], secrets: Iterable[str] = ()) -> str:
    """Given argv and secret strings, return the command as a shell-quoted line with secrets masked."""
    secrets = [secret for secret in secrets if secret]

    def mask(argument: str) -> str:
        for secret in secrets:
            argument = argument.replace(secret, MASK)
        return argument

    return shlex.join(mask(argument) for argument in argv)


def run(
    argv: list[str],
    *,
    env: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
    render_line: Callable[[str], str | None] | None = None,
    capture_stdout: bool = False,
    tail_lines: int = 50,
    log_level: int = logging.INFO,
    cwd: str | None = None,
    start_new_session: bool = False,
    on_start: Callable[[subprocess.Popen], None] | None = None,
) -> Result:
    """Run argv and wait; log each line of its stderr (and stdout unless captured) as it comes.

    Given capture_stdout, stdout is returned whole instead of logged (for --json output).
    render_line turns each raw line into the text to log and keep in the tail (None: drop it);
    on_start sees the process as soon as it runs (to signal it from elsewhere).
    Raise OSError if the program cannot be started.
    """
    secrets = [secret for secret in secrets if secret]
    logger.debug("running %s", masked(argv, secrets))
    tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if capture_stdout else subprocess.STDOUT,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        text=True,
        errors="replace",
        start_new_session=start_new_session,
    )
    if on_start:
        on_start(process)
    chunks: list[str] = []
    reader = None
    if capture_stdout:
        reader = threading.Thread(target=lambda: chunks.append(process.stdout.read()), daemon=True)
        reader.start()
    lines = process.stderr if capture_stdout else process.stdout
    for raw in lines:
        line = raw.rstrip("\n")
        if render_line:
            line = render_line(line)
            if line is None:
                continue
        for secret in secrets:
            line = line.replace(secret, MASK)
        tail.append(line)
        logger.log(log_level, "%s", line)
    returncode = process.wait()
    if reader:
        reader.join()
    logger.debug("%s exited with %d", argv[0], returncode)
    return Result(returncode=returncode, stdout="".join(chunks), tail=list(tail))


def pipe(
    argv: list[str],
    sink: Callable[[bytes], None],
    *,
    env: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
    render_line: Callable[[str], str | None] | None = None,
    tail_lines: int = 50,
    chunk: int = 1 << 16,
) -> Result:
    """Run argv and hand its stdout to sink a chunk at a time (bytes), logging its stderr lines; wait.

    Memory stays at one chunk whatever the output's size. If sink raises, the process is killed and
    the error raised once it has exited. Raise OSError if the program cannot be started.
    """
    secrets = [secret for secret in secrets if secret]
    logger.debug("running %s", masked(argv, secrets))
    tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None,
    )  # fmt: skip

    def log_stderr() -> None:
        for raw in process.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            line = render_line(line) if render_line else line
            if line is None:
                continue
            for secret in secrets:
                line = line.replace(secret, MASK)
            tail.append(line)
            logger.info("%s", line)

    reader = threading.Thread(target=log_stderr, daemon=True)
    reader.start()
    try:
        while data := process.stdout.read(chunk):
            sink(data)
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        process.stdout.close()
    returncode = process.wait()
    reader.join()
    logger.debug("%s exited with %d", argv[0], returncode)
    return Result(returncode=returncode, stdout="", tail=list(tail))
