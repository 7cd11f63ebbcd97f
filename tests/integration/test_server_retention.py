"""Retention on the server: the admin's prune compacts by itself after COMPACT_DELAY; a delete by the
append-only key holds every automatic compaction back until it is acknowledged."""

from __future__ import annotations

import json
import re

from tests.harness.containers import CLIENT_IMAGE, logs, wait_until
from tests.harness.stack import (
    client_command,
    fill_volume,
    make_client,
    monitor_documents,
    repository_bytes,
    scrape_metrics,
    start_receiver,
    start_server,
)

ADMIN_ENV = (
    'export BORG_RSH="ssh -i /admin/id_ed25519 -o UserKnownHostsFile=/pairing/known_hosts '
    '-o StrictHostKeyChecking=yes -o BatchMode=yes" BORG_REPO=$(cat /pairing/repo_url) '
    'BORG_PASSCOMMAND="cat /run/secrets/borg_passphrase" BORG_KEYS_DIR=/var/lib/borg-client/keys '
    "BORG_SECURITY_DIR=/tmp/security BORG_CACHE_DIR=/tmp/cache BORG_EXIT_CODES=modern && "
)


alerts = monitor_documents  # (container, alert, state) -> the documents the monitor printed


def status(server) -> dict:
    return json.loads(server.exec("borg-server", "status", "--json").stdout)[0]


def metric(text: str, name: str) -> int | None:
    """Return the value of borg_appliance_client_<name> for client web in the metrics text (None: no sample)."""
    found = re.search(rf'^borg_appliance_client_{name}{{client="web"}} (\d+)$', text, re.MULTILINE)
    return int(found[1]) if found else None


def test_the_admins_prune_compacts_by_itself_and_a_delete_by_the_append_key_holds_it_back(sandbox, tmp_path):
    keys = sandbox.volume("admin-key")
    sandbox.run("keygen", CLIENT_IMAGE, ["-v", f"{keys}:/admin", "--entrypoint", "ssh-keygen"],
                ["-q", "-t", "ed25519", "-N", "", "-C", "admin", "-f", "/admin/id_ed25519"], detach=False)  # fmt: skip
    admin_public = sandbox.run("cat", CLIENT_IMAGE, ["-v", f"{keys}:/admin", "--entrypoint", "cat"],
                               ["/admin/id_ed25519.pub"], detach=False).stdout.strip()  # fmt: skip
    network = sandbox.network()
    receiver = start_receiver(sandbox, network)
    env = {"BORG_CLIENT_WEB_ADMIN_KEY": admin_public, "MONITOR_INTERVAL": "10s", "COMPACT_DELAY": "10s",
           "SNAPSHOT_KEEP": "20s", "REPORT_URLS": "http://receiver:8080/alerts", "METRICS_PORT": "9100"}  # fmt: skip
    server = start_server(sandbox, ["web"], env=env, network=network)
    web = make_client(sandbox, server, "web", tmp_path)

    def backup(name: str, megabytes: int) -> None:
        fill_volume(sandbox, web.data, f"rm -f /data/* && head -c {megabytes}000000 /dev/urandom > /data/{name}.bin")
        assert client_command(sandbox, web, ["run"], env={"ARCHIVE_NAME": f"{name}-{{utcnow}}"}).returncode == 0

    def admin(script: str) -> None:
        options = [*web.options(), "-v", f"{keys}:/admin:ro", "--entrypoint", "sh"]
        done = sandbox.run("admin", CLIENT_IMAGE, options, ["-c", ADMIN_ENV + script], detach=False, check=False)
        assert done.returncode == 0, done.stderr

    def pending_in_metrics() -> str | None:
        text = scrape_metrics(sandbox, server, 9100)
        return text if metric(text, "pending_admin_deletes") else None

    def archives() -> list[str]:
        return [name.split("-")[0] for name in client_command(sandbox, web, ["list", "--short"]).stdout.split()]

    backup("first", 5)
    backup("second", 1)
    before = repository_bytes(server, "web")

    # The admin prunes with its own key and does not compact: the server compacts by itself.
    admin("borg prune --keep-last 1")
    event = wait_until(lambda: next(iter(alerts(server.container, "compacted", "event")), None), 60, "a compaction")
    assert repository_bytes(server, "web") < before - 4_000_000
    assert event["details"]["bytes_freed"] > 4_000_000 and event["details"]["admin_deletes"] >= 1, event
    assert archives() == ["second"]
    assert len(alerts(server.container, "deletes", "raised")) == 1  # the admin's deletes were shown first
    figures = status(server)
    assert figures["auto_compact"] == "admin" and figures["last_compaction_freed_bytes"] > 4_000_000, figures
    snapshot, until = event["details"]["snapshot"], event["details"]["snapshot_kept_until"]
    assert event["message"].endswith(f"check passed; snapshot {snapshot} kept until {until}"), event
    sent = wait_until(lambda: [e["body"] for e in receiver.accepted() if e["body"]["alert"] == "compacted"], 30,
                      "the compaction event at the receiver")  # fmt: skip
    assert [(e["state"], e["client"], e["details"]) for e in sent] == [("event", "web", event["details"])]
    wait_until(lambda: server.exec("ls", "-A", "/srv/borg/.snapshots/web").stdout == "", 60, "the snapshot expired")
    assert f"snapshot {snapshot} removed" in logs(server.container)

    # The append-only key deletes an archive, the admin prunes again: nothing compacts by itself.
    backup("third", 3)
    backup("fourth", 1)
    deleted = client_command(sandbox, web, ["borg-client", "borg", "delete", "--glob-archives", "second-*"])
    assert deleted.returncode == 0, deleted.stderr
    admin("borg prune --keep-last 1")
    server.exec("borg-server", "scan")  # the compaction's delay is waited out above; here nothing may compact
    held = wait_until(lambda: status(server)["compaction_blocked"], 60, "the automatic compaction held back")
    assert "not written by an admin session; review them with borg-server audit web" in held, held
    wait_until(lambda: status(server)["pending_admin_deletes"], 60, "the admin's deletes counted as pending")
    shown = wait_until(pending_in_metrics, 60, "the pending admin deletes in the metrics")
    assert (metric(shown, "auto_compact"), metric(shown, "compaction_blocked")) == (1, 1), shown
    assert metric(shown, "next_compaction_timestamp_seconds") is None, shown
    assert metric(shown, "last_compaction_freed_bytes") == figures["last_compaction_freed_bytes"], shown
    wait_until(lambda: alerts(server.container, "deletes", "raised")[1:], 30, "the deletes alert again")
    server.exec("borg-server", "scan")
    server.exec("borg-server", "scan")  # two more scans, and still no compaction
    assert len(alerts(server.container, "compacted", "event")) == 1
    assert status(server)["next_compaction_at"] is None
    held_bytes = repository_bytes(server, "web")

    # Once the admin acknowledges the append key's delete, the next compaction applies both.
    listing = server.exec("borg-server", "audit", "web").stdout
    assert "append key" in listing and "admin key" in listing, listing
    acknowledge = next(line.split() for line in listing.splitlines() if "--acknowledge" in line)
    assert server.exec(*acknowledge).returncode == 0
    second = wait_until(lambda: alerts(server.container, "compacted", "event")[1:], 60, "the second compaction")[0]
    assert repository_bytes(server, "web") < held_bytes - 3_000_000, second
    assert archives() == ["fourth"]
    assert status(server)["compaction_blocked"] is None
    assert alerts(server.container, "tampering", "raised") == []  # compaction is not tampering
