"""Which dumps a run makes: containers found by their labels, their databases, the command and credentials of each.

A container labelled `borg-appliance.dump` (postgres, mariadb/mysql, sqlite:/path, command) is dumped
with the Docker exec API, inside that container, so the dump tool matches the server. Credentials
come from that container's environment (POSTGRES_PASSWORD, MARIADB_ROOT_PASSWORD, … or their _FILE,
read with `cat` in the container) and reach the dump only as the exec's environment: never logged,
never written here. How the dumps are streamed into borg create is dump_streams.py.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from urllib.parse import quote

from borg_client import container_exec
from borg_client.container_exec import container_environment, masked, run_small
from borg_client.failures import Failure

logger = logging.getLogger(__name__)

LABEL = "borg-appliance.dump"
COMMAND_LABEL = "borg-appliance.dump.command"
RESTORE_COMMAND_LABEL = "borg-appliance.dump.restore-command"
DATABASES_LABEL = "borg-appliance.dump.databases"
PROJECT_LABELS = ("com.docker.compose.project", "com.docker.stack.namespace")  # set by Compose and by Swarm
DUMPS = "dumps"  # the directory the dumps have in an archive
COMMAND_DUMP = "command"  # the database name of a =command dump
SOURCE_FILE = "source.json"  # next to a container's dumps: its kind, image and user (what a drill restores into)
SYSTEM_DATABASES = {"mariadb": {"information_schema", "performance_schema", "sys", "mysql"}}
POSTGRES_DATABASES = "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1"
# mariadb images have mariadb-dump, mysql images mysqldump: whichever the container has; over TCP when the
# exec's environment names a host in BORG_DUMP_HOST (the socket otherwise: the client's default)
MARIADB_TOOL = (
    'exec "$(command -v {0} || command -v {1})" ${{BORG_DUMP_HOST:+--protocol=TCP --host=$BORG_DUMP_HOST}} "$@"'
)
TCP_HOST = "127.0.0.1"  # when the database refuses its local socket: TCP, with the password
TCP_VARIABLE = {"postgres": "PGHOST", "mariadb": "BORG_DUMP_HOST"}  # the exec's variable that says TCP_HOST


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
    image: str = ""  # the image the container runs, as it was asked for (postgres:17)
    image_id: str = ""  # and its id (sha256:…)


@dataclass(frozen=True)
class Dump:
    """One stream: the command run in the container and where it lands in the archive."""

    container: str
    container_id: str
    kind: str
    database: str
    argv: tuple[str, ...]
    environment: dict = field(default_factory=dict, repr=False, compare=False)  # credentials: never shown
    image: str = ""
    image_id: str = ""

    @property
    def path(self) -> str:
        """The dump's path in the archive: dumps/<container>/<database>.sql."""
        return archive_path(self.container, self.database)

    def source(self) -> dict[str, str]:
        """Return what the archive records of the dump's container (SOURCE_FILE): no credential, only its user."""
        user = self.environment.get("PGUSER", "") if self.kind == "postgres" else ""
        return {"container": self.container, "kind": self.kind, "image": self.image, "image_id": self.image_id,
                "user": user}  # fmt: skip


def archive_path(container: str, database: str) -> str:
    """Given a container and a database name, return the dump's path in an archive (names made safe for a path)."""
    return f"{DUMPS}/{quote(container, safe='')}/{quote(database, safe='')}.sql"


def source_path(container: str) -> str:
    """Given a container, return the path in an archive of what it records of it: dumps/<container>/source.json."""
    return f"{DUMPS}/{quote(container, safe='')}/{SOURCE_FILE}"


def image_of(container) -> tuple[str, str]:
    """Given a Docker container object, return its image as it was asked for and the image's id."""
    attrs = getattr(container, "attrs", None) or {}  # a Docker container object; {} when it says nothing
    return (attrs.get("Config") or {}).get("Image", ""), attrs.get("Image", "")


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


def labelled(client, scope: str | None, project_only: bool = True) -> list[Source]:
    """Return the running containers to dump (label borg-appliance.dump, and scope if given), by name; project_only:
    only those of the sidecar's own compose project or Swarm stack (none: those in none), never another's."""
    from borg_client import quiesce

    found = quiesce.running_with_label(client, [LABEL, scope] if scope else LABEL)
    if project_only:
        own = project_of(container_exec.own_labels(client))
        others = [container.name for container in found if project_of(container.labels or {}) != own]
        if others:
            logger.info("not dumping container(s) %s: another compose project or stack than this sidecar's (%s); "
                        "BACKUP_DUMP_SCOPE=host dumps them too", ", ".join(sorted(others)), own or "none")  # fmt: skip
        found = [container for container in found if project_of(container.labels or {}) == own]
    return [described(container) for container in found]


def described(container) -> Source:
    """Given a Docker container object, return it as a source to dump (parse), with its image."""
    image, image_id = image_of(container)
    return dataclasses.replace(parse(container.name, container.id, container.labels), image=image, image_id=image_id)


def project_of(labels: dict[str, str]) -> str | None:
    """Given a container's labels, return its compose project or Swarm stack as `key=value`, or None."""
    return next((f"{key}={labels[key]}" for key in PROJECT_LABELS if labels.get(key)), None)


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
    environment = container_environment(api, source.container_id)
    if source.kind == "postgres":
        user = secret(api, source, environment, "POSTGRES_USER") or "postgres"
        password = secret(api, source, environment, "POSTGRES_PASSWORD")
        return {"PGUSER": user, **({"PGPASSWORD": password} if password else {})}
    password = secret(api, source, environment, "MARIADB_ROOT_PASSWORD", "MYSQL_ROOT_PASSWORD")
    return {"MYSQL_PWD": password} if password else {}


def probe_argv(source: Source) -> list[str]:
    """Given a postgres or mariadb source, return the argv of the smallest query that proves a connection."""
    if source.kind == "postgres":
        database = source.databases[0] if source.databases else "postgres"
        return [*client_argv("postgres", "shell"), "-X", "-A", "-t", "-d", database, "-c", "SELECT 1"]
    return [*client_argv("mariadb", "shell"), "-N", "-B", "-e", "SELECT 1"]


def connection(api, source: Source, environment: dict[str, str]) -> dict[str, str]:
    """Given a postgres or mariadb source and its credentials, return the environment its tools connect with.

    First the database's local socket (the official images trust it; a socket that asks gets the
    password), then TCP to 127.0.0.1 with the password. Raise DumpFailed with both answers if neither connects.
    """
    tcp = {**environment, TCP_VARIABLE[source.kind]: TCP_HOST}
    answers = []
    for attempt in (environment, tcp):
        code, out, error = run_small(api, source.container_id, probe_argv(source), attempt)
        if code == 0:
            if answers:
                logger.info("container %s: %s does not let the dump in over its socket (%s); connecting over TCP %s "
                            "with the password", source.container, source.kind, answers[0], TCP_HOST)  # fmt: skip
            return attempt
        lines = masked(error.strip() or out.strip(), attempt).splitlines()
        answers.append(f"{lines[-1] if lines else 'no message'} (exit {code})")
    raise DumpFailed(f"container {source.container}: {source.kind} accepts no connection, neither over its socket: "
                     f"{answers[0]}; nor over TCP {TCP_HOST}: {answers[1]}; check that it is up and that the password "
                     "in its environment is the database's")  # fmt: skip


def login(api, source: Source) -> dict[str, str]:
    """Return the environment a dump (or restore) in source runs with: its credentials and how it connects.

    Raise DumpFailed if a credential cannot be read or the database accepts no connection.
    """
    environment = credentials(api, source)
    return connection(api, source, environment) if source.kind in TCP_VARIABLE else environment


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


def plan(client, scope: str | None, project_only: bool = True) -> list[Dump]:
    """Return every dump of this run: each labelled container's databases, with its credentials.

    Raise DumpFailed if a label is wrong, a credential cannot be read, a database accepts no connection or cannot
    be listed.
    """
    dumps = []
    for source in labelled(client, scope, project_only):
        environment = login(client.api, source)
        names = databases(client.api, source, environment)
        logger.info("container %s: dumping %s (%s)", source.container, ", ".join(names) or "nothing", source.kind)
        dumps += [Dump(source.container, source.container_id, source.kind, database, tuple(dump_argv(source, database)),
                       environment, source.image, source.image_id) for database in names]  # fmt: skip
    return dumps


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

    if not container_exec.SOCKET.exists():
        return None, []
    client = container_exec.docker_client()
    dumps = plan(client, config.dump_label, config.dump_scope == "project")
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
