"""The database drill's pure parts: what the archive lists, the drill container, the queries and the messages."""

import hashlib
import json
import logging
import threading

import pytest

from borg_client import dump_drill, dump_streams
from borg_client.borgcall import Control
from borg_client.dump_drill import DumpDrill, Entry
from borg_client.dumps import Dump, Source
from tests.unit.borg_client.test_dumps import FakeApi

SOURCE = {"container": "db", "kind": "postgres", "image": "postgres:17", "image_id": "sha256:" + "a" * 64,
          "user": "app"}  # fmt: skip


def line(path: str, kind: str = "-") -> str:
    return json.dumps({"type": kind, "path": path, "size": 10})


def test_the_archive_listing_gives_each_dump_and_each_container_s_source_file():
    paths = ["dumps/db/shop.sql", "dumps/db/source.json", "dumps/my%20db/we%2Fird.sql", "dumps/x/y/z.sql"]
    listing = "\n".join([line("dumps", "d"), line("dumps/db", "d"), *map(line, paths)])
    found, sources = dump_drill.entries(listing)
    assert found == [("dumps/db/shop.sql", "db", "shop"), ("dumps/my%20db/we%2Fird.sql", "my db", "we/ird")]
    assert sources == ["dumps/db/source.json"]


def test_a_dump_records_its_container_s_kind_image_and_user_but_no_password():
    dump = Dump("db", "id", "postgres", "shop", ("pg_dump",), {"PGUSER": "app", "PGPASSWORD": "s3cret"},
                "postgres:17", "sha256:abc")  # fmt: skip
    assert dump.source() == {"container": "db", "kind": "postgres", "image": "postgres:17", "image_id": "sha256:abc",
                             "user": "app"}  # fmt: skip
    assert Dump("m", "id", "mariadb", "shop", (), {"MYSQL_PWD": "s3cret"}).source()["user"] == ""


def test_the_dumps_directory_holds_each_container_s_source_file_next_to_its_pipes(tmp_path):
    dumps_ = [Dump("db", "id", "postgres", name, ("pg_dump",), {"PGUSER": "app"}, "pg:17", "sha256:1")
              for name in ("shop", "crm")]  # fmt: skip
    client = type("Client", (), {"api": FakeApi([], 0)})()
    with dump_streams.streaming(client, dumps_) as (directory, _results):
        written = json.loads((directory / "dumps/db/source.json").read_text())
        names = sorted(path.name for path in (directory / "dumps/db").iterdir())
    assert written == {"container": "db", "kind": "postgres", "image": "pg:17", "image_id": "sha256:1", "user": "app"}
    assert names == ["crm.sql", "shop.sql", "source.json"]


@pytest.mark.parametrize(
    ("kind", "image_config", "directories"),
    [
        ("postgres", {}, ["/var/lib/postgresql/data"]),
        ("postgres", {"Env": ["PGDATA=/var/lib/postgresql/18/docker"], "Volumes": {"/var/lib/postgresql": {}}},
         ["/var/lib/postgresql"]),
        ("mariadb", {"Volumes": {"/var/lib/mysql": {}, "/etc/mysql/conf.d": {}}},
         ["/etc/mysql/conf.d", "/var/lib/mysql"]),
    ],
)  # fmt: skip
def test_the_drill_database_keeps_its_data_and_every_volume_of_its_image_on_tmpfs(kind, image_config, directories):
    assert dump_drill.data_directories(kind, image_config) == directories


def test_the_drill_container_runs_on_no_network_with_a_password_of_its_own_labelled_for_its_client(config):
    started, tools = dump_drill.credentials("postgres", "app", "drill-pw")
    assert started == {"POSTGRES_USER": "app", "POSTGRES_PASSWORD": "drill-pw"}
    assert tools == {"PGUSER": "app", "PGPASSWORD": "drill-pw", "PGHOST": "127.0.0.1"}
    started, tools = dump_drill.credentials("mariadb", "", "drill-pw")
    assert started == {"MARIADB_ROOT_PASSWORD": "drill-pw", "MYSQL_ROOT_PASSWORD": "drill-pw"}
    assert tools == {"MYSQL_PWD": "drill-pw", "BORG_DUMP_HOST": "127.0.0.1"}
    options = dump_drill.run_options(config, "postgres", {}, "borg-appliance-drill-web-1234", {"X": "1"})
    assert options == {
        "name": "borg-appliance-drill-web-1234", "environment": {"X": "1"},
        "labels": {"borg-appliance.drill": config.client,
                   "borg-appliance.drill.repository": hashlib.sha256(config.repository.encode()).hexdigest()[:16]},
        "network_mode": "none", "tmpfs": {"/var/lib/postgresql/data": "size=8g"},
    }  # fmt: skip


def test_the_sanity_query_lists_the_tables_then_counts_each_one_s_rows():
    assert dump_drill.tables_argv("postgres", "shop")[:7] == ["psql", "-X", "-A", "-t", "-d", "shop", "-c"]
    assert "table_schema = 'shop'" in dump_drill.tables_argv("mariadb", "shop")[-1]
    counts = dump_drill.counts_argv("postgres", "shop", ["public.items", 'public."we\'ird"'])
    assert counts[:8] == ["psql", "-X", "-A", "-t", "-F", "\t", "-d", "shop"]
    assert counts[-1] == (
        "SELECT 'public.items', count(*) FROM public.items UNION ALL "
        "SELECT 'public.\"we''ird\"', count(*) FROM public.\"we'ird\""
    )
    assert dump_drill.counts_argv("mariadb", "sh`op", ["items"])[-1] == "SELECT 'items', COUNT(*) FROM `sh``op`.`items`"
    assert dump_drill.counted("public.items\t2000\naudit.log\t3\n") == [("items", 2000), ("audit.log", 3)]


def test_a_restored_dump_reads_as_where_how_long_and_its_tables_and_rows():
    entry = Entry("dumps/db/shop.sql", "db", "shop", SOURCE)
    rows = [("events", 12), ("items", 2000)]
    assert dump_drill.restored_message(entry, "postgres:17", 3.21, rows, 0) == (
        "dumps/db/shop.sql restored into postgres:17 in 3.2 s; database shop has 2 tables, 2012 rows (events 12, "
        "items 2000)"
    )
    many = [(f"t{n}", n) for n in range(7)]
    assert dump_drill.restored_message(entry, "postgres:17", 125, many, 3) == (
        "dumps/db/shop.sql restored into postgres:17 in 2m 5s; database shop has 10 tables, 21 rows (t0 0, t1 1, "
        "t2 2, t3 3, t4 4, 2 more) (3 more tables not counted)"
    )
    assert dump_drill.restored_message(entry, "pg", 0.5, [], 0) == (
        "dumps/db/shop.sql restored into pg in 0.5 s; database shop has no tables"
    )


def test_a_tool_s_message_is_its_error_line_not_the_caret_under_it():
    psql = 'psql:<stdin>:2: ERROR:  syntax error at or near ";"\nLINE 1: INSERT INTO half VALUES (1;\n        ^\n'
    assert dump_drill.last_line(psql) == 'psql:<stdin>:2: ERROR:  syntax error at or near ";"'
    assert dump_drill.last_line("one\ntwo\n") == "two" and dump_drill.last_line("") == "no message"


class FakeImages:
    def __init__(self, present):
        self.present = present

    def get(self, reference):
        if reference not in self.present:
            raise LookupError(f"No such image: {reference}")
        return reference


@pytest.mark.parametrize(
    ("present", "picked"),
    [({SOURCE["image_id"], "postgres:17"}, (SOURCE["image_id"], "postgres:17")),
     ({"postgres:17"}, ("postgres:17", "postgres:17"))],
)  # fmt: skip
def test_the_drill_runs_the_image_the_dump_was_made_in_else_the_one_its_name_gives_now(present, picked):
    client = type("Client", (), {"images": FakeImages(present)})()
    assert dump_drill.pick_image(client, Entry("dumps/db/shop.sql", "db", "shop", SOURCE)) == picked


def test_an_image_no_longer_on_the_host_or_not_recorded_is_a_clear_result_naming_it():
    client = type("Client", (), {"images": FakeImages(set())})()
    with pytest.raises(dump_drill.DrillStopped) as gone:
        dump_drill.pick_image(client, Entry("dumps/db/shop.sql", "db", "shop", SOURCE))
    assert str(gone.value) == (
        "cannot drill dumps/db/shop.sql: image postgres:17 (sha256:aaaaaaaaaaaa) of container db is no longer on this "
        "host; pull it (docker pull postgres:17) for the next drill"
    )
    with pytest.raises(dump_drill.DrillStopped) as old:
        dump_drill.pick_image(client, Entry("dumps/db/shop.sql", "db", "shop", None))
    assert str(old.value) == (
        "cannot drill dumps/db/shop.sql: the archive does not say which image the database ran (it was made before "
        "the sidecar recorded it); the next backup records it"
    )


def test_sqlite_and_command_dumps_are_not_drilled_and_say_so(config):
    entry = Entry("dumps/lite/app.db.sql", "lite", "app.db", {**SOURCE, "kind": "sqlite"})
    assert dump_drill.drill_one(config, None, "a1", entry, Control()) == DumpDrill(
        "dumps/lite/app.db.sql", "", True,
        "dumps/lite/app.db.sql is not drilled: a sqlite dump (the drill restores PostgreSQL and MariaDB/MySQL dumps)",
        0.0,
    )  # fmt: skip


def test_a_drill_whose_container_cannot_start_is_a_failed_result_and_its_container_is_removed(config):
    removed = []

    class Container:
        id, name = "c1", "borg-appliance-drill-x"

        def start(self):
            raise RuntimeError("tmpfs refused")

        def remove(self, **options):
            removed.append(options)

    class Containers:
        def create(self, image, **options):
            return Container()

    class Api:
        def inspect_image(self, reference):
            return {"Config": {}}

    client = type("Client", (), {"images": FakeImages({"postgres:17"}), "containers": Containers(), "api": Api()})()
    result = dump_drill.drill_one(config, client, "a1", Entry("dumps/db/shop.sql", "db", "shop", SOURCE), Control())
    assert result == DumpDrill(
        "dumps/db/shop.sql", "postgres:17", False,
        "dumps/db/shop.sql: the drill container of image postgres:17 failed: RuntimeError: tmpfs refused", 0.0,
    )  # fmt: skip
    assert removed == [{"force": True, "v": True}]


def test_the_source_files_read_in_one_extract_are_kept_by_container_and_a_strange_line_is_left_out():
    text = json.dumps(SOURCE) + "\n" + json.dumps({**SOURCE, "container": "m", "kind": "mariadb"}) + "\nnot json\n[]\n"
    assert dump_drill.described(text) == {"db": SOURCE, "m": {**SOURCE, "container": "m", "kind": "mariadb"}}


def test_what_a_killed_drill_left_is_found_by_its_client_and_repository_labels_and_removed(config):
    removed, asked = [], []

    class Left:
        name = "borg-appliance-drill-web-0a1b2c3d"

        def remove(self, **options):
            removed.append(options)

    class Containers:
        def list(self, **options):
            asked.append(options)
            return [Left()]

    dump_drill.remove_leftovers(config, type("Client", (), {"containers": Containers()})())
    digest = hashlib.sha256(config.repository.encode()).hexdigest()[:16]
    labels = [f"borg-appliance.drill={config.client}", f"borg-appliance.drill.repository={digest}"]
    assert asked == [{"all": True, "filters": {"label": labels}}]
    assert removed == [{"force": True, "v": True}]


def test_without_the_docker_socket_each_dump_is_a_failed_drill_saying_what_to_mount(config, monkeypatch, tmp_path):
    monkeypatch.setattr(dump_drill.container_exec, "SOCKET", tmp_path / "docker.sock")
    monkeypatch.setattr(dump_drill, "listed", lambda *_: [Entry("dumps/db/shop.sql", "db", "shop", SOURCE)])
    assert dump_drill.drill_dumps(config, "a1", Control()) == [DumpDrill(
        "dumps/db/shop.sql", "", False,
        f"cannot drill: the sidecar has no Docker socket; mount {tmp_path / 'docker.sock'} to drill the dumps", 0.0,
    )]  # fmt: skip
    monkeypatch.setattr(dump_drill, "listed", lambda *_: [])
    assert dump_drill.drill_dumps(config, "a1", Control()) == []


def test_an_interrupt_during_a_restore_kills_the_drill_container_and_says_so(config, monkeypatch):
    killed = threading.Event()

    class Container:
        name, client = "borg-appliance-drill-web-1", type("Client", (), {"api": None})()

        def kill(self):
            killed.set()

    def feed(api, source, argv, environment, produce):  # the stream ends when the container is killed
        assert killed.wait(5)
        raise BrokenPipeError("broken pipe")

    monkeypatch.setattr(dump_drill, "WATCH", 0.01)
    monkeypatch.setattr(dump_drill.dumprestore, "prepare_target", lambda *_args, **_options: None)
    monkeypatch.setattr(dump_drill.dumprestore, "feed", feed)
    control = Control()
    control.interrupt()
    entry = Entry("dumps/db/shop.sql", "db", "shop", SOURCE)
    with pytest.raises(dump_drill.DrillStopped, match="^the drill was interrupted$"):
        dump_drill.restore(config, "a1", entry, Container(), Source("c", "c1", "postgres"), {}, control)


def test_a_docker_api_that_does_not_answer_fails_the_dump_drill_and_is_one_line_at_start(config, monkeypatch, tmp_path,
                                                                                          caplog):  # fmt: skip
    socket = tmp_path / "docker.sock"
    socket.touch()

    def refused():
        raise ConnectionError("Error while fetching server API version: Connection refused\nmore")

    monkeypatch.setattr(dump_drill.container_exec, "SOCKET", socket)
    monkeypatch.setattr(dump_drill.container_exec, "docker_client", refused)
    monkeypatch.setattr(dump_drill, "listed", lambda *_: [Entry("dumps/db/shop.sql", "db", "shop", SOURCE)])
    why = (f"cannot drill: the Docker API at {socket} did not answer (ConnectionError: Error while fetching server API "
           "version: Connection refused)")  # fmt: skip
    assert dump_drill.drill_dumps(config, "a1", Control()) == [DumpDrill("dumps/db/shop.sql", "", False, why, 0.0)]

    with caplog.at_level(logging.WARNING):
        dump_drill.clean_up(config)
    assert caplog.messages == [
        f"drill: could not look for containers a stopped drill left, the Docker API at {socket} did not answer "
        "(ConnectionError: Error while fetching server API version: Connection refused); the next drill looks again"
    ]
