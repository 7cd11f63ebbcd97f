"""The coverage audit on a compose-like project of real containers: every volume, bind mount and database is
classified exactly, a fix clears its finding at the next run, each new finding is notified once (a real ntfy), and
without the Docker socket `coverage` says why it cannot see the host."""

from __future__ import annotations

import json
import re

import pytest

from tests.harness.containers import BASE_IMAGE, CLIENT_IMAGE, LABEL, POSTGRES_IMAGE, docker
from tests.harness.notifiers import start_ntfy
from tests.harness.stack import client_command, fill_volume, make_client, start_server

SOCKET = "/var/run/docker.sock"
PAGE = "docs/how-to/adding-a-service.md"
NOT_COVERED_NEXT = (
    "Next: mount it under /backup of a sidecar, dump it with the label borg-appliance.dump if it is a database, or "
    f"label the container borg-appliance.skip=<why> if it needs no backup; see {PAGE}."
)
UNSAFE_NEXT = (
    "Next: label the container borg-appliance.dump=<kind> so it is dumped, or stop it during the backup with "
    f"BACKUP_STOP_LABEL; see {PAGE}."
)


@pytest.fixture(scope="module", autouse=True)
def receiver_images(database_images) -> None:
    """The PostgreSQL and ntfy images are made by make test-images."""


def test_the_audit_classifies_a_project_a_fix_clears_its_finding_and_each_new_finding_is_notified_once(
    sandbox, tmp_path
):
    server = start_server(sandbox, ["app"])
    ntfy = start_ntfy(sandbox, server.network)
    client = make_client(sandbox, server, "app", tmp_path)
    fill_volume(sandbox, client.data, "echo data > /data/file")
    project = f"{sandbox.prefix}-app"
    compose = ["--label", f"com.docker.compose.project={project}"]
    media, extra, pgdata, cache, scratch = (sandbox.volume(n) for n in ("media", "extra", "pgdata", "cache", "scratch"))
    site = tmp_path / "site"
    site.mkdir()
    app, db, worker, skipped, sidecar2 = (sandbox.name(n) for n in ("app", "db", "worker", "cache", "sidecar2"))

    def start(role: str, image: str, options: list[str], command: list[str] = ("sleep", "infinity")) -> None:
        docker("rm", "-f", sandbox.name(role), check=False)  # re-created: the fix a person makes
        sandbox.run(role, image, [*compose, *options], list(command))

    def sidecar(*mounts: str) -> None:  # a second sidecar of this image, waiting for its pairing export
        options = ["-e", "BORG_PASSCOMMAND=true", *(option for mount in mounts for option in ("-v", mount))]
        start("sidecar2", CLIENT_IMAGE, options, [])

    start("app", BASE_IMAGE, ["-v", f"{client.data}:/srv/data", "-v", f"{media}:/srv/media", "-v", f"{site}:/srv/site",
                              "-v", f"{scratch}:/srv/scratch", "-v", "/etc/localtime:/etc/localtime:ro",
                              "-v", f"{SOCKET}:{SOCKET}"])  # fmt: skip
    # the PostgreSQL image with its data volume, not running the server: the audit reads images, labels and mounts
    start("db", POSTGRES_IMAGE, ["-v", f"{pgdata}:/var/lib/postgresql/data", "--entrypoint", "sleep"], ["infinity"])
    start("cache", BASE_IMAGE, ["--label", "borg-appliance.skip=rebuilt by the app at start", "-v", f"{cache}:/cache"])
    start("worker", BASE_IMAGE, ["-v", f"{extra}:/srv/extra"])
    sidecar(f"{extra}:/backup/extra:ro", f"{pgdata}:/backup/pg:ro")
    oneoff = sandbox.name("oneoff")  # a stopped one-off container's anonymous volume is no finding
    docker("create", "--name", oneoff, "--label", f"{LABEL}={sandbox.prefix}", *compose, "-v", "/scratch", BASE_IMAGE)
    env = {"COVERAGE_SCOPE": f"com.docker.compose.project={project}", "COVERAGE_IGNORE": "*-scratch",
           "NOTIFY_URLS": "ntfy://ntfy/coverage",
           "BACKUP_DUMP_LABEL": f"{LABEL}={sandbox.prefix}"}  # other scenarios' databases are not dumped  # fmt: skip
    host = ["-v", f"{SOCKET}:{SOCKET}", "--hostname", "app-host"]

    listed = client_command(sandbox, client, ["coverage", "--json"], env=env, extra=host)
    shown = client_command(sandbox, client, ["coverage", "--sizes"], env=env, extra=host)

    assert listed.returncode == 1 and shown.returncode == 1, listed.stderr + shown.stderr
    audit = json.loads(listed.stdout)
    items = {(i["container"], i["kind"], i["mount"], i["destination"], i["state"], i["why"]) for i in audit["items"]}
    assert items == {
        (app, "volume", client.data, "/srv/data", "covered", f"under /backup of sidecar {sandbox.name('app-cli')}"),
        (app, "volume", media, "/srv/media", "not_covered", "no sidecar mounts it under /backup"),
        (app, "bind", str(site), "/srv/site", "not_covered", "no sidecar mounts it under /backup"),
        (app, "volume", scratch, "/srv/scratch", "left_out", "COVERAGE_IGNORE matches *-scratch"),
        (db, "volume", pgdata, "/var/lib/postgresql/data", "unsafe", f"PostgreSQL data copied by sidecar {sidecar2} "
         "while the database runs: neither dumped (borg-appliance.dump) nor stopped (BACKUP_STOP_LABEL)"),
        (skipped, "volume", cache, "/cache", "left_out", "borg-appliance.skip on the container: rebuilt by the app at "
         "start"),
        (worker, "volume", extra, "/srv/extra", "covered", f"under /backup of sidecar {sidecar2}"),
    }  # fmt: skip
    assert audit["counts"] == {"covered": 2, "unsafe": 1, "left_out": 2, "not_covered": 2}
    rows = [re.split(r"\s{2,}", line) for line in shown.stdout.splitlines()]
    assert rows[0] == ["CONTAINER", "MOUNT", "SIZE", "STATE", "WHY"]
    findings = [(row[0], row[3]) for row in rows[1:4]]
    assert findings == [(db, "UNSAFE"), (app, "NOT COVERED"), (app, "NOT COVERED")], shown.stdout
    assert rows[2][1] == f"{media} -> /srv/media" and rows[2][4] == "no sidecar mounts it under /backup"
    assert shown.stdout.splitlines()[-1] == (
        f"7 mount(s) in scope com.docker.compose.project={project}: 2 covered, 1 unsafe, 2 left out, 2 not covered; "
        f"see {PAGE}"
    )
    assert ntfy.messages("coverage") == []  # the command only shows: runs notify

    first = client_command(sandbox, client, ["run"], env=env, extra=host)
    again = client_command(sandbox, client, ["run"], env=env, extra=host)

    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    messages = {message["title"]: message["message"] for message in ntfy.messages("coverage")}
    assert len(ntfy.messages("coverage")) == 3, messages  # once each, not at every run
    assert messages == {
        f"volume {media} is not backed up on app-host": f"Container {app} uses it at /srv/media.\n"
        f"No sidecar mounts it under /backup.\n{NOT_COVERED_NEXT}",
        f"bind mount {site} is not backed up on app-host": f"Container {app} uses it at /srv/site.\n"
        f"No sidecar mounts it under /backup.\n{NOT_COVERED_NEXT}",
        f"volume {pgdata} is backed up unsafely on app-host": f"Container {db} uses it at /var/lib/postgresql/data.\n"
        f"PostgreSQL data copied by sidecar {sidecar2} while the database runs: neither dumped (borg-appliance.dump) "
        f"nor stopped (BACKUP_STOP_LABEL).\n{UNSAFE_NEXT}",
    }  # fmt: skip

    sidecar(f"{extra}:/backup/extra:ro", f"{pgdata}:/backup/pg:ro", f"{media}:/backup/media:ro")  # the missing mount
    start("db", POSTGRES_IMAGE, ["-v", f"{pgdata}:/var/lib/postgresql/data", "--label", "borg-appliance.dump=postgres",
                                 "--entrypoint", "sleep"], ["infinity"])  # the missing label  # fmt: skip
    fixed = client_command(sandbox, client, ["run"], env=env, extra=host)
    status = client_command(sandbox, client, ["status"])

    assert fixed.returncode == 0, fixed.stderr
    assert len(ntfy.messages("coverage")) == 3  # nothing new
    counts = json.loads(client_command(sandbox, client, ["status", "--json"]).stdout)["coverage"]["counts"]
    assert counts == {"covered": 4, "unsafe": 0, "left_out": 2, "not_covered": 1}
    counted = "4 covered, 0 unsafe, 2 left out, 1 not covered (borg-client coverage lists them)"
    assert f"{'coverage:':23}{counted}" in (status.stdout.splitlines()), status.stdout
    assert f"coverage: bind mount {site} of container {app}: not covered (no sidecar mounts it under /backup)" in (
        fixed.stderr
    )
    assert f"volume {media}" not in fixed.stderr and f"volume {pgdata}" not in fixed.stderr

    blind = client_command(sandbox, client, ["coverage"])  # no Docker socket

    assert blind.returncode == 2
    assert blind.stderr.strip().splitlines()[-1] == (
        "borg-client coverage: cannot see the host: the Docker socket /var/run/docker.sock is not mounted into the "
        "sidecar: mount it to audit the host"
    )
    assert "Traceback" not in blind.stderr and blind.stdout == ""
