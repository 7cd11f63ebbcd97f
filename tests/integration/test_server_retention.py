"""Retention on the server: the admin's prune compacts by itself after COMPACT_DELAY; a delete by the
append-only key holds every automatic compaction back until it is acknowledged, and is its own alert; deletes
of the admin key that no retention policy makes (every archive) wait for a person."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from tests.harness.containers import CLIENT_IMAGE, logs, wait_until
from tests.harness.stack import (
    alert_seen,
    client_command,
    fill_volume,
    make_client,
    monitor_documents,
    received,
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


def retention_stack(sandbox, tmp_path, env: dict[str, str]) -> SimpleNamespace:
    """Start a server with an admin key for client web (and env), a receiver, and the web sidecar; return them
    with backup(name, megabytes), admin(script) and archives() (the names' first words)."""
    keys = sandbox.volume("admin-key")
    sandbox.run("keygen", CLIENT_IMAGE, ["-v", f"{keys}:/admin", "--entrypoint", "ssh-keygen"],
                ["-q", "-t", "ed25519", "-N", "", "-C", "admin", "-f", "/admin/id_ed25519"], detach=False)  # fmt: skip
    admin_public = sandbox.run("cat", CLIENT_IMAGE, ["-v", f"{keys}:/admin", "--entrypoint", "cat"],
                               ["/admin/id_ed25519.pub"], detach=False).stdout.strip()  # fmt: skip
    network = sandbox.network()
    receiver = start_receiver(sandbox, network)
    env = {"BORG_CLIENT_WEB_ADMIN_KEY": admin_public, "REPORT_URLS": "http://receiver:8080/alerts"} | env
    server = start_server(sandbox, ["web"], env=env, network=network)
    web = make_client(sandbox, server, "web", tmp_path)

    def backup(name: str, megabytes: int) -> None:
        fill_volume(sandbox, web.data, f"rm -f /data/* && head -c {megabytes}000000 /dev/urandom > /data/{name}.bin")
        assert client_command(sandbox, web, ["run"], env={"ARCHIVE_NAME": f"{name}-{{utcnow}}"}).returncode == 0

    def admin(script: str) -> None:
        options = [*web.options(), "-v", f"{keys}:/admin:ro", "--entrypoint", "sh"]
        done = sandbox.run("admin", CLIENT_IMAGE, options, ["-c", ADMIN_ENV + script], detach=False, check=False)
        assert done.returncode == 0, done.stderr

    def archives() -> list[str]:
        return [name.split("-")[0] for name in client_command(sandbox, web, ["list", "--short"]).stdout.split()]

    return SimpleNamespace(server=server, web=web, receiver=receiver, backup=backup, admin=admin, archives=archives)


def writers(server, kind: str) -> list[str]:
    """Return the key fingerprints of the sessions `borg-server audit web --json` names for the delete groups whose
    sessions are all of role kind."""
    groups = json.loads(server.exec("borg-server", "audit", "web", "--json").stdout)["deletes"]
    found = {s["fingerprint"] for g in groups if g["sessions"] and {s["role"] for s in g["sessions"]} == {kind}
             for s in g["sessions"]}  # fmt: skip
    return sorted(found)


def test_the_admins_prune_compacts_by_itself_and_a_delete_by_the_append_key_holds_it_back(sandbox, tmp_path):
    stack = retention_stack(sandbox, tmp_path, {"MONITOR_INTERVAL": "10s", "COMPACT_DELAY": "10s",
                                                "SNAPSHOT_KEEP": "20s", "METRICS_PORT": "9100"})  # fmt: skip
    server, web, receiver, backup, admin, archives = (
        stack.server, stack.web, stack.receiver, stack.backup, stack.admin, stack.archives
    )  # fmt: skip

    def pending_in_metrics() -> str | None:
        text = scrape_metrics(sandbox, server, 9100)
        return text if metric(text, "pending_admin_deletes") else None

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


def test_an_admin_prune_says_so_and_a_delete_by_the_append_key_is_its_own_alert_naming_audit_and_roll_back(
    sandbox, tmp_path
):
    stack = retention_stack(sandbox, tmp_path, {"AUTO_COMPACT": "off"})
    server, web = stack.server, stack.web
    for name in ("first", "second", "third"):
        stack.backup(name, 1)

    # The nightly prune with the admin key: the deletes alert names the admin key, in its usual words.
    stack.admin("borg prune --keep-last 2")
    server.exec("borg-server", "scan")
    admin_alert = wait_until(lambda: alert_seen(server.container, "deletes", "raised"), 30, "the deletes alert")
    [admin_key] = writers(server, "admin")
    details = admin_alert["details"]
    assert admin_alert["message"] == (
        f"client web: {details['count']} object(s) deleted in segments {details['first_segment']}.."
        f"{details['last_segment']} by the admin key {admin_key} (a prune); "
        "see borg-server audit web before any compaction"
    )
    assert details["keys"] == [admin_key] and details["count"] >= 1
    assert alert_seen(server.container, "client_deletes", "raised") is None

    # The client's key renames an archive, as the sidecar does to the archive of a failed dump: listed, no alert.
    third = client_command(sandbox, web, ["list", "--short"]).stdout.split()[-1]
    renamed = client_command(sandbox, web, ["borg-client", "borg", "rename", f"::{third}", f"{third}.checkpoint"])
    assert renamed.returncode == 0, renamed.stderr
    server.exec("borg-server", "scan")
    assert "1 rename" in server.exec("borg-server", "audit", "web").stdout
    assert alert_seen(server.container, "client_deletes", "raised") is None

    # The client's own append-only key deletes an archive (borg accepts it; the data stays): the louder alert.
    deleted = client_command(sandbox, web, ["borg-client", "borg", "delete", "--glob-archives", "second-*"])
    assert deleted.returncode == 0, deleted.stderr
    server.exec("borg-server", "scan")
    loud = wait_until(lambda: alert_seen(server.container, "client_deletes", "raised"), 30, "the client_deletes alert")
    [append_key] = writers(server, "append")
    details = loud["details"]
    assert loud["message"] == (
        f"client web: {details['count']} object(s) deleted in segments {details['first_segment']}.."
        f"{details['last_segment']} by the client's own append-only key {append_key}, not by the admin key: the "
        "client's own key only ever adds backups, so the client may be compromised. Nothing is lost yet "
        "(append-only: the data stays until a compaction, and nothing compacts by itself). Next: see what was "
        "deleted with borg-server audit web; if nobody meant to, roll back as "
        "docs/how-to/roll-back-a-compromised-client.md says and replace the client's key; "
        "if someone did, acknowledge it as the audit says"
    )
    assert append_key != admin_key and details["count"] >= 1
    wait_until(lambda: received(stack.receiver, "client_deletes", "raised"), 30, "the loud alert at the receiver")
    assert len(monitor_documents(server.container, "deletes", "raised")) == 1  # the prune's alert is not sent again
    assert status(server)["alerts"] == ["client_deletes", "deletes"]


def test_the_admin_key_deleting_every_archive_waits_for_a_person_while_a_normal_prune_compacts_by_itself(
    sandbox, tmp_path
):
    stack = retention_stack(sandbox, tmp_path, {"MONITOR_INTERVAL": "10s", "COMPACT_DELAY": "10s"})
    server = stack.server
    for name in ("first", "second", "third"):
        stack.backup(name, 2)

    # A normal prune (the oldest archive) compacts by itself after COMPACT_DELAY.
    stack.admin("borg prune --keep-last 2")
    wait_until(lambda: monitor_documents(server.container, "compacted", "event"), 90, "the normal prune compacted")
    assert stack.archives() == ["second", "third"]

    # A stolen admin key deletes every archive: nothing compacts, and the alert says a person must decide.
    stack.admin("borg delete --glob-archives '*'")
    server.exec("borg-server", "scan")
    held = wait_until(lambda: alert_seen(server.container, "compaction_held", "raised"), 30, "the held alert")
    deleted_at = datetime.now(UTC)
    pending = status(server)["pending_admin_deletes"]
    segments = json.loads(server.exec("borg-server", "audit", "web", "--json").stdout)["deletes"]
    first, last = segments[0]["segment"], segments[-1]["segment"]
    assert held["message"] == (
        f"client web: the automatic compaction waits for a person: the admin key's {pending} delete(s) in segments "
        f"{first}..{last} take every archive (2), which a normal retention policy never does; nothing compacts "
        "until a person decides. If you ran them, approve them with borg-server audit web (it prints the "
        "--acknowledge command; they compact COMPACT_DELAY later). If not, the admin key may be stolen: do not "
        "compact, roll back as docs/how-to/roll-back-a-compromised-client.md says and replace the admin key"
    )
    wait_until(lambda: received(stack.receiver, "compaction_held", "raised"), 30, "the held alert at the receiver")
    held_bytes = repository_bytes(server, "web")

    # COMPACT_DELAY (10s) passes and the monitor scans on: still nothing compacted (the timing is what is proven).
    scans = logs(server.container).count("scanned 1 clients")

    def delay_over_and_scanned() -> bool:
        scanned = logs(server.container).count("scanned 1 clients") >= scans + 2
        return scanned and datetime.now(UTC) > deleted_at + timedelta(seconds=25)

    wait_until(delay_over_and_scanned, 90, "two scans after COMPACT_DELAY")
    assert len(monitor_documents(server.container, "compacted", "event")) == 1
    assert repository_bytes(server, "web") == held_bytes
    assert status(server)["compaction_blocked"] == held["message"].split("waits for a person: ", 1)[1]

    # The person approves (acknowledges the listed deletes): they compact COMPACT_DELAY later, the alert clears.
    listing = server.exec("borg-server", "audit", "web").stdout
    acknowledge = next(line.split() for line in listing.splitlines() if "--acknowledge" in line)
    assert server.exec(*acknowledge).returncode == 0
    wait_until(lambda: monitor_documents(server.container, "compacted", "event")[1:], 90, "the approved compaction")
    assert repository_bytes(server, "web") < held_bytes - 3_000_000
    assert alert_seen(server.container, "compaction_held", "cleared") is not None
