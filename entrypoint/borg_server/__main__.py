"""borg-server: the server's command line: its arguments, and which command (cli_service, cli_admin) runs."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from borg_common.logs import setup_logging
from borg_server.cli import admin, service

logger = logging.getLogger("borg_server")
SECRET_FORMATS = ("swarm", "kubernetes", "compose")  # what new-client prints (pairing_secrets.FORMATS; a test checks)


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="borg-server",
        description="Borg Appliance server.",
        epilog="serve, serve-replica (the forced commands of the keys): borg_server.sessions.forced_command",
    )
    commands = main.add_subparsers(dest="command", required=True)
    commands.add_parser("start", help="validate and apply the configuration, then run supervisord").set_defaults(
        handler=service.command_start
    )
    commands.add_parser("reload", help="apply a changed configuration without dropping sessions").set_defaults(
        handler=admin.command_reload
    )
    status_parser = commands.add_parser(
        "status", help="per client: last backup, age, size, quota use, append-only, deletes, last check, alerts"
    )
    status_parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status_parser.add_argument(
        "--server",
        action="store_true",
        help='with --json: {"server": disk figures, "clients": [...]} (a replica: {"primary": ..., "clients": [...]})',
    )
    status_parser.set_defaults(handler=admin.command_status)
    show = commands.add_parser("show-client", help="a client's public key, fingerprint and repository URL")
    show.add_argument("name")
    show.set_defaults(handler=admin.command_show_client)
    commands.add_parser(
        "digest", help="print the digest of every client now and send it to NOTIFY_URLS (to check they arrive)"
    ).set_defaults(handler=admin.command_digest)
    commands.add_parser(
        "scan", help="make the monitor scan every client now; wait for that scan and say how long it took"
    ).set_defaults(handler=admin.command_scan)
    audit_parser = commands.add_parser(
        "audit", help="a client's deletes and segment changes since the last acknowledgement"
    )
    audit_parser.add_argument("name")
    audit_parser.add_argument(
        "--acknowledge", type=int, metavar="SEGMENT", help="accept what the listing showed, up to this segment"
    )
    audit_parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    audit_parser.set_defaults(handler=admin.command_audit)
    compact_parser = commands.add_parser("compact", help="free deleted space; refused while deletes are unacknowledged")
    compact_parser.add_argument("name")
    compact_parser.add_argument("--keep-snapshot", action="store_true", help="keep the hard-link snapshot taken first")
    compact_parser.set_defaults(handler=admin.command_compact)
    commands.add_parser(
        "new-host-key", help="print a new ed25519 host key for BORG_HOST_KEY_FILE (e.g. into docker secret create)"
    ).set_defaults(handler=admin.command_new_host_key)
    new_client = commands.add_parser(
        "new-client", help="print the secrets of a new client: its key pair, known_hosts and repository URL"
    )
    new_client.add_argument("name")
    new_client.add_argument(
        "--format", choices=SECRET_FORMATS, default="swarm",
        help="swarm: a script for sh that creates Docker secrets; kubernetes: Secrets for kubectl apply -f -; "
        "compose: a script for sh on the sidecar's host that writes its pairing directory",
    )  # fmt: skip
    new_client.set_defaults(handler=admin.command_new_client)
    commands.add_parser("monitor", help="the monitor (run by supervisor)").set_defaults(handler=service.command_monitor)
    read_parser = commands.add_parser("serve-read", help="read-only borg serve of a replica's clients (not for people)")
    read_parser.add_argument("directory")
    read_parser.set_defaults(handler=service.command_serve_read)
    replicate_parser = commands.add_parser("replicate", help="on a replica: copy from the primary now")
    replicate_parser.add_argument(
        "--accept", metavar="CLIENT", help="take the primary's segments where they differ from the copy (set aside)"
    )
    replicate_parser.set_defaults(handler=admin.command_replicate)
    commands.add_parser("broker", help="the session broker (run by supervisor as root)").set_defaults(
        handler=service.command_broker
    )
    commands.add_parser("healthcheck", help="exit 0 when sshd answers").set_defaults(
        handler=service.command_healthcheck
    )
    commands.add_parser("supervisor-watchdog", help="supervisor event listener").set_defaults(
        handler=service.command_watchdog
    )
    return main


def main() -> int:
    arguments = parser().parse_args()
    if arguments.command != "serve-read":  # stderr goes to the SSH client, stdout is borg's protocol
        setup_logging(os.environ.get("LOG_LEVEL", "INFO"))
    from borg_server.system.commands import CommandFailed

    try:
        return arguments.handler(arguments)
    except CommandFailed as error:
        logger.error("%s", error)
        return 1


if __name__ == "__main__":
    sys.exit(main())
