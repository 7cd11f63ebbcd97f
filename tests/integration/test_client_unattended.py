"""The sidecar unattended: a failed run is retried soon, not a day later; a sidecar started before its server waits."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from tests.harness.containers import CLIENT_IMAGE, docker, health, logs, wait_until
from tests.harness.stack import (
    client_command,
    fill_volume,
    make_client,
    planned_server,
    start_planned,
    start_server,
)


def runs(sidecar: str) -> list[dict]:
    result = docker("exec", sidecar, "cat", "/var/lib/borg-client/runs.json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else []


def state(container: str) -> dict:
    return json.loads(docker("inspect", "-f", "{{json .}}", container).stdout)


def test_a_server_stopped_across_a_scheduled_time_is_backed_up_by_the_first_retry(sandbox, tmp_path):
    server = start_server(sandbox, ["web"])
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "echo one > /data/file")
    sandbox.run("sidecar", CLIENT_IMAGE, web.options({"BACKUP_CRON": "0 0 1 1 *", "RETRY_DELAYS": "30s 20s"}))
    sidecar = sandbox.name("sidecar")
    wait_until(lambda: [r for r in runs(sidecar) if r["status"] == "success"], 90, "the catch-up backup at start")
    wait_until(lambda: "next backup at" in logs(sidecar), 30, "the scheduler to wait for its next run")

    # The server goes away (an image upgrade); the next scheduled run (brought forward by SIGUSR1) fails.
    docker("stop", "-t", "2", server.container)
    docker("kill", "--signal", "USR1", sidecar)
    failed = wait_until(lambda: [r for r in runs(sidecar) if r["status"] == "failure"], 90, "the failed run")[0]
    assert failed["attempt"] == 1
    assert failed["message"].startswith("cannot reach the backup server")
    docker("start", server.container)

    # The retry comes 30 s after the failure, not at the next scheduled time, and makes the backup.
    retried = wait_until(lambda: [r for r in runs(sidecar) if r.get("attempt") == 2], 90, "the retry")[0]
    assert retried["status"] == "success", retried["message"]
    finished = datetime.fromisoformat(failed["finished_at"])
    started = datetime.fromisoformat(retried["started_at"])
    assert timedelta(seconds=29) <= started - finished <= timedelta(seconds=35)
    assert retried["archive"] in client_command(sandbox, web, ["list", "--short"]).stdout.split()
    assert "attempt 1 failed; retrying at" in logs(sidecar)


def test_a_sidecar_started_before_its_server_waits_and_then_makes_its_first_backup(sandbox, tmp_path):
    server = planned_server(sandbox, ["web"])
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "echo one > /data/file")
    # An orchestrator without a start order: the pairing volume is still empty, and there is no server.
    sandbox.run("sidecar", CLIENT_IMAGE, ["--restart", "on-failure", *web.options()])
    sidecar = sandbox.name("sidecar")
    wait_until(lambda: "waiting for the pairing export" in logs(sidecar), 30, "the sidecar to say it waits")
    assert "waiting for the pairing export: BORG_REPO: not set, and no pairing export in /pairing" in logs(sidecar)
    probe = docker("exec", sidecar, "borg-client", "healthcheck", check=False)
    assert (probe.returncode, probe.stdout) == (0, "starting: waiting for the pairing export in /pairing\n")
    assert health(sidecar) in ("starting", "healthy")

    start_planned(sandbox, server)
    done = wait_until(lambda: [r for r in runs(sidecar) if r["status"] == "success"], 120, "the first backup")[0]
    assert done["client"] == "web"
    assert done["archive"] in client_command(sandbox, web, ["list", "--short"]).stdout.split()
    after = state(sidecar)
    assert after["State"]["Running"] and after["RestartCount"] == 0
    probe = docker("exec", sidecar, "borg-client", "healthcheck", check=False)
    assert probe.returncode == 0, probe.stdout
