"""The forced command of every client key: it hands the session to the broker, which runs borg serve.

sshd runs this, as the borg login account, instead of whatever the client asked for. It passes its
stdin, stdout and stderr and its arguments to the root session broker (sessions/broker.py), which runs
`borg serve` confined to the client's directory (append-only unless the key's role says otherwise)
as the client's own account and writes the audit record (sessions/session.py). This wrapper waits for the
exit code and exits with it. Nothing is ever printed on stdout: that is borg's protocol channel.

It starts with every SSH session, so it imports only what it uses (protocol: json and socket): no Paths, no
dataclasses, no pathlib. What it costs a session is measured by `make bench BENCH_ARGS="--only overhead"`.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

from borg_server.sessions import protocol

CONNECT_WAIT = 10.0  # seconds to wait for the broker's socket while the server starts
CONNECT_POLL = 0.2
# Each command's required and optional options, as provision/authorized_keys.py writes them.
OPTIONS = {
    "serve": (("--client", "--role", "--fingerprint"), ("--quota", "--max-sessions")),
    "serve-replica": (("--fingerprint",), ()),
}


def request(
    client: str | None,
    role: str,
    fingerprint: str,
    quota: int | None,
    environ: dict[str, str],
    max_sessions: int | None = None,
) -> dict:
    """Given the forced command's arguments and environment, return the message that asks the broker for the session."""
    message = {"client": client, "role": role, "fingerprint": fingerprint, "quota": quota}
    message |= {} if max_sessions is None else {"max_sessions": max_sessions}
    return message | {name: environ[name] for name in ("SSH_ORIGINAL_COMMAND", "SSH_CONNECTION") if name in environ}


def connect(path: str, wait: float) -> socket.socket:
    """Connect to the broker's socket; while it is not there yet (the server is starting), retry for wait seconds."""
    deadline = time.monotonic() + wait
    while True:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.connect(path)
            return connection
        except (FileNotFoundError, ConnectionRefusedError):
            connection.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(CONNECT_POLL)
        except OSError:
            connection.close()
            raise


def serve(
    client: str | None,
    role: str,
    fingerprint: str,
    quota: int | None,
    broker: str,
    environ: dict[str, str],
    stdio: tuple[int, int, int] = (0, 1, 2),
    max_sessions: int | None = None,
) -> int:
    """Hand this session (stdin, stdout, stderr and arguments) to the broker listening on the socket broker; return
    the exit code it reports.

    SIGTERM, SIGHUP and SIGINT are passed on to the session's borg serve. Without a broker, or when it
    stops in the middle of the session, say so on stderr (the SSH client shows it) and return protocol.EX_TEMPFAIL.
    """
    try:
        connection = connect(broker, CONNECT_WAIT)
    except OSError as error:
        print(
            f"borg-server: the session broker does not answer ({broker}: {error.strerror or error}); "
            "the server is starting or failing, try again later",
            file=sys.stderr,
        )
        return protocol.EX_TEMPFAIL
    with connection:
        try:
            protocol.send(connection, request(client, role, fingerprint, quota, environ, max_sessions), fds=stdio)
            with open(os.devnull, "rb+") as null:  # only borg serve keeps the SSH channel open from now on
                os.dup2(null.fileno(), stdio[0])
                os.dup2(null.fileno(), stdio[1])
            for number in protocol.FORWARDED_SIGNALS:
                signal.signal(number, lambda received, _frame: protocol.send(connection, {"signal": received}))
            reply = protocol.receive(connection)
        except (OSError, protocol.ProtocolError):
            reply = None
    if reply is None or not isinstance(reply.get("exit"), int):
        print("borg-server: the session broker stopped during this session; try again later", file=sys.stderr)
        return protocol.EX_TEMPFAIL
    return reply["exit"]


def parse(argv: list[str]) -> dict[str, str | int]:
    """Given the forced command's arguments (serve or serve-replica, then `--name value` pairs), return them by name.

    The quota, where given, is returned as a number of bytes, --max-sessions as a number. Raise ValueError,
    naming what is wrong, if the command or an option is unknown, given twice or without a value, a required
    one is missing or the quota or --max-sessions is not a number. The broker checks the other values
    (session.parse_request).
    """
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command not in OPTIONS:
        raise ValueError(f"the command is not one of {', '.join(OPTIONS)}")
    if len(rest) % 2:
        raise ValueError(f"{rest[-1]} has no value")
    required, optional = OPTIONS[command]
    values = {}
    for option, value in zip(rest[::2], rest[1::2], strict=True):
        if option not in required + optional or option in values:
            raise ValueError(f"{option} is not an option of {command}, or given twice")
        values[option] = value
    missing = [option for option in required if option not in values]
    if missing:
        raise ValueError(f"{', '.join(missing)} missing")
    if not values.get("--quota", "0").isdecimal():
        raise ValueError("--quota is not a number of bytes")
    if not values.get("--max-sessions", "1").isdecimal():
        raise ValueError("--max-sessions is not a number")
    arguments = {option.removeprefix("--"): value for option, value in values.items()} | {"command": command}
    numbers = {name: int(values[f"--{name}"]) for name in ("quota", "max-sessions") if f"--{name}" in values}
    return arguments | numbers


def main(argv: list[str]) -> int:
    """Run the forced command argv (serve or serve-replica); return its exit code (2: arguments it does not know)."""
    try:
        arguments = parse(argv)
    except ValueError as error:
        print(f"borg-server: forced command {' '.join(argv)}: {error}", file=sys.stderr)
        return 2
    if arguments["command"] == "serve-replica":
        return serve(None, "replica", arguments["fingerprint"], None, protocol.BROKER_SOCKET, dict(os.environ))
    client, role, fingerprint = arguments["client"], arguments["role"], arguments["fingerprint"]
    limit, quota = arguments.get("max-sessions"), arguments.get("quota")
    return serve(client, role, fingerprint, quota, protocol.BROKER_SOCKET, dict(os.environ), max_sessions=limit)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
