"""Tests for the supervisor event listener: it speaks the protocol and stops the container only when a
program failed for good."""

import io
import logging
import signal

import pytest

from borg_server.provision import supervisor

SUPERVISORD_PID = 4242


class EndOfEvents(Exception):
    """Raised by the fake stdin once its events are used up, to end the listener's endless loop."""


class Events(io.StringIO):
    """Supervisor's side of the pipe: the given events, then EndOfEvents instead of waiting forever."""

    def readline(self, *args) -> str:
        line = super().readline(*args)
        if not line:
            raise EndOfEvents
        return line


def event(name: str, payload: str, serial: int = 1) -> str:
    """Return one event as supervisord writes it: a header line with the payload's length, then the payload."""
    header = f"ver:3.0 server:supervisor serial:{serial} pool:watchdog poolserial:{serial} eventname:{name}"
    return f"{header} len:{len(payload)}\n{payload}"


FATAL = event("PROCESS_STATE_FATAL", "processname:sshd groupname:sshd from_state:BACKOFF", 1)
EXITED = event("PROCESS_STATE_EXITED", "processname:sshd groupname:sshd from_state:RUNNING expected:0 pid:99", 2)


@pytest.fixture
def kills(monkeypatch):
    """Record os.kill calls instead of sending signals; supervisord's pid is SUPERVISORD_PID."""
    calls = []
    monkeypatch.setattr(supervisor.os, "getppid", lambda: SUPERVISORD_PID)
    monkeypatch.setattr(supervisor.os, "kill", lambda pid, number: calls.append((pid, number)))
    return calls


def listen(events: str) -> str:
    """Run the watchdog over events until they are used up; return what it wrote to supervisord."""
    stdout = io.StringIO()
    with pytest.raises(EndOfEvents):
        supervisor.watchdog(stdin=Events(events), stdout=stdout)
    return stdout.getvalue()


def test_watchdog_answers_each_event_with_ok_and_is_ready_for_the_next(kills):
    assert listen(EXITED + FATAL) == "READY\nRESULT 2\nOKREADY\nRESULT 2\nOKREADY\n"


def test_watchdog_sends_sigterm_to_supervisord_when_a_program_fails_for_good(kills):
    listen(EXITED + FATAL)

    assert kills == [(SUPERVISORD_PID, signal.SIGTERM)]


def test_watchdog_leaves_supervisord_alone_for_other_events(kills):
    listen(EXITED + event("TICK_60", "when:1715000000", 3))

    assert kills == []


def test_watchdog_reads_exactly_the_payload_so_the_next_header_is_read_whole(kills):
    output = listen(FATAL + FATAL + EXITED)

    assert kills == [(SUPERVISORD_PID, signal.SIGTERM)] * 2
    assert output.count("RESULT 2\nOK") == 3


def test_watchdog_logs_the_failed_program(kills, caplog):
    caplog.set_level(logging.ERROR, logger="borg_server.provision.supervisor")

    listen(FATAL)

    assert caplog.messages == [
        "supervisor: a program failed for good (processname:sshd groupname:sshd from_state:BACKOFF); "
        "stopping the container"
    ]
