"""Database dumps: PostgreSQL 17, MariaDB, sqlite and a command, dumped by labels while they are written to,
streamed into the same borg create, restored with restore-dump; a dump that fails fails the run.

One server and one set of database containers serve every scenario, in the order they are written.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from tests.harness.containers import (
    BASE_IMAGE,
    MARIADB_IMAGE,
    POSTGRES_IMAGE,
    Sandbox,
    docker,
    exec_,
    wait_until,
)
from tests.harness.stack import alerts_logged, client_command, fill_volume, make_client, start_server

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
        yield sandbox, client, env, {}  # the last item: what scenarios hand on (the archive of the first run)
    finally:
        sandbox.cleanup()


def sidecar(sandbox, client, env, *commands: str, role: str = "cli") -> list[tuple[int, str]]:
    """Run shell commands one after the other in one throw-away sidecar (one container start for all of
    them); return each one's exit code and stdout. Its stderr (the log) is the last entry's text."""
    marker = "=== exit "
    script = "; ".join(f'{command}; echo "{marker}$?"' for command in commands)
    result = client_command(sandbox, client, ["-c", script], env=env, role=role,
                            extra=["-v", f"{SOCKET}:{SOCKET}", "--entrypoint", "sh"])  # fmt: skip
    parts = result.stdout.split(marker)
    outputs = [(int(part.split("\n", 1)[0]), parts[number].split("\n", 1)[-1] if number else parts[0])
               for number, part in enumerate(parts[1:])]  # fmt: skip
    assert len(outputs) == len(commands), result.stdout + result.stderr
    return [*outputs, (result.returncode, result.stderr)]


REPORT = "borg-client status --json --runs 1"


def reported(output: str) -> dict:
    """Given `borg-client status --json` output, return the last run's report."""
    return json.loads(output)["last_runs"][-1]


def writing(container: str, script: str) -> None:
    """Write rows into the events table in the background, as an application would, until /tmp/stop exists."""
    docker(
        "exec", "-d", container, "sh", "-c", f"i=0; while [ ! -e /tmp/stop ]; do i=$((i+1)); {script}; sleep 0.1; done"
    )


def test_every_dump_lands_in_the_archive_while_the_databases_are_written_to(stack):
    sandbox, client, env, state = stack
    pg, maria = sandbox.name("pg"), sandbox.name("maria")
    writing(pg, """psql -q -U app -d shop -c "INSERT INTO events VALUES ($i, now()::text)" """)
    writing(maria, """MYSQL_PWD="$(cat /run/pw)" mariadb -uroot shop -e "INSERT INTO events VALUES ($i, NOW())" """)
    wait_until(lambda: psql(pg, "SELECT count(*) FROM events").stdout.strip() not in ("", "0"), 30, "writes")

    try:
        (code, _), (_, status), (_, log) = sidecar(sandbox, client, env, "borg-client run", REPORT)
        written = psql(pg, "SELECT count(*) FROM events").stdout.strip()
    finally:
        for container in (pg, maria):
            exec_(container, "touch", "/tmp/stop")

    assert code == 0, log
    report = reported(status)
    assert report["status"] == "success", report
    state["archive"] = archive = report["archive"]
    dumped = {(dump["container"], dump["database"]): dump for dump in report["dumps"]}
    assert set(dumped) == {(pg, "shop"), (maria, "shop"), (sandbox.name("lite"), "app.db"),
                           (sandbox.name("cmd"), "command")}, dumped  # fmt: skip
    assert all(dump["status"] == "success" and dump["bytes"] > 0 and dump["seconds"] >= 0 for dump in dumped.values())
    passwords = f"-e {PG_PASSWORD} -e {MARIADB_PASSWORD}"
    (listed, dumps), (_, files), (_, dump), (clean, found), (_, shown), _ = sidecar(
        sandbox, client, env, f"borg-client list {archive} --dumps", f"borg-client list {archive} --short",
        f"borg-client borg extract --stdout ::{archive} dumps/{pg}/shop.sql",
        f"! grep -r -l {passwords} /var/lib/borg-client", "borg-client status", role="inspect",
    )  # fmt: skip
    assert listed == 0
    lines = [line.split("\t") for line in dumps.splitlines()]
    assert {(container, database) for container, database, *_ in lines} == set(dumped)
    assert {(c, d): size for c, d, size, _ in lines}[(pg, "shop")] == f"{dumped[(pg, 'shop')]['bytes']} bytes"
    # the volume's files and the dumps are in one archive
    assert "backup/data/file" in files.split() and f"dumps/{pg}/shop.sql" in files.split()
    # the rows written while borg ran are in the dump, up to the moment it started
    assert "COPY public.events (id, at) FROM stdin;" in dump and "CREATE TABLE public.items" in dump
    assert 0 < dump.split("COPY public.events", 1)[1].split("\\.")[0].count("\n") - 1 <= int(written)
    assert f"dump {pg}/shop: {dumped[(pg, 'shop')]['bytes']} bytes in " in shown
    # no credential in the sidecar's log, its state volume or the report
    assert clean == 0, found
    assert PG_PASSWORD not in log + status and MARIADB_PASSWORD not in log + status


def test_restore_dump_brings_back_exactly_the_rows_of_a_dropped_table(stack):
    sandbox, client, env, state = stack
    pg, maria, archive = sandbox.name("pg"), sandbox.name("maria"), state["archive"]
    before = psql(pg, PG_SUM).stdout.strip(), mariadb(maria, MARIADB_SUM).stdout.strip()
    assert before[0].startswith("2000 ") and before[1].startswith("2000 ")
    psql(pg, "DROP TABLE items")
    mariadb(maria, "DROP TABLE items")
    # another, empty PostgreSQL to restore into: the database is created there, nothing needs --force
    sandbox.run("pg2", POSTGRES_IMAGE, ["--label", "borg-appliance.dump=postgres", "-e", "POSTGRES_USER=app",
                "-e", "POSTGRES_PASSWORD=another-one"])  # fmt: skip
    pg2 = sandbox.name("pg2")
    wait_until(lambda: psql(pg2, "SELECT 1", "postgres", check=False).returncode == 0, 60, "the second postgres")

    (refused, refusal), (pg_code, _), (maria_code, _), (into, _), (_, log) = sidecar(
        sandbox, client, env, f"borg-client restore-dump {archive} {pg} 2>&1",
        f"borg-client restore-dump {archive} {pg} --database shop --force",
        f"borg-client restore-dump {archive} {maria} --force", f"borg-client restore-dump {archive} {pg} --into {pg2}",
        role="restore",
    )  # fmt: skip

    assert refused == 2
    assert f"borg-client: database shop in container {pg} is not empty; add --force" in refusal
    assert (pg_code, maria_code, into) == (0, 0, 0), log
    assert "Traceback" not in log and "Error:" not in log, log  # a restore that worked says so and nothing else
    assert (psql(pg, PG_SUM).stdout.strip(), mariadb(maria, MARIADB_SUM).stdout.strip()) == before
    assert psql(pg2, PG_SUM).stdout.strip() == before[0]


def test_a_sqlite_file_and_a_command_dump_restore_to_identical_content(stack):
    sandbox, client, env, state = stack
    lite, cmd = sandbox.name("lite"), sandbox.name("cmd")
    before = exec_(lite, "sqlite3", SQLITE, ".dump").stdout
    assert "note 299 ''quoted''" in before
    exec_(lite, "rm", SQLITE)
    exec_(cmd, "sh", "-c", "echo changed > /srv/state.txt")

    (lite_code, _), (cmd_code, _), (_, log) = sidecar(
        sandbox, client, env, f"borg-client restore-dump {state['archive']} {lite}",
        f"borg-client restore-dump {state['archive']} {cmd}", role="restore-files",
    )  # fmt: skip

    assert (lite_code, cmd_code) == (0, 0), log
    assert "Traceback" not in log and "Error:" not in log, log
    assert exec_(lite, "sqlite3", SQLITE, ".dump").stdout == before
    assert exec_(cmd, "cat", "/srv/state.txt").stdout == "".join(f"{n}\n" for n in range(1, 501))


def drill_containers(repository: str) -> list[str]:
    """Return the drill containers of the sidecars of repository on the daemon (labelled with its digest)."""
    digest = hashlib.sha256(repository.encode()).hexdigest()[:16]
    listed = docker("ps", "-a", "-q", "--filter", f"label=borg-appliance.drill.repository={digest}")
    return listed.stdout.split()


def drilled(output: str) -> dict[str, tuple[str, float, str]]:
    """Given `borg-client verify-dumps` output, return each dump's (ok|FAILED, seconds, message) by its path."""
    results = {}
    for line in output.splitlines():
        verdict, seconds, message = line.split("\t")
        results[re.search(r"dumps/\S+?\.sql", message).group(0)] = (verdict, float(seconds.removesuffix(" s")), message)
    return results


def test_the_dumps_restore_in_a_drill_and_a_dump_that_does_not_restore_fails_it(stack):
    sandbox, client, env, state = stack
    pg, maria, lite, cmd, archive = (*map(sandbox.name, ("pg", "maria", "lite", "cmd")), state["archive"])
    live = lambda: (psql(pg, PG_SUM).stdout, psql(pg, "SELECT datname FROM pg_database ORDER BY 1").stdout,  # noqa: E731
                    mariadb(maria, MARIADB_SUM).stdout, mariadb(maria, "SHOW DATABASES").stdout)  # fmt: skip
    before = live()
    # an archive whose dump breaks halfway (a truncated or damaged dump), and one of a container made before the
    # archive recorded the database's image
    broken = (f"mkdir -p /tmp/b/dumps/{pg} /tmp/b/dumps/old && cd /tmp/b && borg-client borg extract --stdout "
              f"::{archive} dumps/{pg}/source.json > dumps/{pg}/source.json && printf 'CREATE TABLE half (id int);"
              f"\\nINSERT INTO half VALUES (1;\\n' > dumps/{pg}/shop.sql && echo 'SELECT 1;' > dumps/old/app.sql "
              f"&& borg-client borg create ::db-broken-{sandbox.prefix} dumps >/dev/null 2>&1")  # fmt: skip

    (good, output), (_, _), (bad, failed), (_, settings), (_, log) = sidecar(
        sandbox, client, env, f"borg-client verify-dumps {archive}", broken, "borg-client verify-dumps",
        "borg-client check-config", role="drill",
    )  # fmt: skip

    assert good == 0, output + log
    results = drilled(output)
    dumped = ((pg, "shop"), (maria, "shop"), (lite, "app.db"), (cmd, "command"))
    assert set(results) == {f"dumps/{name}/{database}.sql" for name, database in dumped}
    for name, image in ((pg, POSTGRES_IMAGE), (maria, MARIADB_IMAGE)):
        verdict, seconds, message = results[f"dumps/{name}/shop.sql"]
        print(f"drill of {name}: restored in {seconds} s")
        took = f"{seconds:.1f} s"
        head = f"dumps/{name}/shop.sql restored into {image} in {took}; database shop has 2 tables, "
        assert verdict == "ok" and message.startswith(head), message
        total, events = re.fullmatch(r"(\d+) rows \(events (\d+), items 2000\)", message.removeprefix(head)).groups()
        assert int(total) == int(events) + 2000 and int(events) > 0, message
    not_drilled = "dump (the drill restores PostgreSQL and MariaDB/MySQL dumps)"
    assert results[f"dumps/{lite}/app.db.sql"] == (
        "ok",
        0.0,
        f"dumps/{lite}/app.db.sql is not drilled: a sqlite {not_drilled}",
    )
    assert results[f"dumps/{cmd}/command.sql"] == (
        "ok",
        0.0,
        f"dumps/{cmd}/command.sql is not drilled: a command {not_drilled}",
    )
    # the broken dump fails the drill, saying where and what psql said; the old archive's dump says what is missing
    assert bad == 2, failed + log
    broken_results = drilled(failed)
    verdict, _seconds, message = broken_results[f"dumps/{pg}/shop.sql"]
    assert verdict == "FAILED"
    assert message == (f"dumps/{pg}/shop.sql did not restore into {POSTGRES_IMAGE}: psql exit 3: "
                       'ERROR:  syntax error at or near ";"')  # fmt: skip
    assert broken_results["dumps/old/app.sql"] == ("FAILED", 0.0, (
        "cannot drill dumps/old/app.sql: the archive does not say which image the database ran (it was made before "
        "the sidecar recorded it); the next backup records it"))  # fmt: skip
    assert "Traceback" not in log and PG_PASSWORD not in log + output and MARIADB_PASSWORD not in log + output
    # no drill container is left, and the live databases are as they were
    assert drill_containers(json.loads(settings)["repository"]) == []
    assert live() == before


def test_wrong_credentials_fail_the_run_before_borg_with_what_socket_and_tcp_answered(stack):
    sandbox, client, env, _state = stack
    pg = sandbox.name("pg")
    psql(pg, "ALTER USER app PASSWORD 'changed-behind-its-back'")
    asking(pg, "scram-sha-256")  # a socket that asks for the password too: neither way lets the old one in
    try:
        (_, before), (code, _), (_, status), (_, after), (_, log) = sidecar(
            sandbox, client, env, "borg-client borg list --consider-checkpoints --short", "borg-client run", REPORT,
            "borg-client borg list --consider-checkpoints --short", role="wrong",
        )  # fmt: skip
    finally:
        asking(pg, "trust")
        psql(pg, f"ALTER USER app PASSWORD '{PG_PASSWORD}'")

    assert code == 2, log
    report = reported(status)
    assert report["status"] == "failure"
    refused = 'failed: FATAL:  password authentication failed for user "app" (exit 2)'
    assert report["message"] == (
        f"container {pg}: postgres accepts no connection, neither over its socket: psql: error: connection to server "
        f'on socket "/var/run/postgresql/.s.PGSQL.5432" {refused}; nor over TCP 127.0.0.1: psql: error: connection '
        f'to server at "127.0.0.1", port 5432 {refused}; check that it is up and that the password in its '
        "environment is the database's"
    )
    # nothing was written: not even a checkpoint
    assert after.split() == before.split() and report["archive"] is None
    assert PG_PASSWORD not in log + status


def test_a_dump_that_fails_midway_fails_the_run_and_its_archive_becomes_a_checkpoint(stack):
    sandbox, client, env, _state = stack
    cmd = sandbox.name("cmd")
    exec_(cmd, "mv", "/srv/state.txt", "/srv/state.moved")  # its dump command, `cat /srv/state.txt`, fails
    try:
        (_, before), (code, _), (_, status), (_, after), (_, everything), (_, log) = sidecar(
            sandbox, client, env, "borg-client list --short", "borg-client run", REPORT, "borg-client list --short",
            "borg-client borg list --consider-checkpoints --short", role="midway",
        )  # fmt: skip
    finally:
        exec_(cmd, "mv", "/srv/state.moved", "/srv/state.txt")

    assert code == 2, log
    report = reported(status)
    assert report["status"] == "failure"
    assert report["archive"].endswith(".checkpoint"), report
    assert report["message"] == (
        f"dump of command in container {cmd} failed (exit 1): cat: /srv/state.txt: No such file or directory; "
        f"the archive was renamed {report['archive']} (a checkpoint, not a backup)"
    )
    failed = {(dump["container"], dump["status"]) for dump in report["dumps"]}
    assert (cmd, "failure") in failed and (sandbox.name("pg"), "success") in failed
    # borg list shows no new archive: the run's archive is a checkpoint, never a backup
    assert after.split() == before.split()
    assert report["archive"] in everything.split()
    # the rename deleted the old archive object with the client's own key: listed as a rename, no alert
    server = client.server
    server.exec("borg-server", "scan")
    assert "1 rename" in server.exec("borg-server", "audit", "db").stdout
    assert [a for a in alerts_logged(server.container) if a["alert"] in ("deletes", "client_deletes")] == []


def asking(container: str, method: str) -> None:
    """Make postgres in container authenticate socket connections with method (trust, scram-sha-256), now."""
    hba = "/var/lib/postgresql/data/pg_hba.conf"
    exec_(container, "sed", "-i", f"s/^local\\( *all *all *\\).*$/local\\1{method}/", hba)
    exec_(container, "runuser", "-u", "postgres", "--", "pg_ctl", "reload", "-D", "/var/lib/postgresql/data")


def test_databases_that_listen_on_their_socket_only_are_dumped_and_restored_over_it(stack):
    sandbox, client, _env, _state = stack
    scope = f"borg-appliance-test.socket={sandbox.prefix}"  # these two only, not the module's other databases
    labels = ["--label", scope, "--network", client.server.network]
    sandbox.run("pgsock", POSTGRES_IMAGE, [*labels, "--label", "borg-appliance.dump=postgres", "-e",
                "POSTGRES_USER=app", "-e", "POSTGRES_PASSWORD=pg-socket", "-e", "POSTGRES_DB=shop"],
                ["-c", "listen_addresses="])  # fmt: skip
    sandbox.run("mariasock", MARIADB_IMAGE, [*labels, "--label", "borg-appliance.dump=mariadb", "-e",
                "MARIADB_ROOT_PASSWORD=maria-socket", "-e", "MARIADB_DATABASE=shop"],
                ["--skip-networking"])  # fmt: skip
    pg, maria = sandbox.name("pgsock"), sandbox.name("mariasock")
    wait_until(lambda: psql(pg, "SELECT 1", check=False).returncode == 0, 60, "postgres on its socket")
    sql = 'MYSQL_PWD=maria-socket mariadb -uroot -N -B shop -e "{}"'
    wait_until(lambda: exec_(maria, "sh", "-c", sql.format("SELECT 1"), check=False).returncode == 0, 60, "mariadb")
    psql(pg, "CREATE TABLE items AS SELECT g AS id, 'item-' || g AS name FROM generate_series(1, 300) g")
    exec_(maria, "sh", "-c", sql.format("CREATE TABLE items AS SELECT seq AS id FROM seq_1_to_300"))
    # neither listens on TCP: what the sidecar did before, connecting to 127.0.0.1, finds nobody
    assert "Connection refused" in exec_(pg, "psql", "-h", "127.0.0.1", "-U", "app", "-c", "", check=False).stderr
    assert exec_(maria, "sh", "-c", "MYSQL_PWD=maria-socket mariadb -uroot -h 127.0.0.1 --protocol=TCP -e 'SELECT 1'",
                 check=False).returncode != 0  # fmt: skip
    env = {"BACKUP_DUMP_LABEL": scope}

    (code, _), (_, status), (_, log) = sidecar(sandbox, client, env, "borg-client run", REPORT, role="socket")

    assert code == 0, log
    report = reported(status)
    assert report["status"] == "success", report
    assert {(dump["container"], dump["database"], dump["status"]) for dump in report["dumps"]} == {
        (pg, "postgres", "success"), (pg, "shop", "success"), (maria, "shop", "success")}  # fmt: skip
    psql(pg, "DROP TABLE items")
    exec_(maria, "sh", "-c", sql.format("DROP TABLE items"))
    archive = report["archive"]

    (pg_code, _), (maria_code, _), (_, log) = sidecar(
        sandbox, client, env, f"borg-client restore-dump {archive} {pg} --database shop",
        f"borg-client restore-dump {archive} {maria}",
        role="socket-restore",
    )  # fmt: skip

    assert (pg_code, maria_code) == (0, 0), log
    assert psql(pg, "SELECT count(*) FROM items").stdout.strip() == "300"
    assert exec_(maria, "sh", "-c", sql.format("SELECT COUNT(*) FROM items")).stdout.strip() == "300"


MEASURED = (
    "borg-client run & pid=$!; hwm=0; while kill -0 $pid 2>/dev/null; do "
    "v=$(awk '/^VmHWM:/ {print $2}' /proc/$pid/status 2>/dev/null); [ -n \"$v\" ] && hwm=$v; sleep 0.2; done; "
    "wait $pid; rc=$?; echo sidecar-peak-kB=$hwm; "
    "echo cgroup-peak-bytes=$(cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes 2>/dev/null "
    "|| cat /sys/fs/cgroup/memory.peak); (exit $rc)"
)


def test_a_200_mb_dump_streams_with_the_sidecar_memory_bounded(stack):
    sandbox, client, env, _state = stack
    pg = sandbox.name("pg")
    psql(
        pg, "CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 6) AS payload FROM generate_series(1, 1050000) g"
    )
    try:
        (code, measured), (_, status), (_, log) = sidecar(sandbox, client, env, MEASURED, REPORT, role="big")
    finally:
        psql(pg, "DROP TABLE big")

    assert code == 0, log
    (big,) = [dump for dump in reported(status)["dumps"] if dump["container"] == pg]
    assert big["bytes"] > 200_000_000, big
    peaks = dict(line.split("=") for line in measured.splitlines() if "-peak-" in line)
    print(f"200 MB dump: {big['bytes']} bytes in {big['seconds']} s; peaks {peaks}")
    assert 0 < int(peaks["sidecar-peak-kB"]) < 150_000  # the Python sidecar: far below the dump's size
    assert int(peaks["cgroup-peak-bytes"]) < 200_000_000  # sidecar and borg together, page cache included
