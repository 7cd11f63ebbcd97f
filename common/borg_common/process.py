"""The one place that runs subprocesses: argv lists only, output streamed into logging.

run() and pipe() wait for a command and log its output; start_on() and converse() start one whose
streams belong to someone else: an SSH session's (the server's borg serve) or a request-and-answer
conversation (a replica's SSH session to its primary).
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import logging
import os
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

logger = logging.getLogger(__name__)

MASK = "***"
READ_SIZE = 1 << 16
PIPE_SIZE = 1 << 20  # what a pipe holds while its reader waits (Linux's default limit for unprivileged processes)
BATCH_PAUSE = 0.02  # seconds a reader waits between reads while output comes fast (batched_lines)


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


def batched_lines(pipe) -> Iterator[str]:
    """Given a pipe's read end, yield its lines (decoded, without line ends) as they come, many per read.

    borg create --list prints a line per file. A reader that takes each line as it comes is woken once
    per line: 200,000 files cost 200,000 wake-ups and reads, CPU that a backup on a small machine needs
    for borg and ssh. While output comes fast (a short read within BATCH_PAUSE of the last one), this
    reader waits BATCH_PAUSE after each read, so the lines pile up in the pipe (grown to PIPE_SIZE where
    Linux allows) and come hundreds a read; a command that prints a few lines and exits is never held up.
    Like text mode's universal newlines, a lone "\r" ends a line too.
    """
    fd = pipe.fileno()
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: a Python without F_SETPIPE_SZ
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    pending, last_read = b"", float("-inf")
    while chunk := os.read(fd, READ_SIZE):
        *complete, pending = (pending + chunk).split(b"\n")
        for line in complete:
            yield from decoded(line.removesuffix(b"\r"))
        now = time.monotonic()
        if len(chunk) < READ_SIZE and now - last_read < BATCH_PAUSE:
            time.sleep(BATCH_PAUSE)
        last_read = time.monotonic()
    if pending:
        yield from decoded(pending)


def decoded(line: bytes) -> Iterator[str]:
    """Given one line's bytes (no "\n"), yield its text, split at every "\r"; bytes not UTF-8 are replaced."""
    for part in line.split(b"\r"):
        yield part.decode(errors="replace")


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
    stdin: str | None = None,
) -> Result:
    """Run argv and wait; log each line of its stderr (and stdout unless captured) as it comes.

    Given capture_stdout, stdout is returned whole instead of logged (for --json output).
    render_line turns each raw line into the text to log and keep in the tail (None: drop it);
    on_start sees the process as soon as it runs (to signal it from elsewhere); stdin names a file it reads as its
    input (else it reads nothing). Raise OSError if the program cannot be started.
    """
    secrets = [secret for secret in secrets if secret]
    logger.debug("running %s", masked(argv, secrets))
    tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
    with open(stdin or os.devnull, "rb") as given:
        process = subprocess.Popen(
            argv,
            stdin=given,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if capture_stdout else subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=start_new_session,
        )
    if on_start:
        on_start(process)
    chunks: list[bytes] = []
    reader = None
    if capture_stdout:
        reader = threading.Thread(target=lambda: chunks.append(process.stdout.read()), daemon=True)
        reader.start()
    for line in batched_lines(process.stderr if capture_stdout else process.stdout):
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
    for stream in (process.stdout, process.stderr):
        if stream:
            stream.close()
    logger.debug("%s exited with %d", argv[0], returncode)
    stdout = b"".join(chunks).decode(errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    return Result(returncode=returncode, stdout=stdout, tail=list(tail))


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
        for line in batched_lines(process.stderr):
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


def start_on(
    argv: list[str],
    stdio: tuple[int, int, int],
    *,
    cwd: str,
    env: Mapping[str, str],
    user: int,
    group: int,
    pass_fds: tuple[int, ...] = (),
) -> subprocess.Popen:
    """Start argv on the given stdin, stdout and stderr descriptors (they are its protocol channel: nothing
    is read or logged here), as user and group with no supplementary group, keeping pass_fds open in it.
    Raise OSError if the program cannot be started."""
    logger.debug("running %s as %d:%d", masked(argv), user, group)
    return subprocess.Popen(
        argv, stdin=stdio[0], stdout=stdio[1], stderr=stdio[2], cwd=cwd, env=dict(env),
        user=user, group=group, extra_groups=[], pass_fds=pass_fds,
    )  # fmt: skip


def converse(argv: list[str], stderr) -> subprocess.Popen:
    """Start argv with pipes to its stdin and from its stdout, for requests and answers; its stderr goes to
    stderr (a file, read when something failed). Raise OSError if the program cannot be started."""
    logger.debug("running %s", masked(argv))
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)
