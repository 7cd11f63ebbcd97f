"""Read BORG_SERVER_CONFIG, the YAML file, into entries standing for the variables of the same settings.

Only the file's shape is checked here; what a value means is read by the same readers as the
environment's (borg_common.settings). Problems name the place in the file, e.g.
"BORG_SERVER_CONFIG (path) clients.web.quota".
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Any

import yaml

from borg_common.settings import Settings
from borg_common.values import cut
from borg_common.written import Written
from borg_server.config.names import CLIENT_FIELDS, SERVER_FIELDS, client_variable

SERVER_KEYS = f"allowed: {', '.join(SERVER_FIELDS)}, clients; each setting also as <setting>_file"
CLIENT_KEYS = f"allowed: {', '.join(CLIENT_FIELDS)}; each also as <setting>_file"
MAXIMUM_BYTES = 1_000_000  # a configuration of a thousand clients with their keys is about 600 kB


@dataclass(frozen=True)
class ConfigFile:
    """BORG_SERVER_CONFIG as read: how problems name it, its top-level fields and each client's fields.

    clients is None when the file gives no usable list of clients (it, or its clients, is not a mapping).
    """

    label: str
    fields: dict[Any, Any]
    clients: dict[str, dict[Any, Any]] | None


NO_FILE = ConfigFile("BORG_SERVER_CONFIG", {}, {})


def read(settings: Settings, path: str) -> ConfigFile:
    """Given BORG_SERVER_CONFIG's path ("" if unset), return the file as read; record what makes it unusable."""
    if not path:
        return NO_FILE
    label = f"BORG_SERVER_CONFIG ({cut(path)})"
    unusable = ConfigFile(label, {}, None)
    try:
        document = yaml.safe_load(_text(path)) or {}
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        settings.problem("BORG_SERVER_CONFIG", f"cannot read {cut(path)}: {reason}")
        return unusable
    except yaml.YAMLError as error:  # its message would quote the file: only the place and the reason
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        reason = getattr(error, "problem", None) or "its syntax is wrong"
        settings.problem(label, f"is not valid YAML: {where}{reason}")
        return unusable
    except RecursionError:  # the parser recurses once per level: a file of a million "[" is no configuration
        settings.problem(label, "is not valid YAML: it is nested too deeply")
        return unusable
    if not isinstance(document, dict):
        settings.problem(label, f"must be a mapping of settings, not a {type(document).__name__}; {SERVER_KEYS}")
        return unusable
    fields = {key: value for key, value in document.items() if key != "clients"}
    clients = document.get("clients") or {}
    if not isinstance(clients, dict):
        settings.problem(f"{label} clients", "must be a mapping of client names to their settings")
        return ConfigFile(label, fields, None)
    for name, value in clients.items():
        if not isinstance(value, dict | None):  # read as a client with no settings
            settings.problem(f"{label} clients.{cut(str(name))}", f"must be a mapping of settings; {CLIENT_KEYS}")
    usable = {str(name): value if isinstance(value, dict) else {} for name, value in clients.items()}
    return ConfigFile(label, fields, usable)


def _text(path: str) -> str:
    """Given the file's path, return its text; raise OSError if it is not a regular file or too large."""
    if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or device would block or never end
        raise OSError(0, "not a regular file")
    with open(path, "rb") as file:
        data = file.read(MAXIMUM_BYTES + 1)
    if len(data) > MAXIMUM_BYTES:
        raise OSError(0, f"larger than {MAXIMUM_BYTES} bytes")
    return data.decode("utf-8")


def entries(settings: Settings, file: ConfigFile, clients: list[str]) -> dict[str, Written]:
    """Given the file and the clients to take from it, return its settings by the variable each stands for.

    Record every field that is unknown or not a value, in every client.
    """
    found = _entries(settings, f"{file.label} ", file.fields, SERVER_FIELDS, SERVER_KEYS)
    for name, fields in (file.clients or {}).items():
        variables = {field: client_variable(name, field) for field in CLIENT_FIELDS}
        written = _entries(settings, f"{file.label} clients.{cut(name)}.", fields, variables, CLIENT_KEYS)
        found |= written if name in clients else {}
    return found


def _entries(settings: Settings, where: str, fields: dict, variables: dict[str, str], allowed: str) -> dict:
    """Given fields (each as field or field_file) and each field's variable, return {variable: Written}."""
    given: dict[str, dict[str, str]] = {}  # field -> {"value": text, "file": text}
    for key, value in fields.items():
        field = str(key).removesuffix("_file")
        if field not in variables:
            settings.problem(f"{where}{cut(str(key))}", f"unknown setting; {allowed}")
        elif isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, list | dict) for v in value)):
            settings.problem(f"{where}{cut(str(key))}", "must be a value or a list of values")
        elif value is not None:
            text = " ".join(map(str, value)) if isinstance(value, list) else str(value)
            given.setdefault(field, {})["value" if str(key) == field else "file"] = text
    return {variables[field]: Written(field, f"{field}_file", where=where, **parts) for field, parts in given.items()}
