"""The borg-server commands the image runs itself: start, the monitor, the broker, a replica's read-only
borg serve (serve-read), the healthcheck and supervisor's watchdog. The keys' forced commands are
borg_server.sessions.forced_command, a program of their own."""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING

from borg_server.cli.shared import PATHS, load_or_explain

if TYPE_CHECKING:
    from borg_server.records.configuration import ServerConfig

# Each command imports the modules it needs itself: serve-read and the healthcheck start in a few
# milliseconds instead of importing the whole server.

logger = logging.getLogger("borg_server")


def command_start(_arguments) -> int:
    """Validate, apply, then become supervisord (sshd, audit log, monitor)."""
    from borg_server.provision import start

    server_config = load_or_explain()
    if server_config is None:
        return 2
    start.apply(server_config, PATHS)
    logger.info("starting supervisord with %d clients on port %d", len(server_config.clients), server_config.ssh_port)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv("/usr/bin/supervisord", ["supervisord", "-c", str(PATHS.supervisord_config)])
    return 1  # not reached


def command_serve_read(arguments) -> int:
    from borg_server.sessions import read_only

    return read_only.serve(arguments.directory)


def command_broker(_arguments) -> int:
    from borg_server.sessions import broker

    return broker.run(PATHS)


def command_monitor(_arguments) -> int:
    from borg_server.monitor import loop
    from borg_server.replica import loop as replicator
    from borg_server.replica import status
    from borg_server.status import digest, facts, history, metrics, page, web

    server_config = load_or_explain()
    if server_config is None:
        return 2
    exposition = metrics.Exposition()
    board = page.Board(page.Snapshot(server_config.server_host))
    with loop.signals_for_the_main_thread():  # the HTTP threads never take the monitor's signals
        if server_config.metrics_port:
            metrics.serve(server_config.metrics_port, exposition)
        if server_config.status_port:
            web.serve(server_config.status_port, server_config.status_password, board)

    sampled = [0.0]  # when the sizes were last added to the history for the digest alone

    def scanned(current: ServerConfig, seconds: float) -> None:
        now = time.time()
        for_digest = current.digest_cron is not None and now - sampled[0] >= history.SLOT  # its trend: a sample a slot
        if current.metrics_port or current.status_port or for_digest:
            found = facts.collect(current, PATHS), facts.server_status(current, PATHS)
            metrics.publish(exposition, PATHS, current, seconds, found)
            page.publish(board, PATHS.size_history, current, found, now)  # the size history: the page's, the digest's
            sampled[0] = now
        digest.send_if_due(current, PATHS, datetime.now().astimezone())

    def looked() -> None:  # a replica's: after every round and every look between rounds
        exposition.update(status.metrics(PATHS))
        if server_config.status_port:
            section = status.section(status.collect(PATHS), status.primary_status(server_config, PATHS))
            board.update(page.Snapshot(server_config.server_host, time.time(), server=facts.server_status(
                server_config, PATHS), sections=(section,), source="the replicator's last look"))  # fmt: skip
        max_lag = server_config.replication.max_lag
        digest.send_if_due(
            server_config, PATHS, datetime.now().astimezone(), lambda: status.digest_blocks(PATHS, max_lag)
        )

    if server_config.replication is not None:
        return replicator.run(server_config, PATHS, looked)
    return loop.run(server_config, PATHS, os.environ, socket.gethostname(), scanned)


def command_healthcheck(_arguments) -> int:
    """Exit 0 while sshd listens on SSH_PORT: read from the kernel's socket table, so that a check every 15 s
    writes no line into sshd's log (a connection would log two)."""
    port = int(os.environ.get("SSH_PORT") or 22)
    if not listening(port):
        print(f"sshd does not listen on port {port}; see the server's log (docker logs)", file=sys.stderr)
        return 1
    return 0


def listening(port: int, tables: tuple[str, ...] = ("/proc/net/tcp", "/proc/net/tcp6")) -> bool:
    """Given a TCP port, return whether a socket of this network namespace listens on it (state 0A in the tables)."""
    for table in tables:
        try:
            with open(table) as lines:
                rows = [line.split() for line in lines.readlines()[1:]]
        except OSError:
            continue
        if any(len(row) > 3 and row[3] == "0A" and row[1].rsplit(":", 1)[-1] == f"{port:04X}" for row in rows):
            return True
    return False


def command_watchdog(_arguments) -> int:
    from borg_server.provision import supervisor

    supervisor.watchdog()
    return 0
