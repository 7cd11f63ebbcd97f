"""borg-server: the server's command line (entrypoint, forced command, status and reload)."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from typing import TYPE_CHECKING

from borg_common.logs import setup_logging
from borg_server.paths import Paths

if TYPE_CHECKING:
    from borg_server import config

# Each command imports the modules it needs itself: the forced command (serve) of every session and
# the healthcheck start in a few milliseconds instead of importing the whole server.

logger = logging.getLogger("borg_server")
PATHS = Paths()
SECRET_FORMATS = ("swarm", "kubernetes")  # what new-client prints (pairing_secrets.FORMATS; a test checks)


def load_or_explain() -> config.ServerConfig | None:
    """Return the validated configuration, or print every problem and return None."""
    from borg_common.settings import ConfigError
    from borg_server import config

    try:
        server_config = config.load(os.environ, socket.gethostname())
    except ConfigError as error:
        print(error.explain("borg-server", "; nothing was changed"), file=sys.stderr)
        return None
    setup_logging(server_config.log_level)  # LOG_LEVEL, validated
    return server_config


def command_start(_arguments) -> int:
    """Validate, apply, then become supervisord (sshd, audit log, monitor)."""
    from borg_server import setup

    server_config = load_or_explain()
    if server_config is None:
        return 2
    setup.apply(server_config, PATHS)
    logger.info("starting supervisord with %d clients on port %d", len(server_config.clients), server_config.ssh_port)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv("/usr/bin/supervisord", ["supervisord", "-c", str(PATHS.supervisord_config)])
    return 1  # not reached


def command_reload(_arguments) -> int:
    """Re-read and apply the configuration; sshd re-reads its own without dropping sessions."""
    from borg_server import setup, system

    server_config = load_or_explain()
    if server_config is None:
        return 2
    setup.apply(server_config, PATHS)
    system.checked(["supervisorctl", "-c", str(PATHS.supervisord_config), "signal", "HUP", "sshd"])
    logger.info("reloaded: %d clients; running sessions were kept", len(server_config.clients))
    return 0


def command_serve(arguments) -> int:
    from borg_server import serve

    return serve.serve(arguments.client, arguments.role, arguments.fingerprint, arguments.quota, PATHS, os.environ)


def command_serve_replica(arguments) -> int:
    from borg_server import serve

    return serve.serve(None, "replica", arguments.fingerprint, None, PATHS, os.environ)


def command_serve_read(arguments) -> int:
    from borg_server import readonly_serve

    return readonly_serve.serve(arguments.directory)


def command_replicate(arguments) -> int:
    from borg_server import replication

    server_config = load_or_explain()
    if server_config is None:
        return 2
    if server_config.replication is None:
        print("borg-server: replicate: this server is no replica (REPLICATE_FROM is not set)", file=sys.stderr)
        return 2
    return replication.replicate(server_config, PATHS, arguments.accept)


def command_broker(_arguments) -> int:
    from borg_server import broker

    return broker.run(PATHS)


def command_status(arguments) -> int:
    from borg_server import figures, replica_status, status

    server_config = load_or_explain()
    if server_config is None:
        return 2
    if server_config.replication is not None:
        print(replica_status.render(replica_status.collect(PATHS), as_json=arguments.json))
        return 0
    clients = figures.collect(server_config, PATHS)
    server = figures.server_status(server_config, PATHS) if arguments.server or not arguments.json else None
    print(status.render(clients, as_json=arguments.json, server=server))
    return 0


def command_show_client(arguments) -> int:
    from borg_server import status

    server_config = load_or_explain()
    if server_config is None:
        return 2
    if find_client(server_config, arguments.name) is None:
        return 2
    print(status.show_client(server_config, PATHS, arguments.name))
    return 0


def find_client(server_config: config.ServerConfig, name: str) -> config.ClientSpec | None:
    """Return the configured client called name, or print which clients exist and return None."""
    client = next((client for client in server_config.clients if client.name == name), None)
    if client is None:
        names = ", ".join(client.name for client in server_config.clients)
        print(f"borg-server: no client {name!r} is configured (configured: {names})", file=sys.stderr)
    return client


def command_new_host_key(_arguments) -> int:
    """Print a new ed25519 host key (for BORG_HOST_KEY_FILE), its fingerprint to stderr."""
    from borg_server import host_key

    text = host_key.new_private_key()
    logger.info("new host key: ssh-ed25519 %s", host_key.parse_private_key(text).fingerprint)
    print(text, end="")
    return 0


def command_new_client(arguments) -> int:
    """Print the secrets of a new client (its key pair, known_hosts, repository URL) for Swarm or Kubernetes."""
    from borg_common.settings import CLIENT_NAME, ConfigError
    from borg_server import config, pairing_secrets

    if not CLIENT_NAME.fullmatch(arguments.name):
        shown = f"{arguments.name[:40]!r} is not a client name"
        print(f"borg-server new-client: {shown}; names match {CLIENT_NAME.pattern}", file=sys.stderr)
        return 2
    try:
        endpoint = config.load_endpoint(os.environ, socket.gethostname())
        pinned = pairing_secrets.server_host_key(endpoint, PATHS)
    except ConfigError as error:
        print(error.explain("borg-server new-client", "; nothing was made"), file=sys.stderr)
        return 2
    except pairing_secrets.NoHostKey as error:
        print(f"borg-server new-client: {error}", file=sys.stderr)
        return 2
    keys = pairing_secrets.new_client_keys(arguments.name)
    print(pairing_secrets.render(arguments.name, arguments.format, endpoint, pinned, keys), end="")
    return 0


def command_monitor(_arguments) -> int:
    from borg_server import metrics, monitor, replica_status, replicator

    server_config = load_or_explain()
    if server_config is None:
        return 2
    exposition = metrics.Exposition()
    if server_config.metrics_port:
        metrics.serve(server_config.metrics_port, exposition)

    def scanned(current: config.ServerConfig, seconds: float) -> None:
        metrics.publish(exposition, PATHS, current, seconds)

    if server_config.replication is not None:
        return replicator.run(server_config, PATHS, lambda: exposition.update(replica_status.metrics(PATHS)))
    return monitor.run(server_config, PATHS, os.environ, socket.gethostname(), scanned)


def command_audit(arguments) -> int:
    from borg_server import review

    server_config = load_or_explain()
    client = server_config and find_client(server_config, arguments.name)
    if client is None:
        return 2
    if not client.append_only:
        print(f"client {client.name} may delete (APPEND_ONLY=no): its deletes are not tracked")
        return 0
    try:
        result = review.review(client, PATHS, arguments.acknowledge)
    except review.AuditRefused as error:
        print(f"borg-server: audit {client.name}: {error}", file=sys.stderr)
        return 2
    print(review.render(result, as_json=arguments.json))
    return 0


def command_compact(arguments) -> int:
    from borg_server import compact

    server_config = load_or_explain()
    client = server_config and find_client(server_config, arguments.name)
    if client is None:
        return 2
    try:
        return compact.compact(client, server_config, PATHS, arguments.keep_snapshot)
    except compact.CompactionFailed as error:
        print(f"borg-server: compact {client.name}: {error}", file=sys.stderr)
        return 1


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
    from borg_server import supervisor

    supervisor.watchdog()
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="borg-server", description="Borg Appliance server.")
    commands = main.add_subparsers(dest="command", required=True)
    commands.add_parser("start", help="validate and apply the configuration, then run supervisord").set_defaults(
        handler=command_start
    )
    commands.add_parser("reload", help="apply a changed configuration without dropping sessions").set_defaults(
        handler=command_reload
    )
    status_parser = commands.add_parser(
        "status", help="per client: last backup, age, size, quota use, append-only, deletes, last check, alerts"
    )
    status_parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status_parser.add_argument(
        "--server", action="store_true", help='with --json: {"server": disk figures, "clients": [...]}'
    )
    status_parser.set_defaults(handler=command_status)
    show = commands.add_parser("show-client", help="a client's public key, fingerprint and repository URL")
    show.add_argument("name")
    show.set_defaults(handler=command_show_client)
    audit_parser = commands.add_parser(
        "audit", help="a client's deletes and segment changes since the last acknowledgement"
    )
    audit_parser.add_argument("name")
    audit_parser.add_argument(
        "--acknowledge", type=int, metavar="SEGMENT", help="accept what the listing showed, up to this segment"
    )
    audit_parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    audit_parser.set_defaults(handler=command_audit)
    compact_parser = commands.add_parser("compact", help="free deleted space; refused while deletes are unacknowledged")
    compact_parser.add_argument("name")
    compact_parser.add_argument("--keep-snapshot", action="store_true", help="keep the hard-link snapshot taken first")
    compact_parser.set_defaults(handler=command_compact)
    commands.add_parser(
        "new-host-key", help="print a new ed25519 host key for BORG_HOST_KEY_FILE (e.g. into docker secret create)"
    ).set_defaults(handler=command_new_host_key)
    new_client = commands.add_parser(
        "new-client", help="print the secrets of a new client: its key pair, known_hosts and repository URL"
    )
    new_client.add_argument("name")
    new_client.add_argument(
        "--format", choices=SECRET_FORMATS, default="swarm",
        help="swarm: a script for sh that creates Docker secrets; kubernetes: Secrets for kubectl apply -f -",
    )  # fmt: skip
    new_client.set_defaults(handler=command_new_client)
    commands.add_parser("monitor", help="the monitor (run by supervisor)").set_defaults(handler=command_monitor)
    serve_parser = commands.add_parser("serve", help="the forced command of client keys (not for people)")
    serve_parser.add_argument("--client", required=True)
    serve_parser.add_argument("--role", required=True, choices=("append", "full", "admin", "read"))
    serve_parser.add_argument("--fingerprint", required=True)
    serve_parser.add_argument("--quota", type=int)
    serve_parser.set_defaults(handler=command_serve)
    replica_parser = commands.add_parser("serve-replica", help="the forced command of the replica key (not for people)")
    replica_parser.add_argument("--fingerprint", required=True)
    replica_parser.set_defaults(handler=command_serve_replica)
    read_parser = commands.add_parser("serve-read", help="read-only borg serve of a replica's clients (not for people)")
    read_parser.add_argument("directory")
    read_parser.set_defaults(handler=command_serve_read)
    replicate_parser = commands.add_parser("replicate", help="on a replica: copy from the primary now")
    replicate_parser.add_argument(
        "--accept", metavar="CLIENT", help="take the primary's segments where they differ from the copy (set aside)"
    )
    replicate_parser.set_defaults(handler=command_replicate)
    commands.add_parser("broker", help="the session broker (run by supervisor as root)").set_defaults(
        handler=command_broker
    )
    commands.add_parser("healthcheck", help="exit 0 when sshd answers").set_defaults(handler=command_healthcheck)
    commands.add_parser("supervisor-watchdog", help="supervisor event listener").set_defaults(handler=command_watchdog)
    return main


def main() -> int:
    arguments = parser().parse_args()
    if arguments.command not in (
        "serve",
        "serve-replica",
        "serve-read",
    ):  # serve: stderr goes to the SSH client, stdout is borg's protocol
        setup_logging(os.environ.get("LOG_LEVEL", "INFO"))
    from borg_server.system import CommandFailed

    try:
        return arguments.handler(arguments)
    except CommandFailed as error:
        logger.error("%s", error)
        return 1


if __name__ == "__main__":
    sys.exit(main())
