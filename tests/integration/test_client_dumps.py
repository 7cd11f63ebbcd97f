"""Database dumps: PostgreSQL 17, MariaDB, sqlite and a command, dumped by labels while they are written to,
streamed into the same borg create, restored with restore-dump; a dump that fails fails the run.

One server and one set of database containers serve every scenario, in the order they are written.
"""

from __future__ import annotations

import json

import pytest

from tests.integration.docker_helpers import (
    BASE_IMAGE,
    CLIENT_IMAGE,
    MARIADB_IMAGE,
    POSTGRES_IMAGE,
    Sandbox,
    docker,
    exec_,
    wait_until,
)
from tests.integration.stack import client_command, fill_volume, make_client, start_server

SOCKET = "/var/run/docker.sock"
PG_PASSWORD, MARIADB_PASSWORD = "pg-Secret-4711", "maria-Secret-0815"
ITEMS = "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40)); CREATE TABLE events (id INT, at VARCHAR(40));"
PG_SUM = "SELECT count(*) || ' ' || md5(string_agg(id || ':' || name, ',' ORDER BY id)) FROM items"
MARIADB_SUM = "SELECT CONCAT(COUNT(*), ' ', MD5(GROUP_CONCAT(CONCAT(id, ':', name) ORDER BY id))) FROM items"
SQLITE = "/data/app.db"


def psql(container: str, sql: str, database: str = "shop", check: bool = True):
    return exec_(container, "psql", "-X", "-A", "-t", "-U", "app", "-d", database, "-c", sql, check=check)


def mariadb(container: str, sql: str, check: bool = True):
    return exec_(container, "sh", "-c", f'MYSQL_PWD="$(cat /run/pw)" mariadb -uroot -N -B shop -e "{sql}"', check=check)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, database_images):
    """A server, a sidecar's client, and four labelled containers: postgres, mariadb, sqlite, command."""
    sandbox = Sandbox()
    scope = f"borg-appliance-test.dumps={sandbox.prefix}"  # BACKUP_DUMP_LABEL: this module's containers only
    try:
        server = start_server(sandbox, ["db"])
        client = make_client(sandbox, server, "db", tmp_path_factory.mktemp("dumps"))
        fill_volume(sandbox, client.data, "echo files > /data/file")
        labels = ["--label", scope, "--network", server.network]
        sandbox.run("pg", POSTGRES_IMAGE, [*labels, "--label", "borg-appliance.dump=postgres",
                    "--label", "borg-appliance.dump.databases=shop", "-e", "POSTGRES_USER=app",
                    "-e", f"POSTGRES_PASSWORD={PG_PASSWORD}", "-e", "POSTGRES_DB=shop"])  # fmt: skip
        password = tmp_path_factory.mktemp("secrets") / "pw"
        password.write_text(MARIADB_PASSWORD + "\n")
        sandbox.run("maria", MARIADB_IMAGE, [*labels, "--label", "borg-appliance.dump=mariadb",
                    "-v", f"{password}:/run/pw:ro", "-e", "MARIADB_ROOT_PASSWORD_FILE=/run/pw",
                    "-e", "MARIADB_DATABASE=shop"])  # fmt: skip
        sandbox.run("lite", POSTGRES_IMAGE, [*labels, "--label", f"borg-appliance.dump=sqlite:{SQLITE}",
                    "--entrypoint", "sh"], ["-c", "mkdir -p /data && exec sleep infinity"])  # fmt: skip
        sandbox.run("cmd", BASE_IMAGE, [*labels, "--label", "borg-appliance.dump=command",
                    "--label", "borg-appliance.dump.command=cat /srv/state.txt",
                    "--label", "borg-appliance.dump.restore-command=cat > /srv/state.txt"],
                    ["sh", "-c", "seq 1 500 > /srv/state.txt && exec sleep infinity"])  # fmt: skip
        pg, maria = sandbox.name("pg"), sandbox.name("maria")
        wait_until(lambda: psql(pg, "SELECT 1", check=False).returncode == 0, 60, "postgres")
        wait_until(lambda: mariadb(maria, "SELECT 1", check=False).returncode == 0, 60, "mariadb")
        rows = "INSERT INTO items SELECT g, CONCAT('item-', g) FROM generate_series(1, 2000) g"
        psql(pg, ITEMS + rows)
        mariadb(maria, ITEMS + "INSERT INTO items SELECT seq, CONCAT('item-', seq) FROM seq_1_to_2000")
        lite = sandbox.name("lite")
        fill = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); " + " ".join(
            f"INSERT INTO notes (body) VALUES ('note {n} ''quoted''');" for n in range(300)
        )
        exec_(lite, "sqlite3", SQLITE, fill)
        env = {"BACKUP_DUMP_LABEL": scope}
        yield sandbox, client, env
    finally:
        sandbox.cleanup()


def run(sandbox, client, env, command, role="cli", entrypoint: list[str] | None = None):
    extra = ["-v", f"{SOCKET}:{SOCKET}", *(["--entrypoint", entrypoint[0]] if entrypoint else [])]
    return client_command(sandbox, client, command, env=env, role=role, extra=extra)


def last_report(sandbox, client, env) -> dict:
    status = run(sandbox, client, env, ["status", "--json", "--runs", "1"], role="status")
    return json.loads(status.stdout)["last_runs"][-1]


def writing(container: str, script: str) -> None:
    """Keep writing rows into the events table in the background, as an application would."""
    docker("exec", "-d", container, "sh", "-c", f"i=0; while true; do i=$((i+1)); {script}; done")


def test_every_dump_lands_in_the_archive_while_the_databases_are_written_to(stack):
    sandbox, client, env = stack
    pg, maria = sandbox.name("pg"), sandbox.name("maria")
    writing(pg, """psql -q -U app -d shop -c "INSERT INTO events VALUES ($i, now()::text)" """)
    writing(maria, """MYSQL_PWD="$(cat /run/pw)" mariadb -uroot shop -e "INSERT INTO events VALUES ($i, NOW())" """)
    wait_until(lambda: psql(pg, "SELECT count(*) FROM events").stdout.strip() not in ("", "0"), 30, "writes")

    result = run(sandbox, client, env, ["run"])

    assert result.returncode == 0, result.stderr
    report = last_report(sandbox, client, env)
    assert report["status"] == "success", report
    dumped = {(dump["container"], dump["database"]): dump for dump in report["dumps"]}
    names = {sandbox.name(role) for role in ("pg", "maria", "lite", "cmd")}
    assert set(dumped) == {(pg, "shop"), (maria, "shop"), (sandbox.name("lite"), "app.db"),
                           (sandbox.name("cmd"), "command")}, dumped  # fmt: skip
    assert all(dump["status"] == "success" and dump["bytes"] > 0 and dump["seconds"] >= 0 for dump in dumped.values())
    listing = run(sandbox, client, env, ["list", report["archive"], "--dumps"], role="list")
    assert listing.returncode == 0, listing.stderr
    listed = {tuple(line.split("\t")[:2]) for line in listing.stdout.splitlines()}
    assert listed == set(dumped)
    assert {line.split("\t")[0] for line in listing.stdout.splitlines()} == names
    sizes = {tuple(line.split("\t")[:2]): line.split("\t")[2] for line in listing.stdout.splitlines()}
    assert sizes[(pg, "shop")] == f"{dumped[(pg, 'shop')]['bytes']} bytes"
    # the files of the volume are in the same archive as the dumps
    files = run(sandbox, client, env, ["list", report["archive"], "--short"], role="files").stdout.splitlines()
    assert "backup/data/file" in files and f"dumps/{pg}/shop.sql" in files
    # no credential in the sidecar's output, its state volume or the report
    everything = result.stdout + result.stderr + json.dumps(report)
    state = sandbox.run("state", CLIENT_IMAGE, ["-v", f"{client.state}:/state:ro", "--entrypoint", "sh"],
                        ["-c", f"! grep -r -l -e {PG_PASSWORD} -e {MARIADB_PASSWORD} /state"], detach=False,
                        check=False)  # fmt: skip
    assert state.returncode == 0, state.stdout
    assert PG_PASSWORD not in everything and MARIADB_PASSWORD not in everything


def test_restore_dump_brings_back_exactly_the_rows_of_a_dropped_table(stack):
    sandbox, client, env = stack
    pg, maria = sandbox.name("pg"), sandbox.name("maria")
    archive = last_report(sandbox, client, env)["archive"]
    before = psql(pg, PG_SUM).stdout.strip(), mariadb(maria, MARIADB_SUM).stdout.strip()
    assert before[0].startswith("2000 ") and before[1].startswith("2000 ")
    psql(pg, "DROP TABLE items")
    mariadb(maria, "DROP TABLE items")

    refused = run(sandbox, client, env, ["restore-dump", archive, pg], role="refused")
    assert refused.returncode == 2
    assert f"database shop in container {pg} is not empty; add --force" in refused.stderr

    for container in (pg, maria):
        restored = run(sandbox, client, env, ["restore-dump", archive, container, "--database", "shop", "--force"],
                       role=f"restore-{container[-2:]}")  # fmt: skip
        assert restored.returncode == 0, restored.stderr
    assert (psql(pg, PG_SUM).stdout.strip(), mariadb(maria, MARIADB_SUM).stdout.strip()) == before

    # into another, empty PostgreSQL: the database is created there, nothing needs --force
    sandbox.run("pg2", POSTGRES_IMAGE, ["--label", "borg-appliance.dump=postgres", "-e", "POSTGRES_USER=app",
                "-e", "POSTGRES_PASSWORD=another-one"])  # fmt: skip
    pg2 = sandbox.name("pg2")
    wait_until(lambda: psql(pg2, "SELECT 1", "postgres", check=False).returncode == 0, 60, "the second postgres")
    into = run(sandbox, client, env, ["restore-dump", archive, pg, "--into", pg2], role="into")
    assert into.returncode == 0, into.stderr
    assert psql(pg2, PG_SUM).stdout.strip() == before[0]


def test_a_sqlite_file_and_a_command_dump_restore_to_identical_content(stack):
    sandbox, client, env = stack
    lite, cmd = sandbox.name("lite"), sandbox.name("cmd")
    archive = last_report(sandbox, client, env)["archive"]
    before = exec_(lite, "sqlite3", SQLITE, ".dump").stdout
    assert "note 299 ''quoted''" in before
    exec_(lite, "rm", SQLITE)
    exec_(cmd, "sh", "-c", "echo changed > /srv/state.txt")

    for container in (lite, cmd):
        restored = run(sandbox, client, env, ["restore-dump", archive, container], role=f"restore-{container[-3:]}")
        assert restored.returncode == 0, restored.stderr

    assert exec_(lite, "sqlite3", SQLITE, ".dump").stdout == before
    assert exec_(cmd, "cat", "/srv/state.txt").stdout == "".join(f"{n}\n" for n in range(1, 501))


def test_wrong_credentials_fail_the_run_with_the_database_message_and_no_success(stack):
    sandbox, client, env = stack
    pg = sandbox.name("pg")
    archives_before = run(sandbox, client, env, ["list", "--short"], role="before").stdout.split()
    psql(pg, "ALTER USER app PASSWORD 'changed-behind-its-back'")
    try:
        result = run(sandbox, client, env, ["run"], role="wrong")
    finally:
        psql(pg, f"ALTER USER app PASSWORD '{PG_PASSWORD}'")

    assert result.returncode == 2
    report = last_report(sandbox, client, env)
    assert report["status"] == "failure"
    assert f"dump of shop in container {pg} " in report["message"]
    assert 'password authentication failed for user "app"' in report["message"]
    assert report["archive"].endswith(".checkpoint"), report
    assert f"the archive was renamed {report['archive']}" in report["message"]
    failed = {(dump["container"], dump["status"]) for dump in report["dumps"]}
    assert (pg, "failure") in failed and (sandbox.name("maria"), "success") in failed
    # borg list shows no new archive: the run's archive is a checkpoint, never a backup
    assert run(sandbox, client, env, ["list", "--short"], role="after").stdout.split() == archives_before
    checkpoints = run(sandbox, client, env, ["borg", "list", "--consider-checkpoints", "--short"], role="all")
    assert report["archive"] in checkpoints.stdout.split()
    assert PG_PASSWORD not in result.stdout + result.stderr + json.dumps(report)


MEASURED = (
    "borg-client run & pid=$!; hwm=0; while kill -0 $pid 2>/dev/null; do "
    "hwm=$(sed -n 's/^VmHWM: *\\([0-9]*\\) kB/\\1/p' /proc/$pid/status 2>/dev/null || echo $hwm); sleep 0.2; done; "
    "wait $pid; rc=$?; echo sidecar-peak-kB=$hwm; "
    "echo cgroup-peak-bytes=$(cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes 2>/dev/null "
    "|| cat /sys/fs/cgroup/memory.peak); exit $rc"
)


def test_a_200_mb_dump_streams_with_the_sidecar_memory_bounded(stack):
    sandbox, client, env = stack
    pg = sandbox.name("pg")
    psql(pg, "CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 6) AS payload FROM generate_series(1, 1050000) g")
    try:
        result = run(sandbox, client, env, ["-c", MEASURED], role="big", entrypoint=["sh"])
    finally:
        psql(pg, "DROP TABLE big")

    assert result.returncode == 0, result.stderr
    report = last_report(sandbox, client, env)
    (big,) = [dump for dump in report["dumps"] if dump["container"] == pg]
    assert big["bytes"] > 200_000_000, big
    measured = dict(line.split("=") for line in result.stdout.splitlines() if "-peak-" in line)
    print(f"200 MB dump: {big['bytes']} bytes in {big['seconds']} s; sidecar peak RSS {measured}")
    assert 0 < int(measured["sidecar-peak-kB"]) < 150_000  # the Python sidecar: far below the dump's size
    assert int(measured["cgroup-peak-bytes"]) < 200_000_000  # sidecar and borg together, page cache included
