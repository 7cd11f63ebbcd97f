"""The borg-server commands the image runs itself: start, the monitor, the broker, a replica's read-only
borg serve (serve-read), the healthcheck and supervisor's watchdog. The keys' forced commands are
borg_server.sessions.forced_command, a program of their own."""

from __future__ import annotations

import logging
import os
import socket
import sys
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
    from borg_server.status import metrics

    server_config = load_or_explain()
    if server_config is None:
        return 2
    exposition = metrics.Exposition()
    if server_config.metrics_port:
        with loop.signals_for_the_main_thread():  # the metrics threads never take the monitor's signals
            metrics.serve(server_config.metrics_port, exposition)

    def scanned(current: ServerConfig, seconds: float) -> None:
        metrics.publish(exposition, PATHS, current, seconds)

    if server_config.replication is not None:
        return replicator.run(server_config, PATHS, lambda: exposition.update(status.metrics(PATHS)))
    return loop.run(server_config, PATHS, os.environ, socket.gethostname(), scanned)


def command_healthcheck(_arguments) -> int:
    """Exit 0 when sshd answers with its banner on the local port."""
    port = int(os.environ.get("SSH_PORT") or 22)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as connection:
            banner = connection.recv(64)
    except OSError as error:
        print(f"sshd does not answer on port {port}: {error}", file=sys.stderr)
        return 1
    if not banner.startswith(b"SSH-2.0-"):
        print(f"port {port} answered {banner!r}, not an SSH banner", file=sys.stderr)
        return 1
    return 0


def command_watchdog(_arguments) -> int:
    from borg_server.provision import supervisor

    supervisor.watchdog()
    return 0
