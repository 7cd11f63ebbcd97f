"""The server's clients: which ones are configured (BORG_CLIENTS, BORG_SERVER_CONFIG) and each one's spec.

Every client's settings are read by their variables (BORG_CLIENT_WEB_KEY), whether the environment
or the file writes them; a problem names each the way the user wrote it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from borg_common.settings import CLIENT_NAME, Settings
from borg_common.values import quoted
from borg_server.config.names import CLIENT_FIELDS, client_variable, env_name
from borg_server.config.yaml_file import ConfigFile
from borg_server.records.configuration import DEFAULT_MAX_SESSIONS, MAXIMUM_SESSIONS, ClientSpec
from borg_server.system.ssh_keys import KeyProblem, PublicKey, parse_public_key

DEFAULT_MAX_AGE = 26 * 3600
MINIMUM_MAX_AGE, MAXIMUM_MAX_AGE = 60, 52 * 7 * 86400  # one minute .. 52 weeks
MINIMUM_QUOTA = 10_000_000  # borg serve --storage-quota refuses anything smaller
MAXIMUM_QUOTA = 1000**5  # 1P
MAXIMUM_CLIENTS = 1000  # one directory, key and (later) account each
GENERATE = "generate"  # ADMIN_KEY's value that asks the server for the admin keypair
AUTO_COMPACT = ("admin", "off")  # admin: the monitor compacts deletes written by admin sessions; off: by hand only
BAD_NAME = f"is not a valid client name; names match {CLIENT_NAME.pattern} (lower-case letters, digits, - and _)"
NO_CLIENT = 'no client is configured; set it to client names (e.g. "web db") or list clients in BORG_SERVER_CONFIG'
UNKNOWN_FIELD = (
    f"unknown setting; per-client settings are {', '.join(map(str.upper, CLIENT_FIELDS))}, each also as _FILE"
)


@dataclass(frozen=True)
class ClientNames:
    """The clients configured: the names BORG_CLIENTS lists (once each), and the usable ones from each place."""

    listed: list[str]
    from_environ: list[str]
    from_file: list[str]


def client_names(settings: Settings, file: ConfigFile, required: bool = True) -> ClientNames:
    """Given settings and BORG_SERVER_CONFIG as read, return the client names; record bad, repeated or clashing ones.

    required: no client at all is a problem (a replica may have none: it copies every client of its primary).
    """
    listed = settings.words("BORG_CLIENTS")
    in_file = None if file.clients is None else list(file.clients)
    if required and not listed and in_file == []:  # None: the file is unusable, which is reported already
        settings.problem("BORG_CLIENTS", NO_CLIENT)
    in_file = in_file or []
    for name in dict.fromkeys(name for name in listed if name in in_file):
        settings.problem(
            "BORG_CLIENTS", f"{name} is also configured in {file.label} clients; configure it in one place"
        )
    taken: dict[str, str] = {}  # env_name -> client name
    from_environ = _usable_names(settings, "BORG_CLIENTS", listed, taken)
    from_file = _usable_names(settings, f"{file.label} clients", [n for n in in_file if n not in listed], taken)
    if len(from_environ) + len(from_file) > MAXIMUM_CLIENTS:
        count = len(from_environ) + len(from_file)
        settings.problem("BORG_CLIENTS", f"{count} clients are configured; the limit is {MAXIMUM_CLIENTS}")
    return ClientNames(list(dict.fromkeys(listed)), from_environ, from_file)


def check_client_variables(settings: Settings, environ: Mapping[str, str], listed: list[str]) -> None:
    """Given the names in BORG_CLIENTS, record each BORG_CLIENT_* variable with no or two meanings.

    A variable that a file's entry stands for too is reported by Settings.add_file already.
    """
    fields = sorted((f.upper() + end for f in CLIENT_FIELDS for end in ("", "_FILE")), key=len, reverse=True)
    names = ", ".join(listed) or "none"
    for variable in sorted(name for name, value in environ.items() if name.startswith("BORG_CLIENT_") and value):
        if variable.removesuffix("_FILE") in settings.file_entries:
            continue
        rest = variable.removeprefix("BORG_CLIENT_")
        readings = [f"{f} of client {n}" for n in listed for f in fields if rest == f"{env_name(n)}_{f}"]
        owner = next((rest.removesuffix(f"_{f}") for f in fields if rest.endswith(f"_{f}")), "")
        if len(readings) > 1:
            settings.problem(variable, f"could mean {' or '.join(readings)}; rename one of these clients")
        elif not readings and owner:
            name = owner.lower().replace("_", "-")
            settings.problem(variable, f"no client {name} is configured (BORG_CLIENTS lists: {names})")
        elif not readings:
            settings.problem(variable, UNKNOWN_FIELD)


def read_clients(settings: Settings, names: list[str]) -> list[ClientSpec]:
    """Given usable client names, return each one's spec; record bad settings and keys used twice.

    MAX_SESSIONS is every client's default for its own BORG_CLIENT_<NAME>_MAX_SESSIONS.
    """
    keys: dict[tuple[str, str], str] = {}  # key identity -> the setting that gave it first
    sessions = settings.integer("MAX_SESSIONS", DEFAULT_MAX_SESSIONS, 1, MAXIMUM_SESSIONS)
    return [_client(settings, name, keys, sessions) for name in names]


def _usable_names(settings: Settings, setting: str, names: list[str], taken: dict[str, str]) -> list[str]:
    """Given names listed in setting, return the valid ones not repeated nor with an env_name in taken.

    A name BORG_CLIENTS_FILE gave is not shown unless valid: the file may hold a secret by mistake.
    """
    usable: list[str] = []
    for name, part in ((name, env_name(name)) for name in names):
        if not CLIENT_NAME.fullmatch(name):
            shown = settings.shown("BORG_CLIENTS", name) if setting == "BORG_CLIENTS" else quoted(name)
            settings.problem(settings.label(setting) if setting == "BORG_CLIENTS" else setting, f"{shown} {BAD_NAME}")
        elif name in usable:
            settings.problem(setting, f"{name} is listed twice")
        elif part in taken:
            settings.problem(setting, f"{taken[part]} and {name} both use BORG_CLIENT_{part}_*; rename one")
        else:
            taken[part] = name
            usable.append(name)
    return usable


def _client(settings: Settings, name: str, keys: dict[tuple[str, str], str], sessions: int) -> ClientSpec:
    """Given a client's name and MAX_SESSIONS, return its spec, read from its variables."""
    variable = {field: client_variable(name, field) for field in CLIENT_FIELDS}
    key = _key(settings, variable["key"], keys)  # first: a key used twice is reported at its second setting
    admin_key, generate_admin_key = _admin_key(settings, variable["admin_key"], keys)
    return ClientSpec(
        name=name,
        env_name=env_name(name),
        key=key,
        admin_key=admin_key,
        quota=_quota(settings, variable["quota"]),
        append_only=settings.boolean(variable["append_only"], True),
        max_age=settings.duration(variable["max_age"], DEFAULT_MAX_AGE, MINIMUM_MAX_AGE, MAXIMUM_MAX_AGE),
        auto_compact=_auto_compact(settings, variable["auto_compact"]),
        generate_admin_key=generate_admin_key,
        max_sessions=settings.integer(variable["max_sessions"], sessions, 1, MAXIMUM_SESSIONS),
    )


def _key(settings: Settings, variable: str, keys: dict[tuple[str, str], str]) -> PublicKey | None:
    """Given a key's variable, return its key (None if unset); record a bad key or one used before."""
    text = settings.string(variable)  # read first: the label then says whether it came from a file
    return _parsed_key(settings, settings.label(variable), text, keys)


def _admin_key(settings: Settings, variable: str, keys: dict[tuple[str, str], str]) -> tuple[PublicKey | None, bool]:
    """Given ADMIN_KEY's variable, return its key (None if unset or generate) and whether it says generate."""
    text = settings.string(variable)
    if text is not None and text.strip() == GENERATE:
        return None, True
    return _parsed_key(settings, settings.label(variable), text, keys), False


def _parsed_key(settings: Settings, label: str, text: str | None, keys: dict[tuple[str, str], str]) -> PublicKey | None:
    """Given a key setting's label and text, return its key (None if unset); record a bad key or one used before."""
    try:
        key = parse_public_key(text) if text is not None else None
    except KeyProblem as problem:
        settings.problem(label, str(problem))
        return None
    if key and keys.setdefault(key.identity, label) != label:
        settings.problem(label, f"is the same key as {keys[key.identity]}; each client and admin needs its own key")
    return key


def _auto_compact(settings: Settings, variable: str) -> str:
    """Given AUTO_COMPACT's variable, return admin (the default) or off; YAML reads an unquoted off as False."""
    if settings.string(variable) == "False":
        return "off"
    return settings.choice(variable, "admin", AUTO_COMPACT)


def _quota(settings: Settings, variable: str) -> int | None:
    """Given a quota's variable, return bytes (None if unset); record a malformed, too small or too large size.

    borg serve --storage-quota refuses anything under 10M.
    """
    return settings.size(variable, None, MINIMUM_QUOTA, MAXIMUM_QUOTA)
