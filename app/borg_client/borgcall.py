"""Running borg: the one place the sidecar starts a borg process, and what a finished call says.

argv comes whole from borg.py (with --log-json and --lock-wait); this module adds nothing to it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from borg_client import borg, daylog, failures
from borg_client.config import ClientConfig
from borg_common import private_key, process

logger = logging.getLogger(__name__)

SSH_MESSAGES, SSH_MESSAGES_LIMIT = 20, 64 * 1024  # the last lines ssh wrote in one call, read from at most 64 kB


@dataclass
class Control:
    """Lets a signal handler interrupt a run: borg gets SIGINT, writes a checkpoint and stops."""

    process: subprocess.Popen | None = None
    interrupted: bool = False

    def attach(self, running: subprocess.Popen) -> None:
        self.process = running
        if self.interrupted:
            running.send_signal(signal.SIGINT)

    def interrupt(self) -> None:
        self.interrupted = True
        if self.process is not None and self.process.poll() is None:
            logger.warning("stopping: asking borg to write a checkpoint and exit")
            self.process.send_signal(signal.SIGINT)


@dataclass(frozen=True)
class BorgCall:
    """A finished borg command: its exit code, --json output, message ids and log tail, and its outcome
    (success, warning or failure: borg.outcome, read once here for every step that asks)."""

    returncode: int
    stdout: str
    msgids: tuple[str, ...]
    tail: tuple[str, ...] = field(default=())
    outcome: borg.Outcome = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcome", borg.outcome(self.returncode))


def call_borg(
    config: ClientConfig, argv: list[str], capture_json: bool = False, cwd: Path | None = None,
    control: Control | None = None, log: borg.LogJson | None = None, stdin: Path | None = None,
) -> BorgCall:  # fmt: skip
    """Given a borg argv (from borg.py), run it against config's repository and return what it did.

    Its output is streamed into the log, read as borg's --log-json lines; with capture_json, stdout
    is kept whole instead (for --json output); log reads the lines (a LogJson that keeps more). Inside
    a day log, borg's per-file lines go to the day log only, and one summary line to the log. stdin: a file borg
    reads as its input (a paper key). Raise OSError if borg cannot be started.
    """
    log = log or borg.LogJson(sink=daylog.writer())
    with ssh_for(config) as (environment, said):
        result = process.run(
            argv,
            env=environment,
            secrets=config.secrets,
            render_line=log.render,
            capture_stdout=capture_json,
            cwd=str(cwd) if cwd else None,
            on_start=control.attach if control else None,
            stdin=str(stdin) if stdin else None,
        )
    if "Cache.RepositoryAccessAborted" in log.msgids and not config.from_replica:
        logger.error("%s", failures.BORG_FAILURES["Cache.RepositoryAccessAborted"])
    tail = tuple(result.tail) + tuple(said)
    summary = log.summary(f"borg {argv[4]}", str(daylog.current())) if log.sink else None
    if summary:
        logger.info("%s", summary)
        tail += (summary,)
    return BorgCall(result.returncode, result.stdout, tuple(log.msgids), tail)


def stream_borg(config: ClientConfig, argv: list[str], sink) -> BorgCall:
    """Given a borg argv whose stdout is data (extract --stdout), hand it to sink in chunks; return what borg did."""
    log = borg.LogJson()
    with ssh_for(config) as (environment, said):
        result = process.pipe(argv, sink, env=environment, secrets=config.secrets, render_line=log.render)
    return BorgCall(result.returncode, "", tuple(log.msgids), tuple(result.tail) + tuple(said))


@contextlib.contextmanager
def ssh_for(config: ClientConfig) -> Iterator[tuple[dict[str, str], list[str]]]:
    """Given the configuration, yield borg's environment for one call and a list that, once the block ends, holds
    what ssh said (its errors and warnings, each logged and prefixed "ssh: ").

    ssh reads the private key where the mount put it, or a private copy if its mode would make ssh refuse it
    (borg_common.private_key). ssh writes its messages to a file of its own (ssh -E): borg 1.4.0 passes ssh's
    stderr on only when it reads it before the connection closes, so a refusal's reason could be lost.
    """
    said: list[str] = []
    with private_key.usable(config.ssh_key) as identity, tempfile.NamedTemporaryFile(prefix="ssh-") as messages:
        yield borg.borg_environment(config, dict(os.environ), identity, Path(messages.name)), said
        messages.seek(0)
        text = messages.read(SSH_MESSAGES_LIMIT).decode(errors="replace")
    for line in text.splitlines()[-SSH_MESSAGES:]:
        line = line.strip().removeprefix("ssh: ")  # some of ssh's messages name it already
        if line and not line.startswith("@@@"):  # the frame around ssh's warnings
            logger.warning("ssh: %s", line)
            said.append(f"ssh: {line}")


def explain(call: BorgCall, what: str) -> str:
    """Given a finished call and the step it was, return what went wrong, for people.

    The step, borg's exit code, and what the failure means with the next step (failures.borg_failure), else
    borg's last error line (or its last line).
    """
    known = failures.borg_failure(call.msgids, call.tail)
    if known:
        meaning, said = known
        return f"{what} (exit {call.returncode}): {meaning} ({said})"
    errors = [line for line in call.tail if line.startswith(("ERROR", "CRITICAL"))]
    detail = errors[-1] if errors else (call.tail[-1] if call.tail else "no output")
    return f"{what} (exit {call.returncode}): {detail}"
