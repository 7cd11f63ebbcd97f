"""The broker's wire protocol, spoken by the forced command (sessions/forced_command.py) and the broker
(sessions/broker.py).

Messages are framed as a 4-byte big-endian length and a JSON object of at most 64 KiB; the first
message of a session carries its stdin, stdout and stderr with SCM_RIGHTS. The request names a client
(borg_common.settings.CLIENT_NAME) and one of ROLES, or the replica's role and no client; the signals the
forced command receives are passed on (FORWARDED_SIGNALS); EX_TEMPFAIL is the exit code of a session
that could not start or lost its broker.
"""

from __future__ import annotations

import json
import os
import signal
import socket

BROKER_SOCKET = "/run/borg-server/broker/broker.sock"  # system/paths.py's broker_socket (a test checks they agree)
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
EX_TEMPFAIL = 75  # sysexits.h: try again later (the SSH client sees the session fail, borg retries)
ROLES = ("append", "full", "admin", "read")  # read: a replica's client keys (sessions/read_only.py)
REPLICA_ROLE = "replica"  # the primary's replica key: no client, the broker runs replica_source
MAX_MESSAGE = 64 * 1024
HEADER = 4


class ProtocolError(Exception):
    """A message was malformed or cut short."""


def frame(message: dict) -> bytes:
    """Given a message, return it framed: its length (4 bytes, big-endian), then its JSON."""
    body = json.dumps(message, sort_keys=True).encode()
    if len(body) > MAX_MESSAGE:
        raise ProtocolError(f"a message of {len(body)} bytes is longer than {MAX_MESSAGE}")
    return len(body).to_bytes(HEADER, "big") + body


def unframe_length(header: bytes) -> int:
    """Given a frame's header, return the length of its body; raise ProtocolError if it is too long."""
    length = int.from_bytes(header, "big")
    if length > MAX_MESSAGE:
        raise ProtocolError(f"a message of {length} bytes is longer than {MAX_MESSAGE}")
    return length


def decode(body: bytes) -> dict:
    """Given a frame's body, return its JSON object; raise ProtocolError if it is not one."""
    try:
        message = json.loads(body)
    except ValueError:
        raise ProtocolError("a message is not JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message is not a JSON object")
    return message


def send(connection: socket.socket, message: dict, fds: tuple[int, ...] = ()) -> None:
    """Send one framed message, with fds attached to its first byte (SCM_RIGHTS) when given."""
    data = frame(message)
    if fds:
        sent = socket.send_fds(connection, [data], list(fds))
        data = data[sent:]
    if data:  # an empty sendall after the peer answered and closed would fail with EPIPE
        connection.sendall(data)


def receive_exactly(connection: socket.socket, size: int, start: bytes = b"") -> bytes:
    data = start
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ProtocolError("the connection closed in the middle of a message")
        data += chunk
    return data


def receive(connection: socket.socket) -> dict | None:
    """Return the next message, or None when the peer closed the connection between messages."""
    header = connection.recv(HEADER)
    if not header:
        return None
    header = receive_exactly(connection, HEADER, header)
    return decode(receive_exactly(connection, unframe_length(header)))


def receive_with_fds(connection: socket.socket, most: int) -> tuple[dict | None, list[int]]:
    """Return the next message and the file descriptors that came with it (up to most)."""
    header, fds, _flags, _address = socket.recv_fds(connection, HEADER, most)
    if not header:
        return None, fds
    try:
        header = receive_exactly(connection, HEADER, header)
        return decode(receive_exactly(connection, unframe_length(header))), fds
    except ProtocolError:
        close_all(fds)
        raise


def close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
