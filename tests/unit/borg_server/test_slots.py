"""Tests for the session slots: at most MAX_SESSIONS of a client at once, right under races, none held by the dead."""

import json
import os
import subprocess
import sys
import threading

import pytest

from borg_server.sessions import session, slots
from borg_server.sessions.protocol import EX_TEMPFAIL


def test_a_client_gets_as_many_slots_as_its_limit_and_no_more(paths):
    held = [slots.take(paths, "web", 3) for _ in range(3)]

    assert all(held) and slots.take(paths, "web", 3) is None
    assert slots.take(paths, "db", 3) is not None  # another client counts its own


def test_a_slot_is_free_again_once_its_session_closed_it(paths):
    first = slots.take(paths, "web", 1)
    assert slots.take(paths, "web", 1) is None
    first.close()
    assert slots.take(paths, "web", 1) is not None


def test_a_slot_passed_to_a_process_stays_held_until_that_process_ends(paths):
    slot = slots.take(paths, "web", 1)
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE,
                             pass_fds=(slot.fileno(),))  # fmt: skip
    slot.close()  # the broker's copy is gone; borg serve's keeps the lock
    assert slots.take(paths, "web", 1) is None
    child.communicate(b"")
    assert slots.take(paths, "web", 1) is not None  # a process that ended holds nothing


def test_sessions_starting_at_the_same_instant_get_exactly_the_limit(paths):
    start, taken, lock = threading.Barrier(20), [], threading.Lock()

    def one() -> None:
        start.wait()
        slot = slots.take(paths, "web", 4)
        with lock:
            taken.append(slot)

    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(slot is not None for slot in taken) == 4


def test_a_session_over_the_limit_is_refused_with_a_line_on_stderr_and_in_the_audit_log(paths):
    held = [slots.take(paths, "web", 2) for _ in range(2)]
    request = session.Request("web", "append", "SHA256:x", None, {"SSH_CONNECTION": "10.0.0.5 1 2 3"}, 2)
    read, write = os.pipe()

    code = session.run(request, (write, write, write), paths, lambda process: None)

    os.close(write)
    expected = (
        "client web has 2 sessions open already, as many as MAX_SESSIONS allows (BORG_CLIENT_WEB_MAX_SESSIONS, "
        "if set); this session is refused. Try again when one has ended; if web did not mean to open them, look "
        "for a broken or compromised program on its host"
    )
    assert code == EX_TEMPFAIL
    assert os.read(read, 4096).decode() == f"borg-server: {expected}\n"
    (record,) = [json.loads(line) for line in paths.audit_log.read_text().splitlines()]
    assert record["refused"] == "max_sessions" and record["message"] == expected
    assert (record["client"], record["source"], record["exit_code"]) == ("web", "10.0.0.5", EX_TEMPFAIL)
    assert all(held)


def test_a_request_carries_max_sessions_and_refuses_an_absurd_one():
    message = {"client": "web", "role": "append", "fingerprint": "f", "quota": None}

    assert session.parse_request(message).max_sessions == 8
    assert session.parse_request(message | {"max_sessions": 2}).max_sessions == 2
    for bad in (0, 1001, True, "3"):
        with pytest.raises(session.BadRequest, match="max_sessions is not a number from 1 to 1000"):
            session.parse_request(message | {"max_sessions": bad})


def test_a_session_whose_slots_cannot_be_made_is_not_started_and_says_why(paths):
    paths.volatile.mkdir(parents=True, exist_ok=True)
    paths.session_slots.write_text("not a directory")
    request = session.Request("web", "append", "SHA256:x", None, {}, 2)
    read, write = os.pipe()

    assert session.run(request, (write, write, write), paths, lambda process: None) == EX_TEMPFAIL

    os.close(write)
    said = os.read(read, 4096).decode()
    assert said.startswith("borg-server: borg serve cannot be started for client web: [Errno 17] File exists")
    (record,) = [json.loads(line) for line in paths.audit_log.read_text().splitlines()]
    assert "refused" not in record and record["exit_code"] == EX_TEMPFAIL
