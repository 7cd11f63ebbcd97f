"""Reports of sidecar runs reach real receivers: retried, kept while a receiver is down, never twice."""

from __future__ import annotations

import json
import time

from tests.harness.containers import CLIENT_IMAGE, docker, wait_until
from tests.harness.stack import client_command, fill_volume, make_client, start_receiver, start_server

REPORT_FIELDS = {"run_id", "client", "archive", "status", "started_at", "finished_at", "duration_s", "borg_rc",
                 "stats", "stopped_containers", "log_tail"}  # fmt: skip


def test_a_report_retried_after_two_server_errors_is_accepted_exactly_once(sandbox, tmp_path):
    server = start_server(sandbox, ["web"])
    receiver = start_receiver(sandbox, server.network, responses="500,500,200")
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "echo one > /data/file")

    run = client_command(sandbox, web, ["run"], env={"REPORT_URLS": receiver.url})
    assert run.returncode == 0, run.stderr
    assert len(receiver.posts()) == 3
    accepted = receiver.accepted()
    assert len(accepted) == 1
    report = accepted[0]["body"]
    assert REPORT_FIELDS <= report.keys()
    assert report["status"] == "success" and report["client"] == "web" and report["borg_rc"] == 0
    assert report["stats"]["nfiles"] == 1 and report["stats"]["original_size"] > 0
    assert report["archive"].startswith("web-")
    assert run.stderr.count("retrying") == 2, run.stderr  # each retry is logged
    assert receiver.posts()[-1].endswith(report["run_id"])  # the Idempotency-Key header


def test_reports_wait_while_the_receiver_is_down_and_all_arrive_once_it_is_up(sandbox, tmp_path):
    server = start_server(sandbox, ["web"])
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "echo one > /data/file")
    env = {"REPORT_URLS": "http://receiver:8080/report", "REPORT_TIMEOUT": "2s"}
    for _ in range(3):
        assert client_command(sandbox, web, ["run"], env=env).returncode == 0  # a dead receiver fails nothing
    waiting = json.loads(client_command(sandbox, web, ["status", "--json"]).stdout)["reports_waiting"]
    assert waiting == 3

    receiver = start_receiver(sandbox, server.network)
    assert client_command(sandbox, web, ["run"], env=env).returncode == 0
    run_ids = [entry["body"]["run_id"] for entry in receiver.accepted()]
    assert len(run_ids) == 4 and len(set(run_ids)) == 4  # the three old ones, oldest first, and the new one
    started = [entry["body"]["started_at"] for entry in receiver.accepted()]
    assert started == sorted(started)
    assert json.loads(client_command(sandbox, web, ["status", "--json"]).stdout)["reports_waiting"] == 0


def test_a_hanging_receiver_is_cut_off_by_the_timeout_and_the_backup_still_succeeds(sandbox, tmp_path):
    server = start_server(sandbox, ["web"])
    receiver = start_receiver(sandbox, server.network, responses="hang,hang,hang,hang,hang")
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "echo one > /data/file")
    started = time.monotonic()
    run = client_command(sandbox, web, ["run"], env={"REPORT_URLS": receiver.url, "REPORT_TIMEOUT": "2s"})
    assert run.returncode == 0
    assert time.monotonic() - started < 90
    assert "backup success" in run.stderr
    status = json.loads(client_command(sandbox, web, ["status", "--json"]).stdout)
    assert status["last_runs"][-1]["status"] == "success" and status["reports_waiting"] == 1


def test_healthchecks_pings_start_and_success_or_fail_with_the_log_tail(sandbox, tmp_path):
    server = start_server(sandbox, ["web"])
    receiver = start_receiver(sandbox, server.network)
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "echo one > /data/file")
    ping = "http://receiver:8080/ping/abc"
    assert client_command(sandbox, web, ["run"], env={"HEALTHCHECKS_URL": ping}).returncode == 0
    failing = {"HEALTHCHECKS_URL": ping, "BORG_REPO": f"ssh://borg@{server.container}:22/srv/borg/other"}
    assert client_command(sandbox, web, ["run"], env=failing).returncode == 2
    paths = [entry["path"] for entry in receiver.accepted()]
    assert paths == ["/ping/abc/start", "/ping/abc", "/ping/abc/start", "/ping/abc/fail"]
    assert "borg create failed" in receiver.accepted()[-1]["body"]
    assert "[PathNotAllowed]" in receiver.accepted()[-1]["body"]


def test_the_passphrase_appears_in_no_log_report_or_inspect_output(sandbox, tmp_path):
    server = start_server(sandbox, ["web"])
    receiver = start_receiver(sandbox, server.network)
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "echo one > /data/file")
    passphrase = web.passphrase_file.read_text().strip()
    tokens = ("report-path-token", "ping-uuid-token")  # URL paths are secrets too, shown nowhere even at DEBUG
    urls = {"REPORT_URLS": f"{receiver.url}/{tokens[0]}", "HEALTHCHECKS_URL": f"http://receiver:8080/{tokens[1]}"}
    options = [*web.options({**urls, "LOG_LEVEL": "DEBUG", "BACKUP_CRON": "0 0 1 1 *"})]
    sandbox.run("sidecar", CLIENT_IMAGE, options)
    sidecar = sandbox.name("sidecar")
    wait_until(lambda: [e for e in receiver.accepted() if isinstance(e["body"], dict)], 120, "the first report")
    check_config = docker("exec", sidecar, "borg-client", "check-config").stdout
    day_logs = docker("exec", sidecar, "sh", "-c", "cat /var/lib/borg-client/logs/*.log").stdout
    seen = {
        "docker logs": docker("logs", sidecar).stdout + docker("logs", sidecar).stderr,
        "docker inspect": docker("inspect", sidecar).stdout,
        "report": json.dumps(receiver.accepted()),
        "check-config": check_config,
        "day log": day_logs,
        "server logs": docker("logs", server.container).stderr + docker("logs", server.container).stdout,
    }
    assert "backing up /backup/data" in seen["docker logs"]  # the logs were captured for real
    for where, text in seen.items():
        assert passphrase not in text, where
    seen["report"] = json.dumps([entry["body"] for entry in receiver.accepted()])  # the paths are the receiver's
    del seen["docker inspect"]  # shows the environment the user gave, URLs and all
    assert "DEBUG" in seen["docker logs"]
    assert json.loads(check_config)["report_urls"] == "('http://receiver:8080/…',)"
    for where, text in seen.items():
        assert not any(token in text for token in tokens), where
