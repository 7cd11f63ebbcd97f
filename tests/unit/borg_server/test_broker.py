"""Tests for the session broker: message framing, passing file descriptors, who may connect."""

import os
import socket
import threading

import pytest

from borg_server.sessions import broker, protocol, session
from borg_server.sessions.protocol import ProtocolError, frame, receive, receive_with_fds, send


def test_a_message_is_framed_as_its_length_then_its_json():
    assert frame({"exit": 0}) == b"\x00\x00\x00\x0b" + b'{"exit": 0}'


def test_a_message_longer_than_64_kib_is_refused_on_both_sides():
    with pytest.raises(ProtocolError, match="longer than 65536"):
        frame({"x": "a" * 70000})
    with pytest.raises(ProtocolError, match="longer than 65536"):
        protocol.unframe_length((70000).to_bytes(4, "big"))


def test_messages_arrive_whole_and_in_order_and_end_with_none():
    left, right = socket.socketpair()
    with left, right:
        send(left, {"signal": 15})
        send(left, {"exit": 3})
        left.shutdown(socket.SHUT_WR)

        assert [receive(right), receive(right), receive(right)] == [{"signal": 15}, {"exit": 3}, None]


def test_a_message_cut_short_or_not_an_object_is_a_protocol_error():
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"\x00\x00\x00\x10{}")
        left.shutdown(socket.SHUT_WR)
        with pytest.raises(ProtocolError, match="closed in the middle"):
            receive(right)
    left, right = socket.socketpair()
    with left, right:
        left.sendall(frame([1]))  # type: ignore[arg-type]
        with pytest.raises(ProtocolError, match="not a JSON object"):
            receive(right)


def test_file_descriptors_travel_with_the_first_message():
    reader, writer = os.pipe()
    left, right = socket.socketpair()
    with left, right:
        send(left, {"client": "web"}, fds=(writer,))
        message, fds = receive_with_fds(right, 3)
    os.write(fds[0], b"through the broker")
    os.close(fds[0])
    os.close(writer)

    assert message == {"client": "web"}
    assert os.read(reader, 100) == b"through the broker"
    os.close(reader)


def stdio_pipes():
    pipes = [os.pipe() for _ in range(3)]
    return pipes, (pipes[0][0], pipes[1][1], pipes[2][1])


def test_the_broker_runs_the_session_of_its_login_account_and_answers_with_the_exit_code(paths, monkeypatch):
    seen = []

    def fake_run(request, stdio, _paths, started):
        seen.append(request)
        os.write(stdio[2], b"from the session\n")
        return 3

    monkeypatch.setattr(session, "run", fake_run)
    pipes, stdio = stdio_pipes()
    left, right = socket.socketpair()
    worker = threading.Thread(target=broker.handle, args=(right, paths, os.geteuid()))
    worker.start()
    with left:
        send(left, {"client": "web", "role": "append", "fingerprint": "SHA256:x", "quota": None}, fds=stdio)
        assert receive(left) == {"exit": 3}
    worker.join(5)

    assert seen == [session.Request("web", "append", "SHA256:x", None, {})]
    assert os.read(pipes[2][0], 100) == b"from the session\n"


def test_the_broker_refuses_any_other_uid_without_running_anything(paths, monkeypatch, caplog):
    monkeypatch.setattr(session, "run", lambda *_arguments: pytest.fail("a session ran"))
    _pipes, stdio = stdio_pipes()
    left, right = socket.socketpair()
    with left:
        send(left, {"client": "web", "role": "append", "fingerprint": "x", "quota": None}, fds=stdio)
        broker.handle(right, paths, os.geteuid() + 4242)

        try:
            answer = left.recv(100)
        except ConnectionResetError:  # it closed with the request unread
            answer = b""
        assert answer == b""
    assert f"broker: refused a connection from uid {os.geteuid()} (only borg may connect)" in caplog.text


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ({"client": "../db", "role": "append", "fingerprint": "x"}, "no valid client name"),
        ({"client": "web", "role": "root", "fingerprint": "x"}, "client web: role is not one of append, full, admin"),
        ({"client": "web", "role": "full", "fingerprint": "x", "quota": "1G"}, "the quota is not a number"),
        ({"client": "web", "role": "full"}, "client web: no valid fingerprint"),
    ],
)
def test_a_request_naming_no_valid_session_is_refused(message, problem):
    with pytest.raises(session.BadRequest, match=problem):
        session.parse_request(message)


def test_borg_serve_gets_a_minimal_environment_and_the_command_the_client_asked_for(paths):
    environ = {"SSH_ORIGINAL_COMMAND": "scp -t /tmp", "SSH_CONNECTION": "a"}
    request = session.Request("web", "append", "x", None, environ)

    environment = session.serve_environment(request, paths, session.accounts.Account("web", 12345))

    assert environment == {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(paths.client_home("web")),
        "LANG": "C.UTF-8",
        "BORG_EXIT_CODES": "modern",
        "BORG_BASE_DIR": str(paths.client_home("web")),
        "USER": "borg-web",
        "SSH_ORIGINAL_COMMAND": "scp -t /tmp",
    }
