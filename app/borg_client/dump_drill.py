"""Database drills: each dump in an archive restored into a throw-away container of its database's image.

The archive says which image the database ran (dumps/<container>/source.json, written with the dumps).
The drill container runs that image on no network, its data directory on a tmpfs of at most SPACE,
with a password made for the drill, labelled with the client and repository so that what a killed
drill left behind is removed by the next one. The dump streams from `borg extract --stdout` into
psql or mariadb as a live restore does (dumprestore), then a sanity query counts every table's rows.
The container and its data go afterwards, always: after a failure, a time limit or an interrupt too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import unquote

from borg_client import borg, container_exec, dumprestore, dumps
from borg_client.borgcall import Control, call_borg, explain, stream_borg
from borg_client.config import ClientConfig
from borg_client.dumps import Source
from borg_common.values import human_duration

logger = logging.getLogger(__name__)

LABEL = "borg-appliance.drill"  # on every drill container: the client's name
REPOSITORY_LABEL = "borg-appliance.drill.repository"  # its repository's digest (two sidecars may share a name)
DRILLED = ("postgres", "mariadb")  # the kinds a drill restores; sqlite and command dumps are not drilled
DATA_DIRECTORIES = {"postgres": "/var/lib/postgresql/data", "mariadb": "/var/lib/mysql"}  # unless the image says
SPACE = "8g"  # the tmpfs of a drill database's data: a restore that needs more fails, the host's disk stays
READY_TIMEOUT = 180  # seconds a drill database gets to accept connections
RESTORE_TIMEOUT = 3600  # seconds one dump's restore may take before the drill stops it
POLL = 0.5  # seconds between two questions to a drill database that is starting
WATCH = 1.0  # seconds between two looks at a restore's time limit and at an interrupt
TABLES_COUNTED = 1000  # tables whose rows the sanity query counts (the first, by name)
TABLES_SHOWN = 5  # tables named in the message, with their rows


@dataclass(frozen=True)
class DumpDrill:
    """One dump's drill: restored into which image, whether it worked, what a person reads, how long it took."""

    dump: str  # the dump's path in the archive
    image: str  # the database image it was restored into
    ok: bool
    message: str  # one sentence for a person: what was restored, tables/rows, or why it failed
    seconds: float  # how long the restore took


@dataclass(frozen=True)
class Entry:
    """A dump in an archive: its path, container, database, and what the archive says of its container."""

    path: str
    container: str
    database: str
    source: dict | None  # source.json; None: an archive made before the dumps recorded it


class DrillStopped(Exception):
    """A drill step cannot go on; the message says why, for the dump's result."""


def entries(lines: str) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Given `borg list --json-lines ARCHIVE dumps`, return the dumps (path, container, database) and source files."""
    found, sources = [], []
    for line in lines.splitlines():
        entry = json.loads(line)
        parts = entry["path"].split("/")
        if entry.get("type") != "-" or len(parts) != 3:
            continue
        if parts[2].endswith(".sql"):
            found.append((entry["path"], unquote(parts[1]), unquote(parts[2].removesuffix(".sql"))))
        elif parts[2] == dumps.SOURCE_FILE:
            sources.append(entry["path"])
    return found, sources


def listed(config: ClientConfig, archive: str) -> list[Entry]:
    """Return the dumps in archive with what it records of their containers; raise DrillStopped if borg cannot."""
    call = call_borg(config, borg.list_paths_argv(archive, dumps.DUMPS), capture_json=True)
    if call.outcome.status == "failure":  # a warning: no dumps in the archive
        raise DrillStopped(explain(call, f"borg list of {archive} failed"))
    found, files = entries(call.stdout)
    recorded = sources(config, archive, files)
    return [Entry(path, container, database, recorded.get(container)) for path, container, database in found]


def sources(config: ClientConfig, archive: str, files: list[str]) -> dict[str, dict]:
    """Return what the source files in archive say, by container; one borg extract for all (each is one JSON line).

    Raise DrillStopped if borg cannot read them.
    """
    if not files:
        return {}
    read = call_borg(config, borg.command("extract", "--stdout", f"::{archive}", *files), capture_json=True)
    if read.outcome.status == "failure":
        raise DrillStopped(explain(read, f"borg extract of {', '.join(files)} failed"))
    return described(read.stdout)


def described(text: str) -> dict[str, dict]:
    """Given the source files' lines, return each by its container; a line that is not one is left out (logged)."""
    found = {}
    for line in text.splitlines():
        try:
            source = json.loads(line)
            found[source["container"]] = source
        except (ValueError, KeyError, TypeError):
            logger.warning("drill: a source file in the archive is not what the sidecar writes: %.200s", line)
    return found


def labels(config: ClientConfig) -> dict[str, str]:
    """Return the labels of this client's drill containers (how the next drill finds what a killed one left)."""
    return {LABEL: config.client, REPOSITORY_LABEL: repository_id(config.repository)}


def repository_id(repository: str) -> str:
    """Given the repository URL, return what names it on a drill container (a digest: the URL stays private)."""
    return hashlib.sha256(repository.encode()).hexdigest()[:16]


def data_directories(kind: str, image_config: dict) -> list[str]:
    """Given a kind and the image's Config, return the directories a drill puts on tmpfs: its data directory
    (PGDATA if the image sets it) and every VOLUME it declares (no anonymous volume is made), none inside another.
    """
    environment = dict(pair.split("=", 1) for pair in image_config.get("Env") or [] if "=" in pair)
    data = environment.get("PGDATA") if kind == "postgres" else None
    wanted = sorted({data or DATA_DIRECTORIES[kind], *(image_config.get("Volumes") or {})})
    return [path for path in wanted if not any(path.startswith(other.rstrip("/") + "/") for other in wanted)]


def credentials(kind: str, user: str, password: str) -> tuple[dict[str, str], dict[str, str]]:
    """Given a kind, the live database's user and the drill's password, return the drill container's environment
    and the one its tools connect with (over TCP to 127.0.0.1: an image's first, temporary server listens on
    its socket only, so an answer over TCP is the database that stays)."""
    if kind == "postgres":
        started = {"POSTGRES_USER": user or "postgres", "POSTGRES_PASSWORD": password}
        tools = {"PGUSER": user or "postgres", "PGPASSWORD": password}
    else:
        started = {"MARIADB_ROOT_PASSWORD": password, "MYSQL_ROOT_PASSWORD": password}
        tools = {"MYSQL_PWD": password}
    return started, {**tools, dumps.TCP_VARIABLE[kind]: dumps.TCP_HOST}


def run_options(config: ClientConfig, kind: str, image_config: dict, name: str, environment: dict) -> dict:
    """Return the keyword arguments of containers.create for a drill container: no network, data on tmpfs, labelled."""
    return {
        "name": name,
        "environment": environment,
        "labels": labels(config),
        "network_mode": "none",
        "tmpfs": {path: f"size={SPACE}" for path in data_directories(kind, image_config)},
    }


def tables_argv(kind: str, database: str) -> list[str]:
    """Given a kind and a database, return the argv that prints its tables, one a line, as SQL names them."""
    if kind == "postgres":
        query = ("SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables "
                 "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') "
                 "ORDER BY 1")  # fmt: skip
        return [*dumps.client_argv(kind, "shell"), "-X", "-A", "-t", "-d", database, "-c", query]
    query = ("SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND "
             f"table_schema = {dumprestore.literal(database)} ORDER BY 1")  # fmt: skip
    return [*dumps.client_argv(kind, "shell"), "-N", "-B", "-e", query]


def counts_argv(kind: str, database: str, tables: list[str]) -> list[str]:
    """Given a kind, a database and its tables (as tables_argv prints them), return the argv that prints each
    table's name and exact row count, tab-separated, one a line."""
    if kind == "postgres":
        query = " UNION ALL ".join(f"SELECT {dumprestore.literal(table)}, count(*) FROM {table}" for table in tables)
        return [*dumps.client_argv(kind, "shell"), "-X", "-A", "-t", "-F", "\t", "-d", database, "-c", query]
    schema = dumprestore.identifier(database, "`")
    query = " UNION ALL ".join(
        f"SELECT {dumprestore.literal(table)}, COUNT(*) FROM {schema}.{dumprestore.identifier(table, '`')}"
        for table in tables
    )
    return [*dumps.client_argv(kind, "shell"), "-N", "-B", "-e", query]


def counted(output: str) -> list[tuple[str, int]]:
    """Given counts_argv's output, return (table, rows) in order; a table of the public schema is named alone."""
    rows = []
    for line in output.splitlines():
        table, _, count = line.rpartition("\t")
        if table:
            rows.append((table.removeprefix("public."), int(count)))
    return rows


def restored_message(entry: Entry, image: str, seconds: float, rows: list[tuple[str, int]], more: int) -> str:
    """Return what a person reads of a dump that restored: where, how long, its tables and rows."""
    took = f"{seconds:.1f} s" if seconds < 60 else human_duration(seconds)
    where = f"{entry.path} restored into {image} in {took}"
    if not rows:
        return f"{where}; database {entry.database} has no tables"
    total = sum(count for _table, count in rows)
    shown = ", ".join(f"{table} {count}" for table, count in rows[:TABLES_SHOWN])
    others = f", {len(rows) - TABLES_SHOWN} more" if len(rows) > TABLES_SHOWN else ""
    uncounted = f" ({more} more tables not counted)" if more else ""
    tables = f"{len(rows) + more} table{'s' * (len(rows) + more != 1)}"
    return f"{where}; database {entry.database} has {tables}, {total} rows ({shown}{others}){uncounted}"


def pick_image(client, entry: Entry) -> tuple[str, str]:
    """Return the image to run for entry (its id, else its name) and its name for people; raise DrillStopped
    naming it if the archive does not say which it is or it is not on this host."""
    source = entry.source
    if source is None:
        raise DrillStopped(f"cannot drill {entry.path}: the archive does not say which image the database ran (it "
                           "was made before the sidecar recorded it); the next backup records it")  # fmt: skip
    name, image_id = source.get("image") or "", source.get("image_id") or ""
    for reference in (image_id, name):
        if reference:
            try:
                client.images.get(reference)
                return reference, name or image_id
            except Exception:  # docker.errors.ImageNotFound and its kin: try the next reference
                continue
    shown = f"{name} ({image_id[:19]})" if name and image_id else name or image_id
    raise DrillStopped(f"cannot drill {entry.path}: image {shown} of container {entry.container} is no longer on "
                       f"this host; pull it (docker pull {name or image_id}) for the next drill")  # fmt: skip


def last_line(text: str) -> str:
    """Given a tool's output, return its last error line (psql follows one with the statement and a caret), else
    its last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line or "FATAL" in line or "error" in line]
    return (errors or lines or ["no message"])[-1]


def wait_ready(container, source: Source, environment: dict, control: Control, image: str) -> None:
    """Wait until the drill database answers over TCP; raise DrillStopped if it stops, takes over READY_TIMEOUT
    or the drill is interrupted."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        code, out, error = container_exec.run_small(container.client.api, container.id, dumps.probe_argv(source),
                                                    environment)  # fmt: skip
        if code == 0:
            return
        container.reload()
        if container.status != "running":
            said = last_line(container.logs(tail=5).decode(errors="replace"))
            raise DrillStopped(f"the {source.kind} of image {image} stopped before it accepted connections: {said}")
        if control.interrupted:
            raise DrillStopped("the drill was interrupted")
        if time.monotonic() > deadline:
            said = container_exec.masked(last_line(error or out), environment)
            raise DrillStopped(f"the {source.kind} of image {image} accepted no connection within "
                               f"{READY_TIMEOUT} s: {said}")  # fmt: skip
        time.sleep(POLL)


def restore(config: ClientConfig, archive: str, entry: Entry, container, source: Source, environment: dict,
            control: Control) -> None:  # fmt: skip
    """Stream entry's dump into the drill database (dumprestore.feed, as restore-dump does); raise DrillStopped
    if borg or the database tool fails, the restore takes over RESTORE_TIMEOUT or the drill is interrupted."""
    api = container.client.api
    try:
        dumprestore.prepare_target(api, source, entry.database, environment, force=True)
    except dumprestore.RestoreFailed as error:
        raise DrillStopped(f"cannot create database {entry.database}: {error}") from None
    finished, why = threading.Event(), []

    def watch() -> None:  # a restore past its time, or an interrupt: the container goes, the streams end
        deadline = time.monotonic() + RESTORE_TIMEOUT
        while not finished.wait(WATCH):
            if control.interrupted or time.monotonic() > deadline:
                why.append("the drill was interrupted" if control.interrupted else
                           f"the restore took longer than {RESTORE_TIMEOUT} s")  # fmt: skip
                try:
                    container.kill()
                except Exception as error:  # docker.errors.APIError: it stopped by itself meanwhile
                    logger.debug("drill: killing %s: %s", container.name, error)
                return

    calls: list = []

    def produce(write) -> None:
        calls.append(stream_borg(config, borg.extract_stdout_argv(archive, entry.path), write))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        code, output = dumprestore.feed(api, source, dumprestore.restore_argv(source, entry.database), environment,
                                        produce)  # fmt: skip
    except OSError as error:  # the container went away under the stream
        raise DrillStopped(why[0] if why else f"the stream into the drill database broke: {error}") from None
    finally:
        finished.set()
        watcher.join()
    if why:
        raise DrillStopped(why[0])
    if calls and calls[0].returncode != 0:
        raise DrillStopped(explain(calls[0], f"borg extract of {entry.path} failed"))
    if code != 0:
        tool = "psql" if source.kind == "postgres" else "mariadb"
        raise DrillStopped(f"{tool} exit {code}: {last_line(output)}")


def sanity(container, source: Source, database: str, environment: dict) -> tuple[list[tuple[str, int]], int]:
    """Return each table of the restored database with its rows (the first TABLES_COUNTED) and how many more
    there are; raise DrillStopped with the database's message if it cannot be asked."""
    api = container.client.api
    try:
        listed_tables = dumprestore.ask(api, source, tables_argv(source.kind, database), environment).splitlines()
        tables = [table for table in listed_tables if table.strip()]
        if not tables:
            return [], 0
        output = dumprestore.ask(api, source, counts_argv(source.kind, database, tables[:TABLES_COUNTED]), environment)
    except dumprestore.RestoreFailed as error:
        raise DrillStopped(f"the sanity query failed: {error}") from None
    return counted(output), max(0, len(tables) - TABLES_COUNTED)


def drill_one(config: ClientConfig, client, archive: str, entry: Entry, control: Control) -> DumpDrill:
    """Restore entry into a throw-away container of its image, count its rows, remove the container; return how
    it went (never raises for what a person can act on)."""
    kind = (entry.source or {}).get("kind", "")
    if entry.source is not None and kind not in DRILLED:
        return DumpDrill(entry.path, "", True, f"{entry.path} is not drilled: a {kind} dump (the drill restores "
                         "PostgreSQL and MariaDB/MySQL dumps)", 0.0)  # fmt: skip
    shown, seconds, container = "", 0.0, None
    try:
        reference, shown = pick_image(client, entry)
        image_config = client.api.inspect_image(reference).get("Config") or {}
        password = secrets.token_urlsafe(24)
        started, environment = credentials(kind, entry.source.get("user", ""), password)
        name = f"borg-appliance-drill-{config.client}-{secrets.token_hex(4)}"
        logger.info("drill: restoring %s into a throw-away container %s of image %s", entry.path, name, shown)
        container = client.containers.create(reference, **run_options(config, kind, image_config, name, started))
        container.start()  # create, then start: containers.run would pull an image that went missing meanwhile
        source = Source(name, container.id, kind)
        wait_ready(container, source, environment, control, shown)
        began = time.monotonic()
        try:
            restore(config, archive, entry, container, source, environment, control)
        finally:
            seconds = time.monotonic() - began
        rows, more = sanity(container, source, entry.database, environment)
        message = restored_message(entry, shown, seconds, rows, more)
        logger.info("drill: %s", message)
        return DumpDrill(entry.path, shown, True, message, seconds)
    except DrillStopped as error:
        text = str(error)
        message = text if text.startswith("cannot drill") else f"{entry.path} did not restore into {shown}: {text}"
        logger.error("drill: %s", message)
        return DumpDrill(entry.path, shown, False, message, seconds)
    except Exception as error:  # a Docker API error (image, tmpfs, the daemon): this dump's drill failed
        message = f"{entry.path}: the drill container of image {shown or '?'} failed: {type(error).__name__}: {error}"
        logger.error("drill: %s", message)
        return DumpDrill(entry.path, shown, False, message, seconds)
    finally:
        if container is not None:
            remove(container)


def remove(container) -> None:
    """Remove a drill container and its data (tmpfs, any volume), whatever state it is in; log what fails."""
    try:
        container.remove(force=True, v=True)
    except Exception as error:  # docker.errors.NotFound (already gone) or an API error: the next drill retries
        logger.warning("drill: could not remove container %s (%s); the next drill removes it", container.name, error)


def remove_leftovers(config: ClientConfig, client) -> None:
    """Remove this client's drill containers that a killed drill left behind (found by their labels)."""
    filters = {"label": [f"{key}={value}" for key, value in labels(config).items()]}
    for container in client.containers.list(all=True, filters=filters):
        logger.warning("drill: removing container %s, left behind by a drill that was stopped", container.name)
        remove(container)


def clean_up(config: ClientConfig) -> None:
    """At the sidecar's start: remove the drill containers a killed sidecar left (nothing without the socket)."""
    if not container_exec.SOCKET.exists():
        return
    try:
        remove_leftovers(config, container_exec.docker_client())
    except Exception as error:  # docker.errors.DockerException and its kin: the Docker API did not answer
        logger.warning("drill: could not look for containers a stopped drill left, %s; the next drill looks again",
                       container_exec.not_answering(error))  # fmt: skip


def drill_dumps(config: ClientConfig, archive: str, control: Control) -> list[DumpDrill]:
    """Restore every dump in archive into a throw-away container of its database's image; return one result per dump."""
    try:
        found = listed(config, archive)
    except DrillStopped as error:
        return [DumpDrill(dumps.DUMPS, "", False, f"cannot drill the dumps of {archive}: {error}", 0.0)]
    if not found:
        return []
    if not container_exec.SOCKET.exists():
        why = f"cannot drill: the sidecar has no Docker socket; mount {container_exec.SOCKET} to drill the dumps"
        return [DumpDrill(entry.path, "", False, why, 0.0) for entry in found]
    try:
        client = container_exec.docker_client()
        remove_leftovers(config, client)
    except Exception as error:  # docker.errors.DockerException and its kin: the Docker API did not answer
        why = f"cannot drill: {container_exec.not_answering(error)}"
        return [DumpDrill(entry.path, "", False, why, 0.0) for entry in found]
    results = []
    for entry in found:
        if control.interrupted:
            results.append(DumpDrill(entry.path, "", False, f"{entry.path} was not drilled: interrupted", 0.0))
            continue
        results.append(drill_one(config, client, archive, entry, control))
    return results


def newest(config: ClientConfig) -> str | None:
    """Return the name of this client's newest archive, None if it has none; raise DrillStopped if borg cannot."""
    glob = borg.archive_glob(config.archive_name, config.client)
    call = call_borg(config, borg.command("list", "--json", "--glob-archives", str(glob), "--last", "1"),
                     capture_json=True)  # fmt: skip
    if call.outcome.status == "failure":
        raise DrillStopped(explain(call, "borg list failed"))
    archives = json.loads(call.stdout or "{}").get("archives") or []
    return archives[-1]["name"] if archives else None


def command_verify_dumps(config: ClientConfig, archive: str | None, control: Control) -> int:
    """Drill the dumps of archive (default: the newest); print one line per dump; return 0 if all restored, 2 if
    not (or there is nothing to drill)."""
    try:
        archive = archive or newest(config)
    except DrillStopped as error:
        print(f"borg-client: {error}")
        return 2
    if archive is None:
        print("borg-client: no archive yet: nothing to drill")
        return 2
    results = drill_dumps(config, archive, control)
    if not results:
        print(f"archive {archive} holds no database dumps: nothing to drill")
        return 0
    for result in results:
        print(f"{'ok' if result.ok else 'FAILED'}\t{result.seconds:.1f} s\t{result.message}")
    return 0 if all(result.ok for result in results) else 2
