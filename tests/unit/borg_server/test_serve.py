"""Tests for the forced command: the request it sends the broker, and what it says when there is none."""

import os
import signal
import socket
import subprocess
import sys
import threading

import pytest

from borg_server.provision import authorized_keys
from borg_server.sessions import broker, forced_command, protocol, session
from borg_server.system.paths import Paths


@pytest.fixture
def kept_signals():
    """Restore the signal handlers serve() installs."""
    saved = {number: signal.getsignal(number) for number in protocol.FORWARDED_SIGNALS}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


def test_the_request_carries_the_arguments_and_the_ssh_variables_only():
    environ = {"SSH_ORIGINAL_COMMAND": "borg serve", "SSH_CONNECTION": "10.0.0.2 5 10.0.0.1 22", "PATH": "/x"}

    assert forced_command.request("web", "append", "SHA256:x", 5, environ) == {
        "client": "web",
        "role": "append",
        "fingerprint": "SHA256:x",
        "quota": 5,
        "SSH_ORIGINAL_COMMAND": "borg serve",
        "SSH_CONNECTION": "10.0.0.2 5 10.0.0.1 22",
    }


def test_the_forced_command_asks_the_broker_at_the_socket_the_broker_listens_on():
    assert protocol.BROKER_SOCKET == str(Paths().broker_socket)


def test_the_forced_command_imports_neither_paths_nor_dataclasses_it_starts_with_every_session():
    """Checked in a fresh interpreter, as sshd starts it."""
    code = (
        "import sys; from borg_server.sessions import forced_command; "
        "print(sorted(m for m in ('borg_server.system.paths', 'dataclasses', 'pathlib') if m in sys.modules))"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})  # fmt: skip
    assert shown.stdout == "[]\n"


def test_without_a_broker_the_session_fails_temporarily_with_a_clear_line(paths, monkeypatch, capsys):
    monkeypatch.setattr(forced_command, "CONNECT_WAIT", 0.3)

    assert forced_command.serve("web", "append", "x", None, str(paths.broker_socket), {}) == 75
    assert capsys.readouterr().err == (
        f"borg-server: the session broker does not answer ({paths.broker_socket}: No such file or directory); "
        "the server is starting or failing, try again later\n"
    )


def test_the_wrapper_hands_its_stdio_to_the_broker_and_exits_with_the_sessions_code(paths, monkeypatch, kept_signals):
    def fake_run(request, stdio, _paths, _started):
        os.write(stdio[1], f"session of {request.client}".encode())
        return 7

    monkeypatch.setattr(session, "run", fake_run)
    paths.broker_directory.mkdir(parents=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(paths.broker_socket))
    listener.listen(1)

    def accept_one():
        connection, _ = listener.accept()
        broker.handle(connection, paths, os.geteuid())

    worker = threading.Thread(target=accept_one)
    worker.start()
    stdin, stdout, stderr = os.pipe(), os.pipe(), os.pipe()

    broker_socket = str(paths.broker_socket)
    code = forced_command.serve("web", "append", "x", None, broker_socket, {}, (stdin[0], stdout[1], stderr[1]))
    worker.join(5)
    listener.close()

    assert code == 7
    assert os.read(stdout[0], 100) == b"session of web"


def test_a_broker_that_stops_in_the_middle_fails_the_session_temporarily(paths, monkeypatch, capsys, kept_signals):
    paths.broker_directory.mkdir(parents=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(paths.broker_socket))
    listener.listen(1)
    worker = threading.Thread(target=lambda: listener.accept()[0].close())
    worker.start()
    pipes = [os.pipe() for _ in range(3)]

    stdio = (pipes[0][0], pipes[1][1], pipes[2][1])
    code = forced_command.serve("web", "append", "x", None, str(paths.broker_socket), {}, stdio)
    worker.join(5)
    listener.close()

    assert code == 75
    assert capsys.readouterr().err == "borg-server: the session broker stopped during this session; try again later\n"


def test_the_forced_commands_read_the_arguments_authorized_keys_writes():
    assert authorized_keys.SERVE_COMMAND.split()[1:] == ["serve"]
    assert forced_command.parse(["serve", "--client", "web", "--role", "append", "--fingerprint", "SHA256:x"]) == {
        "command": "serve", "client": "web", "role": "append", "fingerprint": "SHA256:x"
    }  # fmt: skip
    with_quota = ["serve", "--client", "web", "--role", "full", "--fingerprint", "f", "--quota", "7"]
    assert forced_command.parse(with_quota)["quota"] == 7
    assert forced_command.parse(["serve-replica", "--fingerprint", "f"]) == {
        "command": "serve-replica",
        "fingerprint": "f",
    }


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        ([], "the command is not one of serve, serve-replica"),
        (["start"], "the command is not one of serve, serve-replica"),
        (["serve", "--client", "web", "--role"], "--role has no value"),
        (["serve", "--client", "web", "--role", "append"], "--fingerprint missing"),
        (["serve", "--client", "a", "--client", "b", "--role", "x", "--fingerprint", "f"], "--client is not an option"),
        (["serve-replica", "--fingerprint", "f", "--client", "web"], "--client is not an option of serve-replica"),
        (["serve", "--client", "web", "--role", "append", "--fingerprint", "f", "--quota", "-1"], "--quota is not a"),
        (["serve", "--client", "web", "--role", "append", "--fingerprint", "f", "--quota", "1e9"], "--quota is not a"),
        (
            ["serve", "--client", "web", "--role", "append", "--fingerprint", "f", "--max-sessions", "x"],
            "--max-sessions is not a number",
        ),
    ],
)
def test_forced_command_arguments_it_does_not_know_fail_with_one_line(argv, problem, monkeypatch, capsys):
    monkeypatch.setattr(forced_command, "serve", lambda *arguments: pytest.fail("the broker was asked"))

    assert forced_command.main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("borg-server: forced command ") and problem in error and error.count("\n") == 1


def test_the_forced_command_hands_its_arguments_to_the_session(monkeypatch):
    asked = []
    monkeypatch.setattr(
        forced_command, "serve", lambda *arguments, max_sessions=None: asked.append((*arguments[:4], max_sessions)) or 3
    )

    assert (
        forced_command.main(["serve", "--client", "web", "--role", "append", "--fingerprint", "f", "--quota", "9"]) == 3
    )
    assert forced_command.main(["serve", "--client", "web", "--role", "admin", "--fingerprint", "f",
                                "--max-sessions", "4"]) == 3  # fmt: skip
    assert forced_command.main(["serve-replica", "--fingerprint", "g"]) == 3
    assert asked == [
        ("web", "append", "f", 9, None),
        ("web", "admin", "f", None, 4),
        (None, "replica", "g", None, None),
    ]
