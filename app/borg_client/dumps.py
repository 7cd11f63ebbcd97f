"""Database dumps: found by their containers' labels, run in those containers, streamed into borg create.

A container labelled `borg-appliance.dump` (postgres, mariadb/mysql, sqlite:/path, command) is dumped
with the Docker exec API, inside that container, so the dump tool matches the server. Credentials
come from that container's environment (POSTGRES_PASSWORD, MARIADB_ROOT_PASSWORD, … or their _FILE,
read with `cat` in the container) and reach the dump only as the exec's environment: never logged,
never written here. Each dump is a named pipe under dumps/<container>/<database>.sql that borg
create reads (--read-special) while a thread copies the exec's output into it, a chunk at a time,
so the sidecar's memory does not grow with the dump.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from borg_client.config import DOCKER_SOCKET
from borg_client.failures import Failure

logger = logging.getLogger(__name__)

SOCKET = Path(DOCKER_SOCKET)  # without it mounted, no dumps
LABEL = "borg-appliance.dump"
COMMAND_LABEL = "borg-appliance.dump.command"
RESTORE_COMMAND_LABEL = "borg-appliance.dump.restore-command"
DATABASES_LABEL = "borg-appliance.dump.databases"
DUMPS = "dumps"  # the directory the dumps have in an archive
COMMAND_DUMP = "command"  # the database name of a =command dump
IDLE_TIMEOUT = 1800  # seconds a dump may print nothing (a lock it waits for) before the sidecar gives up
ERROR_LIMIT = 4000  # characters of a dump's stderr kept for the report
SMALL_LIMIT = 1 << 20  # bytes kept of a short command's output (a database list, a password file)
OPEN_POLL = 0.1  # seconds between tries to open a pipe borg has not opened yet
SYSTEM_DATABASES = {"mariadb": {"information_schema", "performance_schema", "sys", "mysql"}}
POSTGRES_DATABASES = "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1"
# mariadb images have mariadb-dump, mysql images mysqldump: whichever the container has
MARIADB_TOOL = 'exec "$(command -v {0} || command -v {1})" "$@"'


class DumpFailed(Failure):
    """A dump cannot be made (a label, a credential, the database said no); the message names the container."""


@dataclass(frozen=True)
class Source:
    """A container to dump, as its labels describe it."""

    container: str  # its name
    container_id: str
    kind: str  # postgres | mariadb | sqlite | command
    databases: tuple[str, ...] = ()  # the label's list; empty: every database
    path: str | None = None  # sqlite: the file in the container
    command: str | None = None  # command: the shell command whose stdout is the dump
    restore_command: str | None = None  # command: the shell command that reads a dump on stdin


@dataclass(frozen=True)
class Dump:
    """One stream: the command run in the container and where it lands in the archive."""

    container: str
    container_id: str
    kind: str
    database: str
    argv: tuple[str, ...]
    environment: dict = field(default_factory=dict, repr=False, compare=False)  # credentials: never shown

    @property
    def path(self) -> str:
        """The dump's path in the archive: dumps/<container>/<database>.sql."""
        return archive_path(self.container, self.database)


@dataclass
class Result:
    """What one dump did: bytes streamed, seconds, the exec's exit code and its stderr tail."""

    dump: Dump
    bytes: int = 0
    seconds: float = 0.0
    exit_code: int | None = None
    error: str = ""  # the tool's stderr (or why the stream stopped), credentials masked
    started: bool = False  # borg opened the pipe

    def problem(self) -> str | None:
        """Return why this dump failed (for the report), or None if it is good."""
        where = f"dump of {self.dump.database} in container {self.dump.container}"
        detail = f": {self.error.strip().splitlines()[-1]}" if self.error.strip() else ""
        if not self.started:
            return f"{where} was never read by borg create{detail}"
        if self.exit_code not in (0, None) or (self.exit_code is None and self.error):
            code = f" (exit {self.exit_code})" if self.exit_code is not None else ""
            return f"{where} failed{code}{detail}"
        if self.bytes == 0:
            return f"{where} came out empty{detail}"
        return None

    def to_dict(self) -> dict:
        return {
            "container": self.dump.container,
            "kind": self.dump.kind,
            "database": self.dump.database,
            "path": self.dump.path,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "status": "failure" if self.problem() else "success",
        }


def archive_path(container: str, database: str) -> str:
    """Given a container and a database name, return the dump's path in an archive (names made safe for a path)."""
    return f"{DUMPS}/{quote(container, safe='')}/{quote(database, safe='')}.sql"


def parse(name: str, container_id: str, labels: dict[str, str]) -> Source:
    """Given a container's name, id and labels, return what to dump; raise DumpFailed if the labels are wrong."""
    value = labels.get(LABEL, "").strip()
    databases = tuple(part.strip() for part in labels.get(DATABASES_LABEL, "").split(",") if part.strip())
    where = f"container {name}: label {LABEL}={value!r}"
    if value in ("postgres", "postgresql"):
        return Source(name, container_id, "postgres", databases)
    if value in ("mariadb", "mysql"):
        return Source(name, container_id, "mariadb", databases)
    if value.startswith("sqlite:"):
        path = value.removeprefix("sqlite:")
        if not path.startswith("/"):
            raise DumpFailed(f"{where}: the sqlite file must be an absolute path in the container", "settings")
        return Source(name, container_id, "sqlite", (), path=path)
    if value == "command":
        command = labels.get(COMMAND_LABEL, "").strip()
        if not command:
            raise DumpFailed(f"{where} needs {COMMAND_LABEL}: a command whose output is the dump", "settings")
        restore = labels.get(RESTORE_COMMAND_LABEL, "").strip() or None
        return Source(name, container_id, "command", (), command=command, restore_command=restore)
    raise DumpFailed(f"{where} is not postgres, mariadb, mysql, sqlite:/path or command", "settings")


def docker_client():
    """Return a Docker client for the mounted socket that waits long enough for a quiet dump."""
    import docker

    return docker.from_env(timeout=IDLE_TIMEOUT)


def labelled(client, scope: str | None) -> list[Source]:
    """Return the running containers to dump (label borg-appliance.dump, and scope if given), by name."""
    from borg_client import quiesce

    found = quiesce.running_with_label(client, [LABEL, scope] if scope else LABEL)
    return [parse(container.name, container.id, container.labels) for container in found]


def run_small(api, container_id: str, argv: list[str], environment: dict | None = None) -> tuple[int, str, str]:
    """Run a short command in a container; return its exit code, stdout and stderr (each cut at 1 MiB)."""
    created = api.exec_create(container_id, argv, stdout=True, stderr=True, environment=environment or {})
    out, err = bytearray(), bytearray()
    for stdout, stderr in api.exec_start(created["Id"], stream=True, demux=True):
        if stdout and len(out) < SMALL_LIMIT:
            out += stdout
        if stderr and len(err) < SMALL_LIMIT:
            err += stderr
    code = api.exec_inspect(created["Id"])["ExitCode"]
    return code, out.decode(errors="replace"), err.decode(errors="replace")


def container_environment(api, source: Source) -> dict[str, str]:
    """Return the container's environment (Config.Env) as a mapping."""
    pairs = api.inspect_container(source.container_id)["Config"].get("Env") or []
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


def secret(api, source: Source, environment: dict[str, str], *names: str) -> str | None:
    """Return the first of names the container sets, or the content of its _FILE (read in the container).

    Raise DumpFailed if the _FILE cannot be read there.
    """
    for name in names:
        if environment.get(name):
            return environment[name]
        file = environment.get(f"{name}_FILE")
        if file:
            code, content, error = run_small(api, source.container_id, ["cat", file])
            if code != 0:
                raise DumpFailed(f"container {source.container}: cannot read {name}_FILE {file}: {error.strip()}")
            return content.rstrip("\r\n")
    return None


def credentials(api, source: Source) -> dict[str, str]:
    """Return the environment a dump (or restore) in source needs: the database's user and password."""
    if source.kind not in ("postgres", "mariadb"):
        return {}
    environment = container_environment(api, source)
    if source.kind == "postgres":
        user = secret(api, source, environment, "POSTGRES_USER") or "postgres"
        password = secret(api, source, environment, "POSTGRES_PASSWORD")
        return {"PGUSER": user, "PGHOST": "127.0.0.1", **({"PGPASSWORD": password} if password else {})}
    password = secret(api, source, environment, "MARIADB_ROOT_PASSWORD", "MYSQL_ROOT_PASSWORD")
    return {"MYSQL_PWD": password} if password else {}


def masked(text: str, environment: dict[str, str]) -> str:
    """Given a tool's message and the credentials it ran with, return the message with every password masked."""
    for key, value in environment.items():
        if "PASSWORD" in key or key.endswith("PWD"):
            text = text.replace(value, "***") if value else text
    return text


def client_argv(kind: str, tool: str) -> list[str]:
    """Given a database kind and which tool (dump, shell), return the argv prefix that runs it in the container."""
    if kind == "postgres":
        return [{"dump": "pg_dump", "shell": "psql"}[tool]]
    names = {"dump": ("mariadb-dump", "mysqldump"), "shell": ("mariadb", "mysql")}[tool]
    return ["sh", "-c", MARIADB_TOOL.format(*names), "sh", "--user=root"]


def list_argv(kind: str) -> list[str]:
    """Given postgres or mariadb, return the argv that prints one database name a line."""
    if kind == "postgres":
        return [*client_argv(kind, "shell"), "-d", "postgres", "-X", "-A", "-t", "-c", POSTGRES_DATABASES]
    return [*client_argv(kind, "shell"), "-N", "-B", "-e", "SHOW DATABASES"]


def dump_argv(source: Source, database: str) -> list[str]:
    """Given a source and one of its databases, return the argv that prints its dump (plain SQL).

    postgres and mariadb dumps drop each object before creating it, so a forced restore replaces them.
    """
    if source.kind == "postgres":
        return [*client_argv("postgres", "dump"), "--clean", "--if-exists", "--no-password", "-d", database]
    if source.kind == "mariadb":
        options = ["--single-transaction", "--routines", "--events", "--triggers"]
        return [*client_argv("mariadb", "dump"), *options, database]
    if source.kind == "sqlite":
        return ["sqlite3", "-readonly", source.path, ".dump"]
    return ["sh", "-c", source.command]


def databases(api, source: Source, environment: dict[str, str]) -> tuple[str, ...]:
    """Return the databases to dump: the label's list, else every one the server has (not its own schemas).

    Raise DumpFailed with the database's message if it cannot be asked.
    """
    if source.kind == "sqlite":
        return (os.path.basename(source.path),)
    if source.kind == "command":
        return (COMMAND_DUMP,)
    if source.databases:
        return source.databases
    code, out, error = run_small(api, source.container_id, list_argv(source.kind), environment)
    if code != 0:
        message = masked(error.strip() or out.strip(), environment)
        raise DumpFailed(f"container {source.container}: cannot list the databases (exit {code}): {message}")
    names = [line.strip() for line in out.splitlines() if line.strip()]
    return tuple(name for name in names if name not in SYSTEM_DATABASES.get(source.kind, ()))


def plan(client, scope: str | None) -> list[Dump]:
    """Return every dump of this run: each labelled container's databases, with its credentials.

    Raise DumpFailed if a label is wrong, a credential cannot be read or a database cannot be listed.
    """
    dumps = []
    for source in labelled(client, scope):
        environment = credentials(client.api, source)
        names = databases(client.api, source, environment)
        logger.info("container %s: dumping %s (%s)", source.container, ", ".join(names) or "nothing", source.kind)
        dumps += [Dump(source.container, source.container_id, source.kind, database, tuple(dump_argv(source, database)),
                       environment) for database in names]  # fmt: skip
    return dumps


def special_files(sources: list[str]) -> list[str]:
    """Return the files under sources borg would read as data with --read-special: fifos, devices, links to them.

    A fifo in a volume would make borg wait forever, a device read it whole; they are excluded.
    """
    found = []
    for source in sources:
        for directory, names, files in os.walk(source):
            for name in names + files:
                path = os.path.join(directory, name)
                try:
                    mode = os.lstat(path).st_mode
                    if stat.S_ISLNK(mode):
                        mode = os.stat(path).st_mode
                except OSError:
                    continue
                if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                    found.append(path)
    return found


def open_for_writing(pipe: Path, cancelled: threading.Event) -> int | None:
    """Open the pipe for writing once borg opens it for reading; return the descriptor, None if cancelled."""
    while not cancelled.is_set():
        try:
            descriptor = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno != errno.ENXIO:  # ENXIO: nobody reads it yet
                raise
            time.sleep(OPEN_POLL)
            continue
        os.set_blocking(descriptor, True)
        return descriptor
    return None


def pump(client, dump: Dump, pipe: Path, result: Result, cancelled: threading.Event) -> None:
    """Once borg reads the pipe, run the dump in its container and copy its output into the pipe, chunk by chunk.

    Records bytes, seconds, the exit code and the stderr tail in result; never raises.
    """
    try:
        descriptor = open_for_writing(pipe, cancelled)
    except OSError as error:
        result.error = f"cannot open the pipe: {error}"
        return
    if descriptor is None:
        return
    result.started, began = True, time.monotonic()
    errors: deque[bytes] = deque()
    kept = 0
    try:
        logger.info("dumping %s of container %s into %s", dump.database, dump.container, dump.path)
        api = client.api
        created = api.exec_create(dump.container_id, list(dump.argv), stdout=True, stderr=True,
                                  environment=dump.environment)  # fmt: skip
        for stdout, stderr in api.exec_start(created["Id"], stream=True, demux=True):
            if stdout:
                view = memoryview(stdout)
                while view:
                    view = view[os.write(descriptor, view) :]
                result.bytes += len(stdout)
            if stderr:
                errors.append(stderr)
                kept += len(stderr)
                while kept > ERROR_LIMIT and len(errors) > 1:
                    kept -= len(errors.popleft())
        result.exit_code = api.exec_inspect(created["Id"])["ExitCode"]
    except BrokenPipeError:
        errors.append(b"borg create stopped reading the dump")
    except Exception as error:  # a Docker API error, a socket timeout: the dump is incomplete
        errors.append(f"{type(error).__name__}: {error}".encode())
    finally:
        os.close(descriptor)
        result.seconds = time.monotonic() - began
        result.error = masked(b"".join(errors).decode(errors="replace")[-ERROR_LIMIT:], dump.environment)
    if result.exit_code == 0 and not result.error.strip():
        logger.info("dumped %s of container %s: %d bytes in %.1f s", dump.database, dump.container,
                    result.bytes, result.seconds)  # fmt: skip


@contextmanager
def streaming(client, dumps: list[Dump]) -> Iterator[tuple[Path | None, list[Result]]]:
    """While inside, serve each dump through its named pipe; yield the directory borg create runs in and the results.

    The directory holds dumps/<container>/<database>.sql (pipes only: no dump touches the disk);
    on the way out every pump still waiting for borg is cancelled, then the directory is removed.
    Without dumps, yield (None, []).
    """
    if not dumps:
        yield None, []
        return
    root = Path(tempfile.mkdtemp(prefix="borg-client-dumps-"))
    cancelled, threads, results = threading.Event(), [], []
    try:
        for dump in dumps:
            pipe = root / dump.path
            pipe.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.mkfifo(pipe, 0o600)
            result = Result(dump)
            thread = threading.Thread(target=pump, args=(client, dump, pipe, result, cancelled), daemon=True)
            thread.start()
            threads.append(thread)
            results.append(result)
        yield root, results
    finally:
        cancelled.set()
        for thread in threads:
            thread.join()
        shutil.rmtree(root, ignore_errors=True)


def problems(results: list[Result]) -> list[str]:
    """Return why dumps failed, one message each (empty: every dump is good)."""
    return [problem for problem in (result.problem() for result in results) if problem]


def failed_name(archive: str) -> str:
    """Given the archive of a run whose dump failed, return the name it is renamed to.

    borg treats `….checkpoint` as an incomplete archive: `borg list` hides it, `borg prune` deletes
    it once a later archive exists, and it never counts as a backup.
    """
    return f"{archive}.checkpoint"


def prepare(config) -> tuple[object | None, list[Dump]]:
    """Given the configuration, return a Docker client and this run's dumps; (None, []) without the Docker socket.

    Raise DumpFailed if a label or credential is wrong, a database cannot be listed, or a container
    to dump is also one BACKUP_STOP_LABEL stops (it could not be dumped while stopped).
    """
    from borg_client import quiesce

    if not SOCKET.exists():
        return None, []
    client = docker_client()
    dumps = plan(client, config.dump_label)
    if dumps and config.stop_label:
        stopped = {container.id for container in quiesce.running_with_label(client, config.stop_label)}
        both = sorted({dump.container for dump in dumps if dump.container_id in stopped})
        if both:
            raise DumpFailed(
                f"container(s) {', '.join(both)} carry both {LABEL} and BACKUP_STOP_LABEL's label: a stopped "
                "database cannot be dumped; remove one of the labels",
                "settings",
            )
    return client, dumps
