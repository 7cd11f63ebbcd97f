"""Load and validate the server's configuration from the environment and an optional YAML file.

The file (BORG_SERVER_CONFIG, see config_file) and the environment are one source: each setting is
read by its variable, wherever it is written. Every mistake becomes one line naming its setting the
way the user wrote it; load() raises one ConfigError with all of them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from borg_common import digest, notify
from borg_common.settings import Settings, check_unknown
from borg_server.config import replica as config_replica
from borg_server.config import yaml_file
from borg_server.config.clients import check_client_variables, client_names, read_clients
from borg_server.records.configuration import (
    DEFAULT_COMPACT_DELAY,
    DEFAULT_DISK_ALERT_USED,
    DEFAULT_SNAPSHOT_KEEP,
    Endpoint,
    ServerConfig,
)
from borg_server.system.host_key import HOST_KEY_LIMIT, HOST_KEY_SETTING, GivenHostKey, parse_private_key
from borg_server.system.ssh_keys import KeyProblem

SETTINGS = (  # every setting of the server but the clients' own (docs/reference/server-settings.md; a test checks)
    "BORG_CLIENTS", "BORG_HOST_KEY", "BORG_REPLICA_KEY", "BORG_SERVER_CONFIG", "BORG_SERVER_NAME", "COMPACT_DELAY",
    "DIGEST_CRON", "DISK_ALERT_USED", "DISK_RESERVE", "LOG_LEVEL", "MAX_SESSIONS", "METRICS_PORT",
    "MONITOR_CHECK_INTERVAL",
    "MONITOR_INTERVAL", "NOTIFY_ON", "NOTIFY_URLS", "PGID", "PUID", "REPLICATE_CRON", "REPLICATE_FROM",
    "REPLICATE_HOST_KEY",
    "REPLICATE_SSH_KEY_FILE",
    "REPLICA_KEEP_REMOVED", "REPLICA_MAX_LAG", "REPORT_URLS", "SNAPSHOT_KEEP", "SSH_LOG_LEVEL", "SSH_PORT",
    "STATUS_NO_PASSWORD", "STATUS_PASSWORD", "STATUS_PORT",
)  # fmt: skip
# Not settings: the clients' own (config/clients.py checks them) and what sshd sets in a session's environment.
NOT_SETTINGS = ("BORG_CLIENT_", "SSH_CONNECTION", "SSH_CLIENT", "SSH_ORIGINAL_COMMAND", "SSH_TTY", "SSH_AUTH_SOCK")
SSH_LOG_LEVELS = ("QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3")
DEFAULT_SSH_PORT = 22
DEFAULT_ID, MAXIMUM_ID = 1000, 2**31 - 1
DEFAULT_LOG_LEVEL = "VERBOSE"
DEFAULT_MONITOR_INTERVAL, MINIMUM_INTERVAL = 15 * 60, 10
MAXIMUM_MONITOR_INTERVAL = 7 * 86400  # deletes must be noticed long before anyone compacts them
DEFAULT_CHECK_INTERVAL = 7 * 24 * 3600  # borg check --repository-only reads every byte: weekly by default
MAXIMUM_CHECK_INTERVAL = 52 * 7 * 86400
SERVER_NAME = re.compile(r"(?:\[(?P<ipv6>[^\]]{1,45})\]|(?P<host>[^:\[\]]{1,253}))(?::(?P<port>[0-9]{1,5}))?")
BAD_SERVER_NAME = "is not a host name, IPv4 address or [IPv6] address, with optional :port"
MINIMUM_DISK_ALERT_USED, MAXIMUM_DISK_ALERT_USED = 10, 99  # percent
MAXIMUM_DISK_RESERVE = 1000**4  # 1T
MAXIMUM_COMPACT_DELAY = 90 * 86400
MAXIMUM_SNAPSHOT_KEEP = 365 * 86400
MINIMUM_STATUS_PASSWORD, MAXIMUM_STATUS_PASSWORD = 12, 1024  # characters
PERCENT = re.compile(r"([0-9]{1,3})\s*%?")
DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def load(environ: Mapping[str, str], hostname: str) -> ServerConfig:
    """Given the environment and the host name, return the configuration; raise ConfigError with every problem."""
    settings = Settings(environ)
    file = yaml_file.read(settings, environ.get("BORG_SERVER_CONFIG", ""))
    replica = settings.is_set("REPLICATE_FROM") or bool({"replicate_from", "replicate_from_file"} & set(file.fields))
    names = client_names(settings, file, required=not replica)
    settings.add_file(yaml_file.entries(settings, file, names.from_file))
    check_client_variables(settings, environ, names.listed)
    clients = read_clients(settings, names.from_environ + names.from_file)
    ssh_port = settings.integer("SSH_PORT", DEFAULT_SSH_PORT, 1, 65535)
    server_host, server_port = _server_name(settings, hostname)
    given_host_key = _host_key(settings)
    interval = settings.duration(
        "MONITOR_INTERVAL", DEFAULT_MONITOR_INTERVAL, MINIMUM_INTERVAL, MAXIMUM_MONITOR_INTERVAL
    )
    check_interval = settings.duration(
        "MONITOR_CHECK_INTERVAL", DEFAULT_CHECK_INTERVAL, MINIMUM_INTERVAL, MAXIMUM_CHECK_INTERVAL
    )
    metrics_port = settings.integer("METRICS_PORT", None, 1, 65535)
    if metrics_port is not None and metrics_port == ssh_port:
        shown = settings.shown("METRICS_PORT", str(metrics_port), quote=False)
        settings.problem(settings.label("METRICS_PORT"), f"{shown} is SSH_PORT's port; pick another one")
    status_port, status_password = _status_page(settings, ssh_port, metrics_port)
    replica_key = config_replica.read_replica_key(settings)
    replication = config_replica.read_replication(settings)
    if replica:
        config_replica.check_replica_clients(settings, clients, replica_key)
    config = ServerConfig(
        clients=tuple(sorted(clients, key=lambda client: client.name)),
        server_host=server_host,
        server_port=server_port or ssh_port,
        ssh_port=ssh_port,
        puid=_account_id(settings, "PUID"),
        pgid=_account_id(settings, "PGID"),
        ssh_log_level=settings.log_level("SSH_LOG_LEVEL", DEFAULT_LOG_LEVEL, SSH_LOG_LEVELS),
        monitor_interval=interval,
        check_interval=check_interval,
        metrics_port=metrics_port,
        status_port=status_port,
        status_password=status_password,
        report_urls=settings.urls("REPORT_URLS"),
        notify=notify.read(settings),
        digest_cron=digest.read(settings),
        log_level=settings.log_level("LOG_LEVEL"),
        disk_alert_used=_percent(settings, "DISK_ALERT_USED", DEFAULT_DISK_ALERT_USED) / 100,
        disk_reserve=settings.size("DISK_RESERVE", None, 0, MAXIMUM_DISK_RESERVE),
        compact_delay=settings.duration(
            "COMPACT_DELAY", DEFAULT_COMPACT_DELAY, MINIMUM_INTERVAL, MAXIMUM_COMPACT_DELAY
        ),
        snapshot_keep=settings.duration("SNAPSHOT_KEEP", DEFAULT_SNAPSHOT_KEEP, 0, MAXIMUM_SNAPSHOT_KEEP),
        host_key=given_host_key,
        replica_key=replica_key,
        replication=replication,
    )
    check_unknown(settings, SETTINGS, "server", "docs/reference/server-settings.md", skip=NOT_SETTINGS)
    settings.check()
    return config


def load_endpoint(environ: Mapping[str, str], hostname: str) -> Endpoint:
    """Given the environment and the host name, return BORG_SERVER_NAME, SSH_PORT and BORG_HOST_KEY(_FILE) as
    load() reads them, without needing any client configured; raise ConfigError with every problem."""
    settings = Settings(environ)
    ssh_port = settings.integer("SSH_PORT", DEFAULT_SSH_PORT, 1, 65535)
    server_host, server_port = _server_name(settings, hostname)
    endpoint = Endpoint(server_host, server_port or ssh_port, _host_key(settings))
    settings.check()
    return endpoint


def _status_page(settings: Settings, ssh_port: int, metrics_port: int | None) -> tuple[int | None, str | None]:
    """Return STATUS_PORT (None: off) and the page's password (None: served without one, or off).

    Record a port taken by sshd or the metrics, a password too short or set without the port, and a port
    with neither a password nor STATUS_NO_PASSWORD=yes (the page would be open to anyone who reaches it).
    """
    port = settings.integer("STATUS_PORT", None, 1, 65535)
    password = settings.string("STATUS_PASSWORD", limit=MAXIMUM_STATUS_PASSWORD)
    before = len(settings.problems)
    open_port = settings.boolean("STATUS_NO_PASSWORD", False)
    unreadable = len(settings.problems) > before  # its own problem says what is wrong with it
    taken = {ssh_port: "SSH_PORT", metrics_port: "METRICS_PORT"}
    if port is not None and port in taken:
        shown = settings.shown("STATUS_PORT", str(port), quote=False)
        settings.problem(settings.label("STATUS_PORT"), f"{shown} is {taken[port]}'s port; pick another one")
    if password is not None:
        label = settings.label("STATUS_PASSWORD")  # never the password itself
        if len(password) < MINIMUM_STATUS_PASSWORD:
            settings.problem(label, f"has {len(password)} characters; use at least {MINIMUM_STATUS_PASSWORD} "
                                    "(e.g. from: head -c 24 /dev/urandom | base64)")  # fmt: skip
        if open_port:
            settings.problem(label, "is set beside STATUS_NO_PASSWORD=yes; set only one")
        if port is None:
            settings.problem(label, "is set but STATUS_PORT is not; set STATUS_PORT to serve the status page")
    elif port is not None and not open_port and not unreadable:
        settings.problem(
            settings.label("STATUS_PORT"),
            "the status page needs a password: set STATUS_PASSWORD_FILE (a secret), or STATUS_NO_PASSWORD=yes "
            "if only trusted hosts can reach this port (e.g. behind a reverse proxy that asks for one)",
        )
    return port, password


def _host_key(settings: Settings) -> GivenHostKey | None:
    """Return the host key BORG_HOST_KEY(_FILE) gives, or None if unset; record one that sshd could not use."""
    text = settings.string(HOST_KEY_SETTING, limit=HOST_KEY_LIMIT)
    if text is None:
        return None
    label = settings.label(HOST_KEY_SETTING)
    try:
        return GivenHostKey(text.strip() + "\n", parse_private_key(text), label)
    except KeyProblem as problem:
        settings.problem(label, str(problem))
        return None


def _server_name(settings: Settings, hostname: str) -> tuple[str, int | None]:
    """Given settings and the host name, return BORG_SERVER_NAME's (host, port or None); default (hostname, None)."""
    text = settings.string("BORG_SERVER_NAME")
    if text is None:
        return hostname, None
    match = SERVER_NAME.fullmatch(text.strip())
    if match and _valid_host(match["host"], match["ipv6"]) and 1 <= int(match["port"] or 1) <= 65535:
        return match["host"] or match["ipv6"], int(match["port"]) if match["port"] else None
    settings.problem(
        settings.label("BORG_SERVER_NAME"), f"{settings.shown('BORG_SERVER_NAME', text)} {BAD_SERVER_NAME}"
    )
    return hostname, None


def _valid_host(host: str | None, ipv6: str | None) -> bool:
    """Given a DNS name or IPv4 address (host) or the inside of [brackets] (ipv6), return whether it is valid."""
    if ipv6 is None and not re.fullmatch(r"[0-9.]+", host):
        return len(host) <= 253 and all(DNS_LABEL.fullmatch(label) for label in host.split("."))
    try:
        return ipaddress.ip_address(ipv6 or host).version == (4 if ipv6 is None else 6)
    except ValueError:
        return False


def _account_id(settings: Settings, variable: str) -> int:
    """Given PUID or PGID, return its id; record 0 (root) or one out of range."""
    number = settings.integer(variable, DEFAULT_ID)
    if not 1 <= number <= MAXIMUM_ID:
        reason = "is root; the borg account must not be root" if number == 0 else f"is out of range 1..{MAXIMUM_ID}"
        settings.problem(settings.label(variable), f"{settings.shown(variable, str(number), quote=False)} {reason}")
    return number


def _percent(settings: Settings, variable: str, default: int) -> int:
    """Given a share setting ("90%" or "90"), return its percent; record one that is malformed or out of range."""
    text = settings.string(variable)
    if text is None:
        return default
    match = PERCENT.fullmatch(text.strip())
    if match is None:
        settings.problem(settings.label(variable), f"{settings.shown(variable, text)} is not a percentage (e.g. 90%)")
        return default
    low, high = MINIMUM_DISK_ALERT_USED, MAXIMUM_DISK_ALERT_USED
    if not low <= int(match[1]) <= high:
        shown = settings.shown(variable, text, quote=False)
        settings.problem(settings.label(variable), f"{shown} is out of range {low}%..{high}%")
        return default
    return int(match[1])
