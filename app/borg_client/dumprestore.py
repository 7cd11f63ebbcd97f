"""Getting a dump back: `borg extract --stdout` streamed into psql, mariadb or sqlite3 in a running container.

The target is a container carrying the borg-appliance.dump label (the original, or another one
with --into): its label says which tool reads the dump and its environment holds the credentials,
as for the dump itself (borg_client.dumps). A target database that already holds tables is refused
unless --force; the dumps drop each object before creating it, so a forced restore replaces them.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import quote, unquote

from borg_client import borg, container_exec, dumps
from borg_client.borgcall import call_borg, explain, stream_borg
from borg_client.config import ClientConfig
from borg_client.dumps import Source

logger = logging.getLogger(__name__)

SQLITE_RESTORE = 'rm -f "$1.restoring" && sqlite3 -bail "$1.restoring" && mv "$1.restoring" "$1"'
POSTGRES_TABLES = (
    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN "
    "('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg_toast%'"
)
EXIT_WAIT = 10  # seconds an exec gets to be seen finished after its output ended


class RestoreFailed(Exception):
    """The dump cannot be restored as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Stored:
    """A dump in an archive: its path, the database it holds, its size."""

    path: str
    database: str
    size: int


def stored(config: ClientConfig, archive: str, container: str) -> list[Stored]:
    """Return the dumps of container in archive; raise RestoreFailed if borg cannot list them."""
    directory = f"{dumps.DUMPS}/{quote(container, safe='')}"
    call = call_borg(config, borg.list_paths_argv(archive, directory), capture_json=True)
    if call.outcome.status == "failure":  # a warning: nothing under the path
        raise RestoreFailed(explain(call, f"borg list of {archive} failed"))
    found = []
    for line in call.stdout.splitlines():
        entry = json.loads(line)
        if entry.get("type") == "-" and entry["path"].endswith(".sql"):
            name = unquote(entry["path"].rsplit("/", 1)[1].removesuffix(".sql"))
            found.append(Stored(entry["path"], name, entry.get("size", 0)))
    return found


def target_source(client, name: str) -> Source:
    """Return the running container name as a dump source (its label); raise RestoreFailed if it is not one."""
    try:
        container = client.containers.get(name)
    except Exception as error:  # docker.errors.NotFound and its kin
        raise RestoreFailed(f"container {name}: {error}") from None
    if container.status != "running":
        raise RestoreFailed(f"container {name} is {container.status}: start it to restore into it")
    if dumps.LABEL not in container.labels:
        raise RestoreFailed(f"container {name} has no {dumps.LABEL} label: the sidecar restores only into those")
    return dumps.parse(container.name, container.id, container.labels)


def literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def identifier(text: str, quote_character: str) -> str:
    return quote_character + text.replace(quote_character, quote_character * 2) + quote_character


def ask(api, source: Source, argv: list[str], environment: dict) -> str:
    """Run a short query in the target; return its output; raise RestoreFailed with the database's message."""
    code, out, error = container_exec.run_small(api, source.container_id, argv, environment)
    if code != 0:
        message = container_exec.masked(error.strip() or out.strip(), environment)
        raise RestoreFailed(f"container {source.container} (exit {code}): {message}")
    return out.strip()


def prepare_target(api, source: Source, database: str, environment: dict, force: bool) -> None:
    """Make sure database exists in the target (created if missing) and is empty unless force; raise RestoreFailed."""
    refuse = f"database {database} in container {source.container} is not empty; add --force to replace what it holds"
    if source.kind == "postgres":
        shell = dumps.client_argv("postgres", "shell")
        exists = f"SELECT count(*) FROM pg_database WHERE datname = {literal(database)}"
        if ask(api, source, [*shell, "-X", "-A", "-t", "-d", "postgres", "-c", exists], environment) == "0":
            logger.info("creating database %s in container %s", database, source.container)
            create = f"CREATE DATABASE {identifier(database, chr(34))}"
            ask(api, source, [*shell, "-X", "-q", "-d", "postgres", "-c", create], environment)
        elif not force and ask(api, source, [*shell, "-X", "-A", "-t", "-d", database, "-c", POSTGRES_TABLES],
                               environment) != "0":  # fmt: skip
            raise RestoreFailed(refuse)
    elif source.kind == "mariadb":
        shell = dumps.client_argv("mariadb", "shell")
        count = f"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = {literal(database)}"
        if not force and ask(api, source, [*shell, "-N", "-B", "-e", count], environment) != "0":
            raise RestoreFailed(refuse)
        create = f"CREATE DATABASE IF NOT EXISTS {identifier(database, '`')}"
        ask(api, source, [*shell, "-e", create], environment)
    elif source.kind == "sqlite" and not force:
        code, _out, _error = container_exec.run_small(api, source.container_id, ["test", "-s", source.path])
        if code == 0:
            raise RestoreFailed(f"{source.path} in container {source.container} is not empty; add --force to replace")


def restore_argv(source: Source, database: str) -> list[str]:
    """Given the target and a database, return the argv in the target that reads the dump on stdin."""
    if source.kind == "postgres":
        return [*dumps.client_argv("postgres", "shell"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database]
    if source.kind == "mariadb":
        return [*dumps.client_argv("mariadb", "shell"), database]
    if source.kind == "sqlite":
        return ["sh", "-c", SQLITE_RESTORE, "sh", source.path]
    if not source.restore_command:
        raise RestoreFailed(
            f"container {source.container} dumps with a command: set {dumps.RESTORE_COMMAND_LABEL} (a command that "
            "reads the dump on stdin) to restore it, or get the dump with `borg-client borg extract --stdout`"
        )
    return ["sh", "-c", source.restore_command]


def feed(api, source: Source, argv: list[str], environment: dict, produce) -> tuple[int, str]:
    """Run argv in the target with produce(write) writing its stdin; return its exit code and output tail."""
    from docker.utils.socket import frames_iter

    created = api.exec_create(source.container_id, argv, stdin=True, stdout=True, stderr=True, environment=environment)
    connection = api.exec_start(created["Id"], socket=True)
    raw = getattr(connection, "_sock", connection)
    tail: deque[str] = deque(maxlen=20)

    def read() -> None:
        for _stream, data in frames_iter(connection, tty=False):
            tail.extend(data.decode(errors="replace").splitlines())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        produce(raw.sendall)
    finally:
        raw.shutdown(socket.SHUT_WR)
    reader.join()
    # Close the HTTP response docker-py keeps on the socket, which closes the socket under it; closing only the
    # socket leaves the response to be closed at garbage collection, which then prints a traceback.
    getattr(connection, "_response", connection).close()
    deadline = time.monotonic() + EXIT_WAIT
    state = api.exec_inspect(created["Id"])
    while state["Running"] and time.monotonic() < deadline:
        time.sleep(0.1)
        state = api.exec_inspect(created["Id"])
    return state["ExitCode"], container_exec.masked("\n".join(tail), environment)


def restore_dump(config: ClientConfig, archive: str, container: str, database: str | None = None,
                 into: str | None = None, force: bool = False) -> int:  # fmt: skip
    """Restore container's dumps in archive (or only database) into the running container into (default: itself).

    Return 0 when every dump was restored, 2 if one failed; raise RestoreFailed if it cannot start.
    """
    if not container_exec.SOCKET.exists():
        raise RestoreFailed(f"restore-dump needs the Docker socket: mount {container_exec.SOCKET} into the sidecar")
    found = stored(config, archive, container)
    if not found:
        raise RestoreFailed(f"archive {archive} holds no dumps of container {container}")
    chosen = [entry for entry in found if database in (None, entry.database)]
    if not chosen:
        names = ", ".join(entry.database for entry in found)
        raise RestoreFailed(f"archive {archive} holds no dump of {database} from container {container}, only {names}")
    client = container_exec.docker_client()
    target = target_source(client, into or container)
    try:
        environment = dumps.login(client.api, target)
    except dumps.DumpFailed as error:
        raise RestoreFailed(str(error)) from None
    status = 0
    for entry in chosen:
        prepare_target(client.api, target, entry.database, environment, force)
        logger.info("restoring %s (%d bytes) from %s into container %s", entry.path, entry.size, archive,
                    target.container)  # fmt: skip
        calls: list = []

        def produce(write, entry=entry, calls=calls):
            calls.append(stream_borg(config, borg.extract_stdout_argv(archive, entry.path), write))

        code, output = feed(client.api, target, restore_argv(target, entry.database), environment, produce)
        if calls and calls[0].returncode != 0:
            logger.error("%s", explain(calls[0], f"borg extract of {entry.path} failed"))
            status = 2
        elif code != 0:
            logger.error("restoring %s into container %s failed (exit %d): %s", entry.database, target.container,
                         code, output.strip().splitlines()[-1] if output.strip() else "no output")  # fmt: skip
            status = 2
        else:
            logger.info("restored %s into container %s", entry.database, target.container)
    return status


def command_list_dumps(config: ClientConfig, archive: str) -> int:
    """Print the dumps in archive, one line each: container, database, bytes; return borg's exit code."""
    call = call_borg(config, borg.list_paths_argv(archive, dumps.DUMPS), capture_json=True)
    for line in call.stdout.splitlines():
        entry = json.loads(line)
        parts = entry["path"].split("/")
        if entry.get("type") == "-" and len(parts) == 3 and parts[2].endswith(".sql"):
            database = unquote(parts[2].removesuffix(".sql"))
            print(f"{unquote(parts[1])}\t{database}\t{entry.get('size', 0)} bytes\t{entry['path']}")
    return 0 if call.outcome.status == "warning" else call.returncode
