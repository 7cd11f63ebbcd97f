"""An unexpected error in a run (a Docker socket that does not answer) still ends in a failure report,
and the sidecar's scheduler goes on to the next run."""

from __future__ import annotations

import json

from tests.harness.containers import CLIENT_IMAGE, docker, health, logs, wait_until
from tests.harness.stack import fill_volume, make_client, start_receiver, start_server

SOCKET = "/var/run/docker.sock"


def test_a_docker_socket_that_does_not_answer_ends_in_a_failure_report_and_the_schedule_goes_on(sandbox, tmp_path):
    server = start_server(sandbox, ["web"])
    receiver = start_receiver(sandbox, server.network)
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "echo one > /data/file")

    # The socket path exists (so the settings are accepted) but is an empty file, not a Docker daemon:
    # every call through it is refused, the first one after the run started (its /start ping went out) when it
    # looks for containers to dump, before any labelled container is stopped.
    not_docker = tmp_path / "docker.sock"
    not_docker.write_text("")
    env = {"BACKUP_STOP_LABEL": "backup.stop=web", "BACKUP_CRON": "0 0 1 1 *", "REPORT_URLS": receiver.url,
           "HEALTHCHECKS_URL": "http://receiver:8080/ping/abc", "RETRY_DELAYS": "0"}  # fmt: skip
    sandbox.run("sidecar", CLIENT_IMAGE, [*web.options(env), "-v", f"{not_docker}:{SOCKET}:ro"])
    sidecar = sandbox.name("sidecar")

    def reports() -> list[dict]:
        return [entry["body"] for entry in receiver.accepted() if entry["path"] == "/report"]

    first = wait_until(reports, 120, "the report of the catch-up run at start")[0]
    assert first["status"] == "failure", first
    assert first["message"].startswith("unexpected error: DockerException: Error while fetching server API version")
    assert first["client"] == "web" and first["borg_rc"] is None and first["archive"] is None
    assert first["stopped_containers"] == [] and first["log_tail"] == [first["message"]]
    pings = [entry["path"] for entry in receiver.accepted() if entry["path"].startswith("/ping/")]
    assert pings[:2] == ["/ping/abc/start", "/ping/abc/fail"]
    output = logs(sidecar)
    assert "the run failed unexpectedly" in output and "Traceback" in output
    assert "backing up" not in output  # borg create never started

    # The scheduler did not end with the run: it waits for the next one, which (brought forward by SIGUSR1)
    # fails the same way and reports it too.
    wait_until(lambda: "next backup at" in logs(sidecar).split("the run failed unexpectedly", 1)[1], 30, "the wait")
    docker("kill", "--signal", "USR1", sidecar)
    later = wait_until(lambda: reports()[1:], 60, "the report of the next scheduled run")[0]
    assert later["status"] == "failure" and later["run_id"] != first["run_id"]
    assert later["message"].startswith("unexpected error: DockerException: ")
    assert health(sidecar) != "exited", logs(sidecar)
    assert "SIGUSR1: the backup now instead of at " in logs(sidecar)
    journal = json.loads(docker("exec", sidecar, "cat", "/var/lib/borg-client/runs.json").stdout)
    recorded = {run["run_id"]: run["status"] for run in journal}
    assert recorded[first["run_id"]] == recorded[later["run_id"]] == "failure"
