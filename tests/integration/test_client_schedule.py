"""The sidecar on its schedule: archives on time, no overlap, labelled containers stopped and restarted."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from tests.harness.containers import CLIENT_IMAGE, LABEL, docker, wait_until
from tests.harness.stack import client_command, fill_volume, make_client, start_server

SOCKET = "/var/run/docker.sock"


def runs(sidecar: str) -> list[dict]:
    return json.loads(docker("exec", sidecar, "borg-client", "status", "--json", "--runs", "50").stdout)["last_runs"]


@pytest.mark.long
def test_a_per_minute_schedule_makes_archives_and_a_run_longer_than_a_minute_makes_the_next_skip(sandbox, tmp_path):
    server = start_server(sandbox, ["web"])
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "echo one > /data/file")
    sandbox.run("sidecar", CLIENT_IMAGE, web.options({"BACKUP_CRON": "* * * * *"}))
    sidecar = sandbox.name("sidecar")
    wait_until(lambda: [r for r in runs(sidecar) if r["status"] == "success"], 90, "the catch-up backup at start")

    # Another session holds the repository lock for 100 s: the next scheduled run waits for it,
    # past the following minute, which must be skipped rather than started beside it.
    sandbox.run("holder", CLIENT_IMAGE, [*web.options(), "--entrypoint", "sh"],
                ["-c", 'borg-client borg with-lock "$(cat /pairing/repo_url)" sleep 100'])  # fmt: skip
    wait_until(lambda: any(r["status"] == "skipped" for r in runs(sidecar)), 200, "a skipped run")
    wait_until(lambda: len([r for r in runs(sidecar) if r["status"] == "success"]) >= 2, 200, "the delayed run")

    history = runs(sidecar)
    skipped = [r for r in history if r["status"] == "skipped"]
    assert "was still going on" in skipped[0]["message"]
    done = [r for r in history if r["status"] == "success"]
    for earlier, later in zip(done, done[1:], strict=False):
        assert later["started_at"] >= earlier["started_at"]  # one after another, never side by side
    delayed = done[1]
    assert delayed["duration_s"] > 60  # it waited for the lock
    archives = client_command(sandbox, web, ["list", "--short"]).stdout.split()
    assert len(archives) == len(done)
    assert all(datetime.fromisoformat(r["started_at"]).second < 30 for r in done[1:])  # started on the minute


@pytest.mark.cores  # copies hundreds of MB and kills mid-way: never beside another such scenario
def test_labelled_containers_are_stopped_during_create_and_started_again_after_a_crash(sandbox, tmp_path):
    server = start_server(sandbox, ["web"])
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "head -c 400000000 /dev/urandom > /data/big.bin")
    stop = f"backup.stop={sandbox.prefix}"  # this scenario's alone: other scenarios run beside it on the same host
    sandbox.run("app", CLIENT_IMAGE, ["--label", stop, "-v", f"{web.data}:/data", "--entrypoint", "sh"],
                ["-c", "trap 'exit 0' TERM; while true; do sleep 1; done"])  # fmt: skip
    app = sandbox.name("app")
    # Dumps too only of this scenario's containers, not of the databases another scenario labelled.
    env = {"BACKUP_STOP_LABEL": stop, "BACKUP_DUMP_LABEL": f"{LABEL}={sandbox.prefix}", "BACKUP_CRON": "0 0 1 1 *"}

    # A manual run: the app is stopped while borg create copies, and runs again afterwards.
    run = client_command(sandbox, web, ["run"], env=env, extra=["-v", f"{SOCKET}:{SOCKET}"])
    assert run.returncode == 0, run.stderr
    assert f"stopping container {app}" in run.stderr and f"started container {app} again" in run.stderr
    report = json.loads(client_command(sandbox, web, ["status", "--json"]).stdout)["last_runs"][-1]
    state = json.loads(docker("inspect", "-f", "{{json .State}}", app).stdout)
    assert state["Running"]
    assert report["started_at"] <= state["FinishedAt"][:19] + "+00:00" <= report["finished_at"]

    # The sidecar is killed while the app is stopped and borg holds the repository lock.
    fill_volume(sandbox, web.data, "head -c 400000000 /dev/urandom > /data/big2.bin")
    sandbox.run("sidecar", CLIENT_IMAGE, [*web.options(env), "-v", f"{SOCKET}:{SOCKET}"], ["run"])
    sidecar = sandbox.name("sidecar")
    wait_until(lambda: not json.loads(docker("inspect", "-f", "{{json .State}}", app).stdout)["Running"], 60,
               "the app to be stopped")  # fmt: skip
    wait_until(lambda: server.exec("sh", "-c", "ls /srv/borg/web/main", check=False).stdout.count("lock.") > 0, 60,
               "borg create to hold the repository lock")  # fmt: skip
    # borg takes its cache lock a moment after the repository's: on a busy machine the kill came between them
    cache_lock = ["exec", sidecar, "sh", "-c", "ls -d /var/lib/borg-client/cache/*/lock.exclusive"]
    wait_until(lambda: docker(*cache_lock, check=False).returncode == 0, 60, "borg create to hold its cache lock")
    docker("kill", "-s", "KILL", sidecar)
    assert not json.loads(docker("inspect", "-f", "{{json .State}}", app).stdout)["Running"]

    # The next sidecar start (the scheduler) starts the app from the journal; the next backup just works.
    docker("rm", sidecar)
    sandbox.run("sidecar", CLIENT_IMAGE, [*web.options(env), "-v", f"{SOCKET}:{SOCKET}"])
    wait_until(lambda: json.loads(docker("inspect", "-f", "{{json .State}}", app).stdout)["Running"], 60,
               "the app to run again")  # fmt: skip
    after = client_command(sandbox, web, ["run"], env=env, extra=["-v", f"{SOCKET}:{SOCKET}"])
    assert after.returncode == 0, after.stderr
    assert "break-lock" not in after.stderr
    assert "left by a run that was killed" in after.stderr  # the dead run's cache lock, cleared by itself
    assert json.loads(docker("inspect", "-f", "{{json .State}}", app).stdout)["Running"]


@pytest.mark.cores  # copies hundreds of MB and kills mid-way: never beside another such scenario
def test_sigterm_during_create_leaves_a_checkpoint_and_an_interrupted_report(sandbox, tmp_path):
    server = start_server(sandbox, ["web"])
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "for n in $(seq 300); do head -c 2000000 /dev/urandom > /data/file-$n; done")
    sandbox.run("sidecar", CLIENT_IMAGE, web.options({"BACKUP_CRON": "0 0 1 1 *"}))
    sidecar = sandbox.name("sidecar")
    day_log = ["exec", sidecar, "sh", "-c", "cat /var/lib/borg-client/logs/*.log"]
    wait_until(
        lambda: "borg.files: A /backup/data/file-" in docker(*day_log, check=False).stdout,
        90,
        "borg create to copy files",
    )
    docker("stop", "-t", "120", sidecar)

    state = json.loads(docker("inspect", "-f", "{{json .State}}", sidecar).stdout)
    assert state["ExitCode"] == 0  # a clean exit, not a kill after the grace period
    output = docker("logs", sidecar).stderr
    assert "asking borg to write a checkpoint" in output
    assert "backup interrupted" in output
    listing = client_command(sandbox, web, ["borg-client", "borg", "list", "--consider-checkpoints", "--short"])
    assert ".checkpoint" in listing.stdout, listing.stdout + listing.stderr
