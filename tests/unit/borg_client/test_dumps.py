"""Tests for database dumps: labels read, argv built, pipes streamed, failures named; no Docker (a fake API)."""

import dataclasses
import os

import pytest

from borg_client import borg, container_exec, dump_streams, dumprestore, dumps, run
from borg_client.dump_streams import Result
from borg_client.dumps import Dump, DumpFailed, Source


def test_each_label_value_names_what_to_dump():
    labels = {"borg-appliance.dump": "postgres", "borg-appliance.dump.databases": "shop, crm,"}
    assert dumps.parse("db", "id1", labels) == Source("db", "id1", "postgres", ("shop", "crm"))
    assert dumps.parse("m", "id2", {"borg-appliance.dump": "mysql"}).kind == "mariadb"
    assert dumps.parse("f", "id3", {"borg-appliance.dump": "sqlite:/data/app.db"}).path == "/data/app.db"
    command = dumps.parse("c", "id4", {"borg-appliance.dump": "command", "borg-appliance.dump.command": "cat /x"})
    assert (command.kind, command.command, command.restore_command) == ("command", "cat /x", None)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"borg-appliance.dump": "oracle"}, "label borg-appliance.dump='oracle' is not postgres, mariadb, mysql"),
        ({"borg-appliance.dump": "sqlite:data.db"}, "the sqlite file must be an absolute path"),
        ({"borg-appliance.dump": "command"}, "needs borg-appliance.dump.command"),
    ],
)
def test_a_wrong_label_is_a_failure_naming_the_container_and_label(labels, message):
    with pytest.raises(DumpFailed) as raised:
        dumps.parse("db", "id", labels)
    assert str(raised.value).startswith("container db: label borg-appliance.dump=")
    assert message in str(raised.value) and raised.value.cause == "settings"


def test_each_kind_dumps_with_its_own_tool_in_the_container():
    assert dumps.dump_argv(Source("db", "i", "postgres"), "shop") == [
        "pg_dump", "--clean", "--if-exists", "--no-password", "-d", "shop"]  # fmt: skip
    mariadb = dumps.dump_argv(Source("m", "i", "mariadb"), "shop")
    assert mariadb[:2] == ["sh", "-c"] and "mariadb-dump" in mariadb[2] and "mysqldump" in mariadb[2]
    assert mariadb[3:] == ["sh", "--user=root", "--single-transaction", "--routines", "--events", "--triggers", "shop"]
    assert dumps.dump_argv(Source("f", "i", "sqlite", path="/d/a.db"), "a.db") == [
        "sqlite3",
        "-readonly",
        "/d/a.db",
        ".dump",
    ]
    assert dumps.dump_argv(Source("c", "i", "command", command="cat /x"), "command") == ["sh", "-c", "cat /x"]


def test_a_dump_lands_under_dumps_with_names_made_safe_for_a_path():
    assert dumps.archive_path("db", "shop") == "dumps/db/shop.sql"
    assert dumps.archive_path("db", "a/b c") == "dumps/db/a%2Fb%20c.sql"


def test_passwords_are_masked_in_a_tool_message_and_never_in_a_dump_repr():
    environment = {"PGUSER": "app", "PGPASSWORD": "s3cret"}
    assert container_exec.masked("auth failed for s3cret", environment) == "auth failed for ***"
    assert "s3cret" not in repr(Dump("db", "i", "postgres", "shop", ("pg_dump",), environment))


def test_create_reads_the_pipes_and_excludes_special_files_of_the_volumes(config):
    argv = borg.create_argv(config, "web-1", ["/backup/data"], "dumps", ["/backup/data/fifo"])
    assert argv[-3:] == ["::web-1", "/backup/data", "dumps"]
    assert "--read-special" in argv and argv[argv.index("--exclude") + 1] == "pp:/backup/data/fifo"
    assert "--read-special" not in borg.create_argv(config, "web-1", ["/backup/data"])


def test_special_files_finds_fifos_and_links_to_them_but_not_regular_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "file").write_text("x")
    os.mkfifo(tmp_path / "a" / "fifo")
    (tmp_path / "link").symlink_to(tmp_path / "a" / "fifo")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert sorted(dump_streams.special_files([str(tmp_path)])) == [str(tmp_path / "a" / "fifo"), str(tmp_path / "link")]


DUMP = Dump("db", "id-db", "postgres", "shop", ("pg_dump",), {"PGPASSWORD": "s3cret"})


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        (Result(DUMP, bytes=10, exit_code=0, started=True), None),
        (Result(DUMP, bytes=0, exit_code=0, started=True), "dump of shop in container db came out empty"),
        (Result(DUMP, bytes=5, exit_code=1, error="FATAL: no\n", started=True),
         "dump of shop in container db failed (exit 1): FATAL: no"),
        (Result(DUMP), "dump of shop in container db was never read by borg create"),
    ],
)  # fmt: skip
def test_a_dump_that_failed_or_came_out_empty_is_a_problem(result, problem):
    assert result.problem() == problem
    assert result.to_dict()["status"] == ("success" if problem is None else "failure")


class FakeApi:
    """The Docker API of one exec: its output chunks (stdout, stderr) and exit code."""

    def __init__(self, chunks, exit_code):
        self.chunks, self.exit_code, self.created = chunks, exit_code, []

    def exec_create(self, container, argv, **options):
        self.created.append((container, argv, options))
        return {"Id": "exec1"}

    def exec_start(self, exec_id, stream, demux):
        yield from self.chunks

    def exec_inspect(self, exec_id):
        return {"ExitCode": self.exit_code}


def test_streaming_copies_the_exec_output_into_the_pipe_borg_reads(tmp_path):
    api = FakeApi([(b"CREATE TABLE a;\n", None), (None, b"warning s3cret\n"), (b"x" * 100000, None)], 0)
    client = type("Client", (), {"api": api})()
    with dump_streams.streaming(client, [DUMP]) as (directory, results):
        with open(directory / DUMP.path, "rb") as pipe:  # what borg create does with --read-special
            data = pipe.read()
    assert data == b"CREATE TABLE a;\n" + b"x" * 100000
    (result,) = results
    assert (result.bytes, result.exit_code, result.started) == (len(data), 0, True)
    assert result.error == "warning ***\n"
    assert api.created == [("id-db", ["pg_dump"], {"stdout": True, "stderr": True, "environment": DUMP.environment})]
    assert not directory.exists()


def test_a_pipe_borg_never_opens_is_cancelled_and_never_runs_the_dump():
    api = FakeApi([], 0)
    client = type("Client", (), {"api": api})()
    with dump_streams.streaming(client, [DUMP]) as (_directory, results):
        pass
    assert api.created == [] and results[0].problem() == "dump of shop in container db was never read by borg create"


def test_a_failed_dump_fails_the_run_and_its_archive_becomes_a_checkpoint(run_config, fake_borg):
    started = run.report.start(run_config)
    outcome = dataclasses.replace(started, status="success", archive="web-1", message="borg finished")
    failed = Result(DUMP, bytes=0, exit_code=2, error="FATAL: password authentication failed\n", started=True)

    report = run.checked_dumps(run_config, outcome, [failed])

    assert fake_borg.commands == [["borg", "--log-json", "--lock-wait", "600", "rename", "::web-1", "web-1.checkpoint"]]
    assert report.status == "failure" and report.archive == "web-1.checkpoint"
    assert report.message == (
        "dump of shop in container db failed (exit 2): FATAL: password authentication failed; "
        "the archive was renamed web-1.checkpoint (a checkpoint, not a backup)"
    )
    assert report.dumps[0]["status"] == "failure"


def test_restore_reads_the_dump_with_the_tool_of_the_target_label():
    assert dumprestore.restore_argv(Source("db", "i", "postgres"), "shop") == [
        "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "shop"]  # fmt: skip
    assert dumprestore.restore_argv(Source("m", "i", "mariadb"), "shop")[-2:] == ["--user=root", "shop"]
    sqlite = dumprestore.restore_argv(Source("f", "i", "sqlite", path="/d/a.db"), "a.db")
    assert sqlite[-1] == "/d/a.db" and 'mv "$1.restoring" "$1"' in sqlite[2]
    with pytest.raises(dumprestore.RestoreFailed, match="set borg-appliance.dump.restore-command"):
        dumprestore.restore_argv(Source("c", "i", "command", command="cat /x"), "command")


def test_a_database_that_holds_tables_is_refused_unless_forced():
    target = Source("db", "i", "postgres")
    exists_and_holds_tables = FakeApi([(b"1\n", None)], 0)
    with pytest.raises(dumprestore.RestoreFailed, match="database shop in container db is not empty; add --force"):
        dumprestore.prepare_target(exists_and_holds_tables, target, "shop", {}, force=False)
    dumprestore.prepare_target(FakeApi([(b"1\n", None)], 0), target, "shop", {}, force=True)


def test_a_database_the_target_lacks_is_created_there():
    api = FakeApi([(b"0\n", None)], 0)
    dumprestore.prepare_target(api, Source("db", "i", "postgres"), 'we"ird', {}, force=False)
    assert api.created[-1][1][-1] == 'CREATE DATABASE "we""ird"'


class LabelledContainer:
    def __init__(self, name: str, labels: dict[str, str]):
        self.name, self.id, self.labels = name, f"id-{name}", labels


class FakeContainers:
    def __init__(self, own: dict[str, str], running: list[LabelledContainer]):
        self.own, self.running = own, running

    def get(self, _hostname):
        return LabelledContainer("sidecar", self.own)

    def list(self, filters):
        return self.running


class FakeDocker:
    def __init__(self, own: dict[str, str], running: list[LabelledContainer]):
        self.containers = FakeContainers(own, running)


ALPHA, BETA = {"com.docker.compose.project": "alpha"}, {"com.docker.stack.namespace": "beta"}
DUMP_LABELS = {"borg-appliance.dump": "command", "borg-appliance.dump.command": "cat /x"}


@pytest.mark.parametrize(
    ("own", "project_only", "dumped"),
    [(ALPHA, True, ["a"]), (BETA, True, ["b"]), ({}, True, ["none"]), (ALPHA, False, ["a", "b", "none"])],
)
def test_dumps_are_the_sidecar_s_own_project_s_unless_the_scope_is_the_host(own, project_only, dumped):
    running = [
        LabelledContainer("a", ALPHA | DUMP_LABELS),
        LabelledContainer("b", BETA | DUMP_LABELS),
        LabelledContainer("none", DUMP_LABELS),
    ]

    found = dumps.labelled(FakeDocker(own, running), None, project_only)

    assert [source.container for source in found] == dumped


class AnsweringApi:
    """The Docker API of a database that answers each exec by its environment: answer(environment) → (code, err)."""

    def __init__(self, answer):
        self.answer, self.created, self.last = answer, [], None

    def exec_create(self, container, argv, **options):
        self.created.append((argv, options["environment"]))
        self.last = self.answer(options["environment"])
        return {"Id": "exec1"}

    def exec_start(self, exec_id, stream, demux):
        yield (b"1\n", None) if self.last[0] == 0 else (None, self.last[1].encode())

    def exec_inspect(self, exec_id):
        return {"ExitCode": self.last[0]}


PG = Source("db", "id-db", "postgres", ("shop",))
MARIA = Source("m", "id-m", "mariadb")
CREDENTIALS = {"PGUSER": "app", "PGPASSWORD": "s3cret"}


def test_a_database_that_answers_on_its_socket_is_dumped_over_the_socket():
    api = AnsweringApi(lambda environment: (0, ""))
    assert dumps.connection(api, PG, CREDENTIALS) == CREDENTIALS  # no PGHOST: libpq's socket
    assert api.created == [(["psql", "-X", "-A", "-t", "-d", "shop", "-c", "SELECT 1"], CREDENTIALS)]


def test_a_socket_that_refuses_the_dump_falls_back_to_tcp_with_the_password(caplog):
    refused = 'psql: error: FATAL:  Peer authentication failed for user "app"\n'
    api = AnsweringApi(lambda environment: (0, "") if environment.get("PGHOST") == "127.0.0.1" else (2, refused))
    caplog.set_level("INFO")

    assert dumps.connection(api, PG, CREDENTIALS) == {**CREDENTIALS, "PGHOST": "127.0.0.1"}
    assert (
        "container db: postgres does not let the dump in over its socket (psql: error: FATAL:  Peer authentication "
        'failed for user "app" (exit 2)); connecting over TCP 127.0.0.1 with the password'
    ) in caplog.messages


def test_mariadb_over_tcp_names_the_host_in_the_exec_environment_its_tool_wrapper_reads():
    api = AnsweringApi(lambda environment: (0, "") if "BORG_DUMP_HOST" in environment else (1, "ERROR 2002"))
    environment = dumps.connection(api, MARIA, {"MYSQL_PWD": "s3cret"})
    assert environment == {"MYSQL_PWD": "s3cret", "BORG_DUMP_HOST": "127.0.0.1"}
    assert "${BORG_DUMP_HOST:+--protocol=TCP --host=$BORG_DUMP_HOST}" in dumps.dump_argv(MARIA, "shop")[2]


def test_a_database_that_accepts_neither_connection_fails_with_both_answers_and_no_password():
    answer = 'psql: error: FATAL:  password authentication failed for user "app" (s3cret)\n'
    with pytest.raises(DumpFailed) as raised:
        dumps.connection(AnsweringApi(lambda environment: (2, answer)), PG, CREDENTIALS)
    assert str(raised.value) == (
        "container db: postgres accepts no connection, neither over its socket: psql: error: FATAL:  password "
        'authentication failed for user "app" (***) (exit 2); nor over TCP 127.0.0.1: psql: error: FATAL:  password '
        'authentication failed for user "app" (***) (exit 2); check that it is up and that the password in its '
        "environment is the database's"
    )


def test_the_credentials_name_no_host_and_sqlite_or_command_dumps_need_no_connection():
    api = type("Api", (), {"inspect_container": lambda self, _id: {"Config": {"Env": ["POSTGRES_PASSWORD=pw"]}}})()
    assert dumps.credentials(api, PG) == {"PGUSER": "postgres", "PGPASSWORD": "pw"}
    assert dumps.login(api, Source("c", "i", "command", command="cat /x")) == {}
