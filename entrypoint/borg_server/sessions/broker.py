"""The session broker: a root service that runs each SSH session's borg serve as the client's own account.

The forced command (sessions/forced_command.py), run by sshd as the borg login account (or as the replica login, for
the replica key), connects to the broker's unix socket (in a directory only root and the borg group
can enter; the broker also checks the peer's uid, and gives the replica login the reader only),
hands over its stdin, stdout and stderr with SCM_RIGHTS and sends its arguments as JSON; the
broker runs the session (sessions/session.py) in a thread of its own and answers with the exit code. The
wrapper forwards SIGTERM, SIGHUP and SIGINT as messages (sessions/protocol.py).
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import socket
import struct
import threading
from pathlib import Path

from borg_common.settings import ConfigError
from borg_server.config import reader
from borg_server.sessions import protocol, replica_source, session
from borg_server.sessions.protocol import ProtocolError, close_all, receive, receive_with_fds, send
from borg_server.system import commands
from borg_server.system.paths import Paths

logger = logging.getLogger(__name__)

STDIO = 3  # stdin, stdout, stderr of the session, in this order
SO_PEERCRED_FORMAT = "3i"  # pid, uid, gid


def peer_uid(connection: socket.socket) -> int:
    """Return the uid of the process at the other end of a unix socket (SO_PEERCRED)."""
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize(SO_PEERCRED_FORMAT))
    return struct.unpack(SO_PEERCRED_FORMAT, credentials)[1]


def handle(connection: socket.socket, paths: Paths, login_uid: int, replica_uid: int | None = None) -> None:
    """Serve one connection: check the peer, run its session, answer with the exit code.

    The borg login may ask for any session; the replica login (replica_uid) only for the replica's reader.
    """
    with connection:
        uid = peer_uid(connection)
        if uid not in (login_uid, replica_uid):
            logger.warning("broker: refused a connection from uid %d (only %s may connect)", uid, commands.USER)
            return
        try:
            message, fds = receive_with_fds(connection, STDIO)
        except (ProtocolError, OSError) as error:
            logger.warning("broker: refused a malformed request: %s", error)
            return
        try:
            if message is None or len(fds) != STDIO:
                logger.warning("broker: refused a request with %d file descriptors instead of %d", len(fds), STDIO)
                return
            request = session.parse_request(message)
            if uid != login_uid and request.role != protocol.REPLICA_ROLE:
                raise session.BadRequest(
                    f"the {commands.REPLICA_USER} login may only read for the replica, not {request.role}"
                )
            stdio = (fds[0], fds[1], fds[2])
            if request.role == protocol.REPLICA_ROLE:
                server = reader.load(os.environ, socket.gethostname())
                code = replica_source.run(server, request.fingerprint, request.environ, stdio, paths)
            else:
                code = session.run(request, stdio, paths, lambda process: forward(connection, process))
            send(connection, {"exit": code})
        except session.BadRequest as error:
            logger.warning("broker: refused a request: %s", error)
        except ConfigError as error:
            logger.error("broker: the configuration has problems, no replica session: %s", "; ".join(error.problems))
        except OSError:
            pass  # the wrapper went away; the session is audited all the same
        finally:
            close_all(fds)


def forward(connection: socket.socket, process) -> None:
    """Start a thread that passes the wrapper's signal messages on to the session's borg serve."""

    def listen() -> None:
        try:
            while (message := receive(connection)) is not None:
                number = message.get("signal")
                if number in protocol.FORWARDED_SIGNALS and process.poll() is None:
                    process.send_signal(number)
        except (ProtocolError, OSError):
            return

    threading.Thread(target=listen, daemon=True).start()


def listen(path: Path) -> socket.socket:
    """Bind the broker's socket in its directory (0750 root:borg group, the socket 0660); return it."""
    group = grp.getgrnam(commands.USER).gr_gid
    path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    os.chown(path.parent, 0, group)
    os.chmod(path.parent, 0o750)
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    os.chown(path, 0, group)
    os.chmod(path, 0o660)
    server.listen(128)
    return server


def run(paths: Paths) -> int:
    """Accept sessions for ever, one thread each (run by supervisor as root)."""
    login_uid = pwd.getpwnam(commands.USER).pw_uid
    try:
        replica_uid = pwd.getpwnam(commands.REPLICA_USER).pw_uid
    except KeyError:
        replica_uid = None
    server = listen(paths.broker_socket)
    logger.info("broker: accepting sessions on %s (from uid %d, the replica's from uid %s)", paths.broker_socket,
                login_uid, replica_uid)  # fmt: skip
    while True:
        connection, _address = server.accept()
        threading.Thread(target=handle, args=(connection, paths, login_uid, replica_uid), daemon=True).start()
