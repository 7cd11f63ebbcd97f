"""A sidecar started together with a database that is still initialising: its first run at start waits (bounded) for
the database to accept connections, says so, and then dumps it, instead of failing once."""

from __future__ import annotations

import json
import re

from tests.harness.containers import CLIENT_IMAGE, POSTGRES_IMAGE, exec_, logs, wait_until
from tests.harness.stack import fill_volume, make_client, start_server

SOCKET = "/var/run/docker.sock"


def last_run(sidecar: str) -> dict | None:
    runs = json.loads(exec_(sidecar, "borg-client", "status", "--json", "--runs", "1").stdout)["last_runs"]
    return runs[-1] if runs else None


def test_the_first_run_at_start_waits_for_a_database_still_initialising_and_dumps_it(
    sandbox, tmp_path, database_images
):
    server = start_server(sandbox, ["db"])
    client = make_client(sandbox, server, "db", tmp_path)
    fill_volume(sandbox, client.data, "echo files > /data/file")
    scope = f"borg-appliance-test.start={sandbox.prefix}"
    # The database initialises once the scenario says so (/tmp/go): the sidecar surely starts before it is ready.
    sandbox.run("pg", POSTGRES_IMAGE, ["--label", scope, "--label", "borg-appliance.dump=postgres",
                "--label", "borg-appliance.dump.databases=shop", "-e", "POSTGRES_USER=app",
                "-e", "POSTGRES_PASSWORD=pg-start", "-e", "POSTGRES_DB=shop", "--entrypoint", "sh"],
                ["-c", "while [ ! -e /tmp/go ]; do sleep 0.2; done; exec postgres-entrypoint"])  # fmt: skip
    sandbox.run("sidecar", CLIENT_IMAGE, [*client.options({"BACKUP_DUMP_LABEL": scope}), "-v", f"{SOCKET}:{SOCKET}"])
    pg, sidecar = sandbox.name("pg"), sandbox.name("sidecar")

    waits = f"waiting for database container {pg} (postgres) to accept connections, up to 300 s"
    wait_until(lambda: waits in logs(sidecar), 120, "the sidecar to wait for the database")
    exec_(pg, "touch", "/tmp/go")
    wait_until(lambda: last_run(sidecar), 300, "the first run at start")

    run = last_run(sidecar)
    log = logs(sidecar)
    assert run["status"] == "success", log
    assert [(dump["container"], dump["database"], dump["status"]) for dump in run["dumps"]] == [
        (pg, "shop", "success")]  # fmt: skip
    assert re.search(rf"database container {pg} \(postgres\) accepts connections after \d+ s; backing up now", log)
    assert log.index(waits) < log.index("backing up now") < log.index(f"container {pg}: dumping shop (postgres)")
    listed = exec_(sidecar, "borg-client", "list", run["archive"], "--dumps").stdout
    assert listed.split("\t")[:2] == [pg, "shop"] and int(listed.split("\t")[2].split()[0]) > 0, listed
