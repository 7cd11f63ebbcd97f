"""The borg-server commands an administrator runs: reload, scan, status, show-client, digest, audit, compact,
replicate, new-host-key and new-client."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from borg_server.cli.shared import PATHS, find_client, load_or_explain

# Each command imports the modules it needs itself: the forced command (serve) of every session and
# the healthcheck start in a few milliseconds instead of importing the whole server.

logger = logging.getLogger("borg_server")


def command_reload(_arguments) -> int:
    """Re-read and apply the configuration; sshd re-reads its own without dropping sessions."""
    from borg_server.provision import start
    from borg_server.system import commands

    server_config = load_or_explain()
    if server_config is None:
        return 2
    start.apply(server_config, PATHS)
    commands.checked(["supervisorctl", "-c", str(PATHS.supervisord_config), "signal", "HUP", "sshd"])
    logger.info("reloaded: %d clients; running sessions were kept", len(server_config.clients))
    return 0


SCAN_WAIT = 600  # seconds `borg-server scan` waits for the scan it asked for (1000 clients scan in seconds)
MONITOR_START = 30  # seconds it waits for a monitor that is still starting


def command_scan(_arguments) -> int:
    """Make the monitor scan every client now (SIGUSR1), wait until a scan that began after the request has
    ended, and say how long it took; its alerts go where the monitor's always go."""
    import time

    from borg_server.repository import audit_log

    server_config = load_or_explain()
    if server_config is None:
        return 2
    if server_config.replication is not None:
        print("borg-server: a replica has no monitor to scan; `borg-server replicate` copies now", file=sys.stderr)
        return 2
    requested, started = time.time(), time.monotonic()
    while (pid := monitor_pid()) is None:
        if time.monotonic() - started > MONITOR_START:
            print("borg-server: the monitor is not running; see `supervisorctl status` and the log", file=sys.stderr)
            return 1
        time.sleep(0.2)
    os.kill(pid, signal.SIGUSR1)
    seen = time.monotonic()  # when a monitor last ran: one that restarts scans at once, one that is gone never
    while time.monotonic() - started < SCAN_WAIT:
        position = audit_log.read_position(PATHS.monitor_position)
        ended, seconds = position.get("last_scan", 0), position.get("scan_seconds", 0)
        if ended - seconds >= requested:
            clients = len(server_config.clients)
            print(f"scanned {clients} clients in {seconds:.2f}s; borg-server status shows what it found")
            return 0
        if monitor_pid() is not None:
            seen = time.monotonic()
        elif time.monotonic() - seen > MONITOR_START:
            print("borg-server: the monitor stopped before its scan ended; see `supervisorctl status` and the log",
                  file=sys.stderr)  # fmt: skip
            return 1
        time.sleep(0.1)
    print(f"borg-server: the monitor did not finish a scan within {SCAN_WAIT}s; see the server's log", file=sys.stderr)
    return 1


def monitor_pid() -> int | None:
    """Return the running monitor's process id from its pid file, or None if there is no such monitor (yet)."""
    try:
        pid = int(PATHS.monitor_pid.read_text())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if command[-2:-1] == [b"monitor"] else None


def command_status(arguments) -> int:
    from borg_server.replica import status as replica_status
    from borg_server.status import facts
    from borg_server.status import text as status

    server_config = load_or_explain()
    if server_config is None:
        return 2
    if server_config.replication is not None:
        primary = (
            replica_status.primary_status(server_config, PATHS) if arguments.server or not arguments.json else None
        )
        print(replica_status.render(replica_status.collect(PATHS), as_json=arguments.json, primary=primary))
        return 0
    clients = facts.collect(server_config, PATHS)
    server = facts.server_status(server_config, PATHS) if arguments.server or not arguments.json else None
    print(status.render(clients, as_json=arguments.json, server=server))
    return 0


def command_show_client(arguments) -> int:
    from borg_server.status import text as status

    server_config = load_or_explain()
    if server_config is None:
        return 2
    if find_client(server_config, arguments.name) is None:
        return 2
    print(status.show_client(server_config, PATHS, arguments.name))
    return 0


def command_audit(arguments) -> int:
    from borg_server.monitor import audit

    server_config = load_or_explain()
    client = server_config and find_client(server_config, arguments.name)
    if client is None:
        return 2
    if not client.append_only:
        print(f"client {client.name} may delete (APPEND_ONLY=no): its deletes are not tracked")
        return 0
    try:
        result = audit.review(client, PATHS, arguments.acknowledge)
    except audit.AuditRefused as error:
        print(f"borg-server: audit {client.name}: {error}", file=sys.stderr)
        return 2
    print(audit.render(result, as_json=arguments.json))
    return 0


def command_compact(arguments) -> int:
    from borg_server.compaction import by_hand

    server_config = load_or_explain()
    client = server_config and find_client(server_config, arguments.name)
    if client is None:
        return 2
    try:
        return by_hand.compact(client, server_config, PATHS, arguments.keep_snapshot)
    except by_hand.CompactionFailed as error:
        print(f"borg-server: compact {client.name}: {error}", file=sys.stderr)
        return 1


def command_replicate(arguments) -> int:
    from borg_server.replica import copy

    server_config = load_or_explain()
    if server_config is None:
        return 2
    if server_config.replication is None:
        print("borg-server: replicate: this server is no replica (REPLICATE_FROM is not set)", file=sys.stderr)
        return 2
    code = copy.replicate(server_config, PATHS, arguments.accept)
    if (pid := monitor_pid()) is not None:  # the replicator looks now: the metrics and the page show this round
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGUSR1)
    return code


def command_new_host_key(_arguments) -> int:
    """Print a new ed25519 host key (for BORG_HOST_KEY_FILE), its fingerprint to stderr."""
    from borg_server.system import host_key

    text = host_key.new_private_key()
    logger.info("new host key: ssh-ed25519 %s", host_key.parse_private_key(text).fingerprint)
    print(text, end="")
    return 0


def command_new_client(arguments) -> int:
    """Print the secrets of a new client (key pair, known_hosts, repository URL) for Swarm, Kubernetes or compose."""
    from borg_common.settings import CLIENT_NAME, ConfigError
    from borg_server.config import reader
    from borg_server.provision import pairing_secrets

    if not CLIENT_NAME.fullmatch(arguments.name):
        shown = f"{arguments.name[:40]!r} is not a client name"
        print(f"borg-server new-client: {shown}; names match {CLIENT_NAME.pattern}", file=sys.stderr)
        return 2
    try:
        endpoint = reader.load_endpoint(os.environ, socket.gethostname())
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


def command_digest(_arguments) -> int:
    """Print the digest of the figures now and send it to NOTIFY_URLS now, whatever DIGEST_CRON and NOTIFY_ON say:
    for a person checking that notifications arrive. Exit 0 when it was queued, 1 without NOTIFY_URLS."""
    from datetime import datetime

    from borg_common import digest as common_digest
    from borg_server.replica import status
    from borg_server.status import digest

    server_config = load_or_explain()
    if server_config is None:
        return 2
    replication = server_config.replication
    extra = (lambda: status.digest_blocks(PATHS, replication.max_lag)) if replication else None
    made = digest.gather(server_config, PATHS, datetime.now().astimezone(), extra)
    return common_digest.send_now(made, server_config.server_host, PATHS.notify_outbox, server_config.notify,
                                  digest.REPORT_TIMEOUT)  # fmt: skip
