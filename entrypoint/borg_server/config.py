"""Load and validate the server's configuration from the environment and an optional YAML file.

Every mistake becomes one line naming its setting; load() raises one ConfigError with all of them. BORG_SERVER_CONFIG's
settings are read like variables named by their place in it ("BORG_SERVER_CONFIG (path) clients.web.quota").
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from borg_common.settings import Settings, parse_size
from borg_server.keys import KeyProblem, PublicKey, parse_public_key

CLIENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
CLIENT_FIELDS = ("key", "admin_key", "quota", "append_only", "max_age")
SERVER_FIELDS = {"server_name": "BORG_SERVER_NAME"} | {  # top-level settings: name in YAML -> variable
    field: field.upper()
    for field in (
        "ssh_port", "puid", "pgid", "ssh_log_level", "monitor_interval", "monitor_check_interval", "metrics_port",
        "report_urls",
    )
}  # fmt: skip
LOG_LEVELS = ("QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3")
DEFAULT_SSH_PORT = 22
DEFAULT_ID, MAXIMUM_ID = 1000, 2**31 - 1
DEFAULT_LOG_LEVEL = "VERBOSE"
DEFAULT_MONITOR_INTERVAL, MINIMUM_INTERVAL = 15 * 60, 10
DEFAULT_MAX_AGE = 26 * 3600
DEFAULT_CHECK_INTERVAL = 7 * 24 * 3600  # borg check --repository-only reads every byte: weekly by default
SERVER_NAME = re.compile(r"(?:\[(?P<ipv6>[^\]]*)\]|(?P<host>[^:\[\]]+))(?::(?P<port>[0-9]+))?")
DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
BAD_NAME = f"is not a valid client name; names match {CLIENT_NAME.pattern} (lower-case letters, digits, - and _)"
NO_CLIENT = 'no client is configured; set it to client names (e.g. "web db") or list clients in BORG_SERVER_CONFIG'
UNKNOWN_FIELD = (
    f"unknown setting; per-client settings are {', '.join(map(str.upper, CLIENT_FIELDS))}, each also as _FILE"
)
SERVER_KEYS = f"allowed: {', '.join(SERVER_FIELDS)}, clients; each setting also as <setting>_file"
CLIENT_KEYS = f"allowed: {', '.join(CLIENT_FIELDS)}; each also as <setting>_file"


@dataclass(frozen=True)
class ClientSpec:
    """One client: its name, its keys (None: the server generates a key pair) and its limits."""

    name: str
    env_name: str
    key: PublicKey | None
    admin_key: PublicKey | None
    quota: int | None
    append_only: bool
    max_age: int


@dataclass(frozen=True)
class ServerConfig:
    """The validated server configuration; server_host is bare (no brackets around IPv6)."""

    clients: tuple[ClientSpec, ...]
    server_host: str
    server_port: int
    ssh_port: int
    puid: int
    pgid: int
    ssh_log_level: str
    monitor_interval: int
    check_interval: int
    metrics_port: int | None
    report_urls: tuple[str, ...]


def load(environ: Mapping[str, str], hostname: str) -> ServerConfig:
    """Given the environment and the host name, return the configuration; raise ConfigError with every problem."""
    settings = Settings(environ)
    path = environ.get("BORG_SERVER_CONFIG", "")
    base = f"BORG_SERVER_CONFIG ({path})"
    from_file, file_names = _read_yaml(settings, path, base) if path else ({}, [])
    settings.environ = {**environ, **from_file}  # the file's settings, read like variables named by their labels
    clients = _clients(settings, environ, base, file_names)
    name = {}  # field -> the setting to read it from: its variable, or its label if the file sets it
    for field, variable in SERVER_FIELDS.items():
        label = f"{base} {field}"
        if label in from_file and settings.is_set(variable):
            settings.problem(variable, f"is also set as {label}; set it in one place")
        name[field] = label if label in from_file else variable
    ssh_port = settings.integer(name["ssh_port"], DEFAULT_SSH_PORT, 1, 65535)
    server_host, server_port = _server_name(settings, name["server_name"], hostname)
    interval = settings.duration(name["monitor_interval"], DEFAULT_MONITOR_INTERVAL)
    if interval < MINIMUM_INTERVAL:
        settings.problem(name["monitor_interval"], f"{interval}s is too short; use at least {MINIMUM_INTERVAL}s")
    check_interval = settings.duration(name["monitor_check_interval"], DEFAULT_CHECK_INTERVAL)
    if check_interval < MINIMUM_INTERVAL:
        settings.problem(
            name["monitor_check_interval"], f"{check_interval}s is too short; use at least {MINIMUM_INTERVAL}s"
        )
    metrics_port = settings.integer(name["metrics_port"], None, 1, 65535)
    if metrics_port is not None and metrics_port == ssh_port:
        settings.problem(name["metrics_port"], f"{metrics_port} is SSH_PORT's port; pick another one")
    config = ServerConfig(
        clients=tuple(sorted(clients, key=lambda client: client.name)),
        server_host=server_host,
        server_port=server_port or ssh_port,
        ssh_port=ssh_port,
        puid=_account_id(settings, name["puid"]),
        pgid=_account_id(settings, name["pgid"]),
        ssh_log_level=_log_level(settings, name["ssh_log_level"]),
        monitor_interval=interval,
        check_interval=check_interval,
        metrics_port=metrics_port,
        report_urls=_report_urls(settings, name["report_urls"]),
    )
    settings.check()
    return config


def _read_yaml(settings: Settings, path: str, base: str) -> tuple[dict[str, str], list[str] | None]:
    """Given BORG_SERVER_CONFIG's path, return its settings as {label: text} and its client names (None if unusable)."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError) as error:
        settings.problem("BORG_SERVER_CONFIG", f"cannot read {path}: {getattr(error, 'strerror', None) or error}")
        return {}, None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        reason = getattr(error, "problem", None) or " ".join(str(error).split())
        settings.problem(base, f"is not valid YAML: {where}{reason}")
        return {}, None
    if not isinstance(document, dict):
        settings.problem(base, f"must be a mapping of settings, not a {type(document).__name__}; {SERVER_KEYS}")
        return {}, None
    flat = _flatten(settings, f"{base} ", {k: v for k, v in document.items() if k != "clients"}, SERVER_FIELDS)
    clients = document.get("clients") or {}
    if not isinstance(clients, dict):
        settings.problem(f"{base} clients", "must be a mapping of client names to their settings")
        return flat, None
    for name, fields in clients.items():
        if not isinstance(fields, dict | None):
            settings.problem(f"{base} clients.{name}", f"must be a mapping of settings; {CLIENT_KEYS}")
        else:
            flat |= _flatten(settings, f"{base} clients.{name}.", fields or {}, CLIENT_FIELDS)
    return flat, [str(name) for name in clients]


def _flatten(settings: Settings, prefix: str, mapping: dict, allowed: tuple | dict) -> dict[str, str]:
    """Given a YAML mapping of allowed names (or name_file), return {prefix + name: text}, reading files."""
    flat: dict[str, str] = {}
    for key, value in mapping.items():
        field = str(key).removesuffix("_file")
        label = f"{prefix}{key}"
        if field not in allowed:
            settings.problem(label, f"unknown setting; {SERVER_KEYS if isinstance(allowed, dict) else CLIENT_KEYS}")
        elif isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, list | dict) for v in value)):
            settings.problem(label, "must be a value or a list of values")
        elif value is None:
            continue
        elif key == field:
            flat[label] = " ".join(map(str, value)) if isinstance(value, list) else str(value)
        elif mapping.get(field) is not None:
            settings.problem(f"{prefix}{field}", f"both {field} and {key} are set; set only one")
        else:
            try:
                flat[f"{prefix}{field}"] = Path(str(value)).read_text(encoding="utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as error:
                settings.problem(label, f"cannot read {value}: {getattr(error, 'strerror', None) or error}")
    return flat


def _clients(settings: Settings, environ: Mapping[str, str], base: str, file_names: list | None) -> list[ClientSpec]:
    """Given settings and the client names in the file (labelled base), return every usable client."""
    listed = settings.words("BORG_CLIENTS")
    if not listed and file_names == []:  # None: the file is unusable, which is reported already
        settings.problem("BORG_CLIENTS", NO_CLIENT)
    file_names = file_names or []
    for name in dict.fromkeys(name for name in listed if name in file_names):
        settings.problem("BORG_CLIENTS", f"{name} is also configured in {base} clients; configure it in one place")
    _check_client_variables(settings, environ, list(dict.fromkeys(listed)))
    taken: dict[str, str] = {}  # env_name -> client name
    keys: dict[tuple[str, str], str] = {}  # key identity -> setting
    from_environ = _usable_names(settings, "BORG_CLIENTS", listed, taken)
    from_file = _usable_names(settings, f"{base} clients", [n for n in file_names if n not in listed], taken)
    clients = [_client(settings, name, f"BORG_CLIENT_{_env_name(name)}_", str.upper, keys) for name in from_environ]
    return clients + [_client(settings, name, f"{base} clients.{name}.", str, keys) for name in from_file]


def _check_client_variables(settings: Settings, environ: Mapping[str, str], names: list[str]) -> None:
    """Given the names in BORG_CLIENTS, record each BORG_CLIENT_* variable with no or two meanings."""
    fields = sorted((f.upper() + end for f in CLIENT_FIELDS for end in ("", "_FILE")), key=len, reverse=True)
    listed = ", ".join(names) or "none"
    for variable in sorted(name for name, value in environ.items() if name.startswith("BORG_CLIENT_") and value):
        rest = variable.removeprefix("BORG_CLIENT_")
        readings = [f"{f} of client {n}" for n in names for f in fields if rest == f"{_env_name(n)}_{f}"]
        owner = next((rest.removesuffix(f"_{f}") for f in fields if rest.endswith(f"_{f}")), "")
        if len(readings) > 1:
            settings.problem(variable, f"could mean {' or '.join(readings)}; rename one of these clients")
        elif not readings and owner:
            name = owner.lower().replace("_", "-")
            settings.problem(variable, f"no client {name} is configured (BORG_CLIENTS lists: {listed})")
        elif not readings:
            settings.problem(variable, UNKNOWN_FIELD)


def _usable_names(settings: Settings, setting: str, names: list[str], taken: dict[str, str]) -> list[str]:
    """Given names listed in setting, return the valid ones not repeated nor with an env_name in taken."""
    usable: list[str] = []
    for name, env_name in ((name, _env_name(name)) for name in names):
        if not CLIENT_NAME.fullmatch(name):
            settings.problem(setting, f"{name!r} {BAD_NAME}")
        elif name in usable:
            settings.problem(setting, f"{name} is listed twice")
        elif env_name in taken:
            settings.problem(setting, f"{taken[env_name]} and {name} both use BORG_CLIENT_{env_name}_*; rename one")
        else:
            taken[env_name] = name
            usable.append(name)
    return usable


def _client(settings: Settings, name: str, prefix: str, case: Callable[[str], str], keys: dict) -> ClientSpec:
    """Given a client's name and its settings' names (prefix + case(field)), return its spec."""
    setting = {field: prefix + case(field) for field in CLIENT_FIELDS}
    return ClientSpec(
        name=name,
        env_name=_env_name(name),
        key=_key(settings, setting["key"], keys),
        admin_key=_key(settings, setting["admin_key"], keys),
        quota=_quota(settings, setting["quota"]),
        append_only=settings.boolean(setting["append_only"], True),
        max_age=settings.duration(setting["max_age"], DEFAULT_MAX_AGE),
    )


def _key(settings: Settings, setting: str, keys: dict[tuple[str, str], str]) -> PublicKey | None:
    """Given a key's setting, return its key (None if unset); record a bad key or one used before."""
    text = settings.string(setting)
    try:
        key = parse_public_key(text) if text is not None else None
    except KeyProblem as problem:
        settings.problem(setting, str(problem))
        return None
    if key and keys.setdefault(key.identity, setting) != setting:
        settings.problem(setting, f"is the same key as {keys[key.identity]}; each client and admin needs its own key")
    return key


MINIMUM_QUOTA = 10_000_000  # borg serve --storage-quota refuses anything smaller


def _quota(settings: Settings, setting: str) -> int | None:
    """Given a quota's setting, return bytes (None if unset); record a malformed or too small size."""
    text = settings.string(setting)
    size = None if text is None else parse_size(text)
    if text is not None and not size:
        settings.problem(setting, f"{text!r} is not a size above 0; use a number with K, M, G, T or P (e.g. 50G)")
        return None
    if size is not None and size < MINIMUM_QUOTA:
        settings.problem(setting, f"{text} is below borg's minimum storage quota of 10M")
        return None
    return size


def _server_name(settings: Settings, setting: str, hostname: str) -> tuple[str, int | None]:
    """Given BORG_SERVER_NAME's setting, return (host, port or None); default (hostname, None)."""
    text = settings.string(setting)
    if text is None:
        return hostname, None
    match = SERVER_NAME.fullmatch(text.strip())
    if match and _valid_host(match["host"], match["ipv6"]) and 1 <= int(match["port"] or 1) <= 65535:
        return match["host"] or match["ipv6"], int(match["port"]) if match["port"] else None
    settings.problem(setting, f"{text!r} is not a host name, IPv4 address or [IPv6] address, with optional :port")
    return hostname, None


def _valid_host(host: str | None, ipv6: str | None) -> bool:
    """Given a DNS name or IPv4 address (host) or the inside of [brackets] (ipv6), return whether it is valid."""
    if ipv6 is None and not re.fullmatch(r"[0-9.]+", host):
        return len(host) <= 253 and all(DNS_LABEL.fullmatch(label) for label in host.split("."))
    try:
        return ipaddress.ip_address(ipv6 or host).version == (4 if ipv6 is None else 6)
    except ValueError:
        return False


def _account_id(settings: Settings, setting: str) -> int:
    """Given PUID's or PGID's setting, return the id; record 0 (root) or one out of range."""
    number = settings.integer(setting, DEFAULT_ID)
    if not 1 <= number <= MAXIMUM_ID:
        reason = "is root; the borg account must not be root" if number == 0 else f"is out of range 1..{MAXIMUM_ID}"
        settings.problem(setting, f"{number} {reason}")
    return number


def _log_level(settings: Settings, setting: str) -> str:
    """Given SSH_LOG_LEVEL's setting, return the level in upper case; record one sshd does not know."""
    text = settings.string(setting, DEFAULT_LOG_LEVEL)
    if text.strip().upper() not in LOG_LEVELS:
        settings.problem(setting, f"{text!r} is not one of {', '.join(LOG_LEVELS)}")
    return text.strip().upper()


def _report_urls(settings: Settings, setting: str) -> tuple[str, ...]:
    """Given REPORT_URLS's setting, return its URLs; record any that is not http(s) with a host."""
    urls = tuple(settings.words(setting))
    for url in urls:
        try:
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") and parts.hostname:
                continue
        except ValueError:
            pass
        shown = re.sub(r"//[^/@]*@", "//***@", url)  # never print credentials
        settings.problem(setting, f"{shown!r} is not an http:// or https:// URL with a host")
    return urls


def _env_name(name: str) -> str:
    """Given a client name, return its part of variable names: upper case, "-" as "_"."""
    return name.upper().replace("-", "_")
