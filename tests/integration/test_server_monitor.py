"""The server's monitor: deletes, tampering, stale clients and failed checks become alerts that reach a
receiver; audit and compact make pruning safe."""

from __future__ import annotations

import json

from tests.harness.containers import CLIENT_IMAGE, docker, health, logs, wait_until
from tests.harness.stack import (
    alert_seen,
    client_command,
    fill_volume,
    make_client,
    received,
    repository_bytes,
    start_receiver,
    start_server,
)

FAST = {"MONITOR_INTERVAL": "10s"}  # the scenarios that wait for the monitor's own clock; others ask it to scan
RECEIVER_URL = "http://receiver:8080/alerts"


def metrics(sandbox, server, port: int) -> str:
    fetch = f"import urllib.request; print(urllib.request.urlopen('http://{server.container}:{port}/metrics').read().decode())"
    return sandbox.run("scrape", CLIENT_IMAGE, ["--network", server.network, "--entrypoint", "python3"],
                       ["-c", fetch], detach=False).stdout  # fmt: skip


def test_a_deleted_archive_is_alerted_and_cannot_be_compacted_away_before_it_is_acknowledged(sandbox, tmp_path):
    network = sandbox.network()
    receiver = start_receiver(sandbox, network)
    env = {"REPORT_URLS": RECEIVER_URL, "METRICS_PORT": "9100"}
    server = start_server(sandbox, ["web"], env=env, network=network)
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "head -c 6000000 /dev/urandom > /data/one.bin")
    assert client_command(sandbox, web, ["run"], env={"ARCHIVE_NAME": "first-{utcnow}"}).returncode == 0
    fill_volume(sandbox, web.data, "rm /data/one.bin && head -c 1000000 /dev/urandom > /data/two.bin")
    assert client_command(sandbox, web, ["run"], env={"ARCHIVE_NAME": "second-{utcnow}"}).returncode == 0
    server.exec("borg-server", "scan")

    # The client (or whoever holds its key) deletes the first archive: append-only only writes it down.
    deleted = client_command(sandbox, web, ["borg-client", "borg", "delete", "--glob-archives", "first-*"])
    assert deleted.returncode == 0, deleted.stderr
    server.exec("borg-server", "scan")
    alert = wait_until(lambda: alert_seen(server.container, "client_deletes", "raised"), 10, "the delete alert")
    assert alert["client"] == "web" and "borg-server audit web" in alert["message"]
    wait_until(lambda: received(receiver, "client_deletes", "raised"), 10, "the alert at the receiver")
    assert 'borg_appliance_client_unacknowledged_deletes{client="web"}' in metrics(sandbox, server, 9100)
    status = json.loads(server.exec("borg-server", "status", "--json").stdout)[0]
    assert status["unacknowledged_deletes"] >= 1 and status["alerts"] == ["client_deletes"]

    # The monitor's findings survive a restart: the alert is not sent again.
    scans = logs(server.container).count("scanned 1 clients")
    docker("restart", server.container)
    wait_until(lambda: health(server.container) == "healthy", 60, "the restarted server")
    server.exec("borg-server", "scan")
    wait_until(lambda: logs(server.container).count("scanned 1 clients") > scans, 10, "the scan in the log")
    assert len(received(receiver, "client_deletes", "raised")) == 1

    # Compaction would apply the delete for good: refused while it is unacknowledged.
    before = repository_bytes(server, "web")
    segments = server.exec("sh", "-c", "cd /srv/borg/web/main/data && find . -type f | xargs sha256sum").stdout
    refused = server.exec("borg-server", "compact", "web", check=False)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "refused: client web: " in refused.stdout and "unacknowledged delete(s)" in refused.stdout, refused.stdout
    assert "borg-server audit web" in refused.stdout
    assert server.exec("sh", "-c", "cd /srv/borg/web/main/data && find . -type f | xargs sha256sum").stdout == segments

    listing = server.exec("borg-server", "audit", "web").stdout
    assert "delete(s) not acknowledged" in listing and "append key" in listing, listing
    acknowledge = next(line.split() for line in listing.splitlines() if "--acknowledge" in line)
    assert server.exec(*acknowledge).returncode == 0
    server.exec("borg-server", "scan")
    wait_until(lambda: received(receiver, "client_deletes", "cleared"), 10, "the cleared alert at the receiver")

    compacted = server.exec("borg-server", "compact", "web")
    assert "check passed" in compacted.stdout, compacted.stdout + compacted.stderr
    assert repository_bytes(server, "web") < before - 4_000_000
    assert server.exec("ls", "-A", "/srv/borg/.snapshots/web").stdout == ""  # the snapshot is gone: space is free
    archives = client_command(sandbox, web, ["list", "--short"]).stdout.split()
    assert len(archives) == 1 and archives[0].startswith("second-")
    assert alert_seen(server.container, "tampering", "raised") is None  # compaction is not tampering


def test_a_delete_sent_while_a_compaction_waits_is_held_back_and_not_compacted_away(sandbox, tmp_path):
    server = start_server(sandbox, ["web"], env=FAST)
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "head -c 1000000 /dev/urandom > /data/one.bin")
    assert client_command(sandbox, web, ["run"]).returncode == 0

    # The attacker keeps one session open and, while the compaction waits for it, sends a delete.
    script = (
        'borg-client borg with-lock "$(cat /pairing/repo_url)" sleep 15 & '
        'sleep 8 && borg-client borg delete --glob-archives "web-*"; code=$?; wait; exit $code'
    )
    sandbox.run("attacker", CLIENT_IMAGE, [*web.options(), "--entrypoint", "sh"], ["-c", script])
    wait_until(lambda: "borg serve" in server.exec("ps", "-eo", "args", check=False).stdout, 30, "the open session")

    compacted = server.exec("borg-server", "compact", "web")  # waits for the session, then holds new ones back
    assert "check passed" in compacted.stdout, compacted.stdout + compacted.stderr
    assert docker("wait", sandbox.name("attacker")).stdout.strip() == "0"
    assert "the server is compacting this repository; this session waits" in logs(sandbox.name("attacker"))

    listing = json.loads(server.exec("borg-server", "audit", "web", "--json").stdout)
    assert listing["unacknowledged"] >= 1  # the delete came after the compaction: it is still only written down
    refused = server.exec("borg-server", "compact", "web", check=False)
    assert refused.returncode == 3


def test_a_changed_segment_raises_a_tampering_alert_and_the_repository_check_fails(sandbox, tmp_path):
    server = start_server(sandbox, ["web"], env={**FAST, "MONITOR_CHECK_INTERVAL": "20s"})
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "head -c 2000000 /dev/urandom > /data/random.bin")
    assert client_command(sandbox, web, ["run"]).returncode == 0
    largest = "import glob, os; print(max(glob.glob('/srv/borg/web/main/data/*/*'), key=os.path.getsize))"
    path = server.exec("python3", "-c", largest).stdout.strip()
    state = "/var/lib/borg-server/monitor/clients/web.json"

    def baseline() -> dict:
        return json.loads(server.exec("cat", state, check=False).stdout or "{}").get("segments", {})

    server.exec("borg-server", "scan")
    assert path.rsplit("/", 1)[1] in baseline()  # the monitor has seen the segment

    # Someone on the server flips one byte inside the largest committed segment.
    flip = f"f = open('{path}', 'r+b'); f.seek(1000); byte = f.read(1); f.seek(1000); f.write(bytes([byte[0] ^ 0xFF]))"
    server.exec("python3", "-c", flip)
    server.exec("borg-server", "scan")
    alert = wait_until(lambda: alert_seen(server.container, "tampering", "raised"), 10, "the tampering alert")
    assert "changed" in alert["message"] and alert["details"]["changed"], logs(server.container)
    failed = wait_until(lambda: alert_seen(server.container, "check_failed", "raised"), 120, "the failed check")
    assert "borg check --repository-only failed" in failed["message"]
    status = json.loads(server.exec("borg-server", "status", "--json").stdout)[0]
    assert status["last_check"] == "failed" and status["tampered_segments"] == 1


def test_a_client_without_backups_is_stale_and_alerts_wait_for_a_receiver_that_was_down(sandbox, tmp_path):
    network = sandbox.network()
    env = {**FAST, "REPORT_URLS": RECEIVER_URL, "BORG_CLIENT_WEB_MAX_AGE": "1m"}
    server = start_server(sandbox, ["web"], env=env, network=network)
    web = make_client(sandbox, server, "web", tmp_path)
    alert = wait_until(lambda: alert_seen(server.container, "stale", "raised"), 120, "the stale alert")
    assert "client web: no backup for" in alert["message"] and "never backed up" in alert["message"]
    pending = server.exec("ls", "/var/lib/borg-server/monitor/outbox").stdout.split()
    assert len(pending) == 1  # the receiver is not there yet: the alert waits on disk

    receiver = start_receiver(sandbox, network)
    wait_until(lambda: received(receiver, "stale", "raised"), 60, "the stale alert at the receiver")

    fill_volume(sandbox, web.data, "echo one > /data/file")
    assert client_command(sandbox, web, ["run"]).returncode == 0
    wait_until(lambda: received(receiver, "stale", "cleared"), 60, "the cleared alert at the receiver")
    assert len(received(receiver, "stale", "raised")) == 1  # once per condition
    assert server.exec("ls", "-A", "/var/lib/borg-server/monitor/outbox").stdout.split() == []
    assert docker("inspect", "-f", "{{.State.Running}}", server.container).stdout.strip() == "true"


def test_a_repository_above_nine_tenths_of_its_quota_raises_a_quota_alert(sandbox, tmp_path):
    server = start_server(sandbox, ["web"], env={"BORG_CLIENT_WEB_QUOTA": "12M"})
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "head -c 11300000 /dev/urandom > /data/random.bin")
    assert client_command(sandbox, web, ["run"]).returncode == 0
    server.exec("borg-server", "scan")
    alert = wait_until(lambda: alert_seen(server.container, "quota", "raised"), 10, "the quota alert")
    assert (
        alert["message"].startswith("client web: repository uses 9") and alert["details"]["quota_bytes"] == 12_000_000
    )
