"""Replication: a replica pulls every repository from the primary, keeps tampering out, and restores a lost primary."""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from datetime import UTC, datetime, timedelta
from html import escape

from tests.harness.containers import CLIENT_IMAGE, SERVER_IMAGE, docker, health, logs, wait_until
from tests.harness.notifiers import start_ntfy
from tests.harness.stack import (
    SSH,
    Server,
    alert_seen,
    alerts_logged,
    attack,
    client_command,
    fill_volume,
    make_client,
    received,
    scrape_metrics,
    start_receiver,
    start_server,
)

KEEP = 20  # REPLICA_KEEP_REMOVED of the scenario, in seconds
FROM_REPLICA = {"RESTORE_FROM_REPLICA": "yes"}  # the sidecar reads from a replica (docs/how-to/primary-lost.md)
FUSE = ["--device", "/dev/fuse", "--cap-add", "SYS_ADMIN", "--security-opt", "apparmor=unconfined"]

# The committed segments of app's repository (number -> sha256), read with the server's own segment module.
COMMITTED = (
    "import json, sys; sys.path.insert(0, '/opt/borg-appliance'); from borg_server.repository import segments; "
    "r = '/srv/borg/app/main'; last = segments.last_commit(r); "
    "print(json.dumps({n: segments.fingerprint(p).sha256 for n, p in segments.segment_files(r).items() if n <= last}))"
)
# Flips one byte in the middle of the largest committed segment; prints its number.
FLIP = (
    "import sys; sys.path.insert(0, '/opt/borg-appliance'); from borg_server.repository import segments; "
    "files = segments.segment_files('/srv/borg/app/main'); n = max(files, key=lambda n: files[n].stat().st_size); "
    "f = open(files[n], 'r+b'); f.seek(files[n].stat().st_size // 2); b = f.read(1); f.seek(-1, 1); "
    "f.write(bytes([b[0] ^ 1])); f.close(); print(n)"
)

# Run with the replica key (its export at /pairing): what an attacker holding it would try.
ATTACK = """
import json, subprocess, sys
ssh, host = sys.argv[1].split(), sys.argv[2]
def session(payload, *extra, user="replica"):
    done = subprocess.run(ssh + [user + "@" + host, *extra], input=payload, capture_output=True, timeout=60)
    return done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
def ask(*requests, user="replica"):
    return session(b"".join(json.dumps(r).encode() + b"\\n" for r in requests), user=user)
print(json.dumps({
    "shell": session(b"", "sh", "-c", "id; cat /etc/shadow"),
    "stdin_shell": session(b"id; cat /etc/shadow\\n", "sh"),
    "pty": session(b"", "-tt", "sh"),
    "forward": session(b"", "-W", "127.0.0.1:22"),
    "write": session(b"hello\\n", "cat > /srv/borg/app/main/planted"),
    "get_unlisted": ask({"op": "get", "client": "app", "file": "config"}),
    "traversal": ask({"op": "list"}, {"op": "get", "client": "app", "file": "../../../../etc/shadow"},
                     {"op": "get", "client": "../../etc", "file": "shadow"}),
    "symlink": ask({"op": "list"}, {"op": "get", "client": "app", "file": "README"}),
    "put": ask({"op": "put", "client": "app", "file": "config", "data": "x"}),
    "borg_login": ask({"op": "list"}, user="borg"),
}))
"""


def committed(server: Server) -> dict[str, str]:
    return json.loads(server.exec("python3", "-c", COMMITTED).stdout)


def held(replica: Server) -> dict[str, str]:
    """The segments the replica keeps aside after the primary removed them: file name -> sha256."""
    listing = replica.exec("sh", "-c", "cd /srv/borg/.replica/removed/app 2>/dev/null && sha256sum * || true").stdout
    return {line.split()[1]: line.split()[0] for line in listing.splitlines()}


def alerts(output: str, kind: str) -> list[dict]:
    """The alerts of kind in a command's output (borg-server replicate prints those it raises or clears)."""
    lines = [line for line in output.splitlines() if line.startswith("{") and '"borg-appliance-alert"' in line]
    return [alert for alert in map(json.loads, lines) if alert["alert"] == kind]


def replicate(replica: Server) -> str:
    """Run one replication round now; return what it printed."""
    result = replica.exec("borg-server", "replicate", check=False)
    return result.stdout + result.stderr


def held_since(replica: Server) -> datetime:
    """When the replica set aside the segments it holds now (the latest, if they were set aside at different times)."""
    record = json.loads(replica.exec("cat", "/var/lib/borg-server/monitor/clients/app.json").stdout)["replica"]
    return max(datetime.fromisoformat(entry["removed_at"]) for entry in record["held"])


def start_pair(sandbox, env: dict[str, str] | None = None,
               primary_env: dict[str, str] | None = None) -> tuple[Server, Server, str, str]:  # fmt: skip
    """Start a primary (with primary_env) that generates the replica key, a receiver, and a replica (with env) that
    logs in as the issue's ssh://replica@primary:22 with the key and host key from the primary's export and sends
    its alerts to the receiver, all on one network; return both servers, the export's volume and the receiver."""
    export = sandbox.volume("replica-export")
    primary = start_server(sandbox, ["app"], env={"BORG_REPLICA_KEY": "generate", **(primary_env or {})},
                           extra=["-v", f"{export}:/var/lib/borg-server/export-replica"])  # fmt: skip
    receiver = start_receiver(sandbox, primary.network)
    replicate_from = f"ssh://replica@{primary.container}:22"
    assert primary.exec("cat", "/var/lib/borg-server/export-replica/replicate_from").stdout == replicate_from + "\n"
    settings = {
        "REPLICATE_FROM": replicate_from,
        "REPLICATE_HOST_KEY_FILE": "/replica-pairing/known_hosts",
        "REPLICATE_SSH_KEY_FILE": "/replica-pairing/id_ed25519",
        "REPLICATE_CRON": "0 0 1 1 *",  # the scenario copies with borg-server replicate
        "REPORT_URLS": receiver.url,
        **(env or {}),
    }
    replica = start_server(sandbox, ["app"], env=settings, network=primary.network, role="replica",
                           extra=["-v", f"{export}:/replica-pairing:ro"])  # fmt: skip
    return primary, replica, export, receiver


def attack_with_the_replica_key(sandbox, primary: Server, export: str, client) -> None:
    """Try, with the replica key at the replica login, a shell, a pty, forwarding, a write, ../ and a planted
    symlink: all refused; the borg login still reads for it. A client key cannot log in as replica at all."""
    # As if someone on the primary planted a symlink where the reader sends a file from.
    primary.exec("sh", "-c", "cd /srv/borg/app/main && rm README && ln -s /etc/shadow README")
    files = "cd /srv/borg && find . -type f ! -name config | sort | xargs sha256sum"
    digest = primary.exec("sh", "-c", files).stdout
    options = ["--network", primary.network, "-v", f"{export}:/pairing:ro", "--entrypoint", "python3"]
    result = sandbox.run("attacker", CLIENT_IMAGE, options, ["-c", ATTACK, SSH, primary.container], detach=False)
    seen = json.loads(result.stdout)
    for name, output in seen.items():
        assert "uid=" not in output and "root:" not in output, (name, output)
    assert seen["shell"] == "" and "request is one JSON line" in seen["stdin_shell"], seen
    assert "PTY allocation request failed" in seen["pty"], seen["pty"]
    assert "administratively prohibited" in seen["forward"], seen["forward"]
    assert '"not a file of the last list"' in seen["get_unlisted"]
    assert seen["traversal"].count('"not a file of the last list"') == 2, seen["traversal"]
    assert '"gone"' in seen["symlink"], seen["symlink"]
    assert "request is one JSON line" in seen["put"]
    assert seen["borg_login"].startswith('{"ok": true, "size": '), seen["borg_login"]
    client_key = attack(sandbox, client, '$SSH replica@$SERVER x </dev/null 2>&1; echo "exit $?"', role="client-key")
    assert "Permission denied (publickey)" in client_key.stdout and "exit 255" in client_key.stdout, client_key.stdout
    assert primary.exec("sh", "-c", files).stdout == digest
    audit = primary.exec("cat", "/var/lib/borg-server/audit/sessions.jsonl").stdout.splitlines()
    sessions = [json.loads(line) for line in audit if '"replica-session"' in line]
    assert len(sessions) >= 7 and all(s["role"] == "replica" for s in sessions)


def test_the_replica_copies_committed_segments_keeps_tampering_out_and_restores_a_lost_primary(sandbox, tmp_path):
    primary, replica, export, receiver = start_pair(sandbox, {"REPLICA_KEEP_REMOVED": f"{KEEP}s"})
    app = make_client(sandbox, primary, "app", tmp_path)
    fill_volume(sandbox, app.data, "head -c 3000000 /dev/urandom > /data/old.bin && echo one > /data/note.txt")
    assert client_command(sandbox, app, ["run"], env={"ARCHIVE_NAME": "first-{utcnow}"}).returncode == 0
    fill_volume(sandbox, app.data, "head -c 200000 /dev/urandom > /data/new.bin")
    assert client_command(sandbox, app, ["run"]).returncode == 0

    # After the backups the replica holds the same committed segments, and borg finds the copy consistent.
    assert "copied" in replicate(replica)
    copy = committed(replica)
    assert copy == committed(primary) and len(copy) >= 4
    check = replica.exec("sh", "-c", "BORG_BASE_DIR=/tmp borg check --repository-only /srv/borg/app/main", check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    status = json.loads(replica.exec("borg-server", "status", "--json").stdout)[0]
    assert status["client"] == "app" and status["lag_segments"] == 0 and status["alerts"] == []
    assert status["bytes"] > 3_000_000 and status["copied_commit"] == max(map(int, copy))

    # One byte flipped in a committed segment on the primary: not copied, replica_mismatch names it, and the
    # manual round's alert reaches the receiver before the command ends, as a scheduled round's does.
    flipped = primary.exec("python3", "-c", FLIP).stdout.strip()
    fill_volume(sandbox, app.data, "echo two > /data/note.txt")
    assert client_command(sandbox, app, ["run"]).returncode == 0
    output = replicate(replica)
    after = committed(replica)
    assert after[flipped] == copy[flipped] != committed(primary)[flipped]
    assert len(after) > len(copy)  # the new backup's segments were copied all the same
    raised = alerts(output, "replica_mismatch")
    assert raised and raised[-1]["state"] == "raised" and raised[-1]["client"] == "app"
    assert raised[-1]["details"]["segments"] == {flipped: "changed"}
    assert f"({flipped} changed)" in raised[-1]["message"]
    received = [entry["body"] for entry in receiver.accepted()]
    assert [alert["id"] for alert in received if alert.get("alert") == "replica_mismatch"] == [raised[-1]["id"]]
    primary.exec("python3", "-c", FLIP)  # the same byte flipped back: the primary is whole again
    cleared = alerts(replicate(replica), "replica_mismatch")[-1]
    assert cleared["state"] == "cleared" and cleared["id"] in [entry["body"]["id"] for entry in receiver.accepted()]

    # A compaction on the primary after the audit: the removed segments are set aside on the replica, not deleted.
    deleted = client_command(sandbox, app, ["borg-client", "borg", "delete", "--glob-archives", "first-*"])
    assert deleted.returncode == 0, deleted.stderr
    listing = primary.exec("borg-server", "audit", "app").stdout
    primary.exec(*next(line.split() for line in listing.splitlines() if "--acknowledge" in line))
    primary.exec("borg-server", "compact", "app")
    before_compaction = committed(replica)
    removed = set(before_compaction) - set(committed(primary))
    assert removed
    output = replicate(replica)  # this round sets them aside, and looks at the keep period with the same clock
    assert committed(replica) == committed(primary)
    kept = held(replica)
    assert {name.split(".")[0] for name in kept} == removed, output
    assert all(before_compaction[name.split(".")[0]] == digest for name, digest in kept.items())
    assert alerts(output, "replica_mismatch") == [] and "set aside" in output  # a compaction is no mismatch
    # The first round after REPLICA_KEEP_REMOVED has passed (by the clock the replica reads too) deletes them.
    due = held_since(replica) + timedelta(seconds=KEEP)
    wait_until(lambda: datetime.now(UTC) > due, KEEP + 30, "the keep period to pass")
    output = replicate(replica)
    assert held(replica) == {}, output
    assert output.count("removed on the primary at") == len(kept), output

    # A replica that was down for several backups catches up in one round.
    docker("stop", replica.container)
    for number in range(3):
        fill_volume(sandbox, app.data, f"echo {number} > /data/note.txt")
        assert client_command(sandbox, app, ["run"]).returncode == 0
    docker("start", replica.container)
    wait_until(lambda: health(replica.container) == "healthy", 60, "the replica to start again")
    replicate(replica)
    assert committed(replica) == committed(primary)

    # The replication key can only read committed segments of /srv/borg.
    attack_with_the_replica_key(sandbox, primary, export, app)

    # One more backup the replica never sees: the sidecar saw a newer manifest than the copy holds.
    fill_volume(sandbox, app.data, "head -c 100000 /dev/urandom > /data/late.bin")
    assert client_command(sandbox, app, ["run"], env={"ARCHIVE_NAME": "late-{utcnow}"}).returncode == 0

    # The primary is lost with its volumes; the sidecar, pointed at the replica with RESTORE_FROM_REPLICA=yes (and
    # no file removed), lists and restores byte for byte what the replica holds.
    docker("rm", "-f", "-v", primary.container)
    docker("volume", "rm", primary.repositories, primary.state)
    restored = dataclasses.replace(app, server=replica)
    unmarked = client_command(sandbox, restored, ["list", "--short"])  # borg remembers the primary's place
    assert unmarked.returncode != 0 and "set RESTORE_FROM_REPLICA=yes" in unmarked.stderr, unmarked.stderr
    listing = client_command(sandbox, restored, ["list", "--short"], env=FROM_REPLICA)
    archives = listing.stdout.split()
    assert listing.returncode == 0 and len(archives) >= 4, listing.stdout + listing.stderr
    assert not any(name.startswith("late-") for name in archives), archives
    options = [*restored.options(FROM_REPLICA), "--entrypoint", "sh"]
    script = (
        f"borg-client restore {archives[-1]} --target /tmp/r >&2"
        " && for f in old.bin new.bin note.txt; do cmp /tmp/r/backup/data/$f /backup/data/$f || exit 1; done"
        " && test ! -e /tmp/r/backup/data/late.bin && echo restored"
        " && cd /var/lib/borg-client && cat security/*/location && echo && cat replica/security/*/location"
    )
    restore = sandbox.run("restore", CLIENT_IMAGE, options, ["-c", script], detach=False, check=False)
    lines = restore.stdout.splitlines()
    assert lines[:1] == ["restored"], restore.stdout + restore.stderr
    assert primary.container in lines[1] and replica.container in lines[2], lines  # the primary's record is kept

    # ... and mounts it (FUSE), the same bytes under /mnt/borg.
    if os.path.exists("/dev/fuse"):
        sandbox.run(
            "mounter", CLIENT_IMAGE, [*restored.options(FROM_REPLICA), *FUSE], ["mount", "--target", "/mnt/borg"]
        )
        mounter, mounted = sandbox.name("mounter"), f"/mnt/borg/{archives[-1]}/backup/data"
        compare = f"for f in old.bin new.bin note.txt; do cmp {mounted}/$f /backup/data/$f || exit 1; done && echo same"
        seen = wait_until(
            lambda: docker("exec", mounter, "sh", "-c", f"test -f {mounted}/note.txt && {compare}", check=False).stdout,
            60, "the archive to appear under /mnt/borg",
        )  # fmt: skip
        assert seen.strip() == "same"
        docker("stop", mounter)

    # No client can write to a replica: a backup fails at the replica and the copy stays byte for byte.
    copy = committed(replica)
    backup = client_command(sandbox, restored, ["run"], env=FROM_REPLICA)
    assert backup.returncode != 0 and "backup failure" in backup.stderr, backup.stderr
    assert committed(replica) == copy
    if not os.path.exists("/dev/fuse"):  # passed without the mount: the warnings summary says so
        warnings.warn("test_replica: the FUSE mount was not tried: this machine has no /dev/fuse", stacklevel=1)


def status_page(replica: Server) -> dict:
    """Return the replica's status page as it serves it (asked from inside its container): / and /status.json."""
    fetch = (
        "import json, urllib.request as u; ask = lambda p: u.urlopen('http://127.0.0.1:8080' + p, timeout=10)"
        ".read().decode(); print(json.dumps({'page': ask('/'), 'json': json.loads(ask('/status.json'))}))"
    )
    return json.loads(replica.exec("python3", "-c", fetch).stdout)


def test_a_segment_damaged_on_the_primary_after_its_copy_raises_replica_mismatch_and_the_copy_stays(
    sandbox, tmp_path, database_images
):
    shown = {"NOTIFY_URLS": "ntfy://ntfy/replica", "STATUS_PORT": "8080", "STATUS_NO_PASSWORD": "yes"}
    primary, replica, _export, receiver = start_pair(sandbox, shown)
    ntfy = start_ntfy(sandbox, primary.network)
    app = make_client(sandbox, primary, "app", tmp_path)
    fill_volume(sandbox, app.data, "head -c 2000000 /dev/urandom > /data/old.bin")
    assert client_command(sandbox, app, ["run"]).returncode == 0
    assert "copied" in replicate(replica)
    copy = committed(replica)

    # A byte flips in a copied segment on the primary's disk; the primary's monitor sees it first (tampering).
    flipped = primary.exec("python3", "-c", FLIP).stdout.strip()
    primary.exec("borg-server", "scan")
    wait_until(lambda: alert_seen(primary.container, "tampering", "raised", "app"), 60, "the primary's tampering alert")

    # The replica's next round names the segment, keeps its copy, and no longer says "up to date".
    output = replicate(replica)
    raised = alerts(output, "replica_mismatch")
    assert raised and raised[-1]["state"] == "raised", output
    assert raised[-1]["details"]["segments"] == {flipped: "changed"}
    assert raised[-1]["message"] == (
        f"client app: committed segments differ on the primary ({flipped} changed); the replica keeps its copies "
        "and copies none of them (borg-server replicate --accept app takes the primary's)"
    )
    assert "client app: up to date" not in output, output
    assert committed(replica) == copy and committed(primary)[flipped] != copy[flipped]
    assert [a["id"] for a in received(receiver, "replica_mismatch", "raised")] == [raised[-1]["id"]]
    status = json.loads(replica.exec("borg-server", "status", "--json").stdout)[0]
    assert status["mismatched_segments"] == 1 and "replica_mismatch" in status["alerts"], status

    # A person hears it through ntfy, and sees it on the replica's status page (the replicator looks after the round).
    [message] = wait_until(lambda: ntfy.messages("replica"), 30, "the replica's notification")
    assert message["title"] == f"committed segments differ on the primary: client app on {replica.container}"
    assert message["message"] == (
        f"Committed segments differ on the primary ({flipped} changed); the replica keeps its copies and copies none "
        f"of them (borg-server replicate --accept app takes the primary's).\nAt {raised[-1]['at']}.\n"
        "How to answer it: docs/how-to/answer-an-alert.md"
    )
    seen = wait_until(lambda: (found := status_page(replica))["json"]["replica"]["copies"][0]["alerts"] and found,
                      30, "the mismatch on the status page")  # fmt: skip
    copies = seen["json"]["replica"]
    assert copies["primary"]["primary"] == f"{primary.container}:22" and copies["primary"]["failed_rounds"] == 0
    [copy_shown] = copies["copies"]
    assert copy_shown["alert_messages"] == {"replica_mismatch": raised[-1]["message"]}
    assert copy_shown["last_outcome"] == (
        f"kept its own copy of segments that differ on the primary ({flipped} changed): replica_mismatch"
    )
    assert seen["json"]["server"]["notifications_waiting"] == 0 and seen["json"]["clients"] == []
    page = seen["page"]
    assert '<p class="summary attention">Needs attention: app (replica_mismatch).</p>' in page
    assert f"<h2>Copies from the primary {primary.container}:22</h2>" in page
    row = page.split('<tr id="replica-app">')[1].split("</tr>")[0]
    assert f"<li><b>replica_mismatch</b>: {escape(raised[-1]['message'])}</li>" in row
    assert '<td data-label="Mismatches">1 segment(s)</td>' in row and "<script" not in page


def test_a_replica_that_cannot_reach_its_primary_alerts_after_three_rounds_and_clears_when_it_can(sandbox, tmp_path):
    primary, replica, _export, receiver = start_pair(sandbox, {"METRICS_PORT": "9100"})
    app = make_client(sandbox, primary, "app", tmp_path)
    fill_volume(sandbox, app.data, "echo one > /data/note.txt")
    assert client_command(sandbox, app, ["run"]).returncode == 0
    assert "copied" in replicate(replica)

    # The primary is down: each round logs its error, and the third in a row raises replica_unreachable.
    docker("stop", primary.container)
    for _ in range(2):
        output = replicate(replica)
        assert "ERROR borg_server.replica.copy: replication: the primary closed the session: ssh: " in output, output
        assert alerts(output, "replica_unreachable") == [], output
    (raised,) = alerts(replicate(replica), "replica_unreachable")
    details = raised["details"]
    assert (raised["state"], raised["client"], details["failed_rounds"]) == ("raised", None, 3)
    assert details["error"].startswith("the primary closed the session: ssh: "), details
    assert raised["message"] == (
        f"server: the replica could not reach its primary {primary.container}:22 in 3 replication rounds in a row "
        f"(since {details['failing_since']}): {details['error']}; the copies stay as they were. Check that the "
        "primary runs and that this replica reaches it (REPLICATE_FROM), then run borg-server replicate"
    )
    assert [alert["id"] for alert in received(receiver, "replica_unreachable", "raised")] == [raised["id"]]
    assert alerts(replicate(replica), "replica_unreachable") == []  # raised once, not again at every round
    counted = ("\nborg_appliance_replica_primary_failed_rounds 4\n",
               '\nborg_appliance_replica_server_alert{alert="replica_unreachable"} 1\n')  # fmt: skip
    wait_until(lambda: all(line in scrape_metrics(sandbox, replica, 9100) for line in counted), 120,
               "the replicator to publish the count")  # fmt: skip

    # The primary is back: the next round copies and clears the alert at the receiver.
    docker("start", primary.container)
    wait_until(lambda: health(primary.container) == "healthy", 60, "the primary to start again")
    output = replicate(replica)
    (cleared,) = alerts(output, "replica_unreachable")
    assert cleared["state"] == "cleared"
    assert cleared["message"] == "server: cleared: the replica cannot reach its primary"
    assert [alert["id"] for alert in received(receiver, "replica_unreachable", "cleared")] == [cleared["id"]]
    assert "client app: up to date" in output, output


def test_a_promoted_replica_starts_its_review_where_the_old_primary_left_it_and_takes_the_sidecar_back(
    sandbox, tmp_path
):
    primary, replica, _export, _receiver = start_pair(sandbox)
    app = make_client(sandbox, primary, "app", tmp_path)
    fill_volume(sandbox, app.data, "head -c 1000000 /dev/urandom > /data/old.bin")
    assert client_command(sandbox, app, ["run"], env={"ARCHIVE_NAME": "first-{utcnow}"}).returncode == 0
    fill_volume(sandbox, app.data, "head -c 100000 /dev/urandom > /data/new.bin")
    assert client_command(sandbox, app, ["run"]).returncode == 0
    # The old primary's history: a delete, reviewed (audit --acknowledge) and compacted there, then copied.
    deleted = client_command(sandbox, app, ["borg-client", "borg", "delete", "--glob-archives", "first-*"])
    assert deleted.returncode == 0, deleted.stderr
    listing = primary.exec("borg-server", "audit", "app").stdout
    primary.exec(*next(line.split() for line in listing.splitlines() if "--acknowledge" in line))
    primary.exec("borg-server", "compact", "app")
    assert "copied" in replicate(replica)

    # The primary is lost; the replica is promoted as docs/how-to/promote-a-replica.md says (same volumes, no
    # REPLICATE_* settings, its .replica directory removed).
    docker("rm", "-f", "-v", primary.container)
    docker("rm", "-f", replica.container)
    sandbox.run("tidy", SERVER_IMAGE, ["-v", f"{replica.repositories}:/srv/borg"], ["rm", "-rf", "/srv/borg/.replica"],
                detach=False)  # fmt: skip
    promoted = start_server(sandbox, ["app"], network=primary.network, role="replica")
    assert "client app: a replica's copy, now this primary's; the deletes the old primary reviewed through " \
        "segment" in logs(promoted.container)  # fmt: skip
    promoted.exec("borg-server", "scan")
    status = json.loads(promoted.exec("borg-server", "status", "--json").stdout)
    (figures,) = [entry for entry in status if entry["client"] == "app"]
    assert figures["unacknowledged_deletes"] == 0 and figures["compaction_blocked"] is None, figures
    assert [a for a in alerts_logged(promoted.container) if a["alert"] == "deletes"] == []

    # The sidecar pointed at it is told how to accept the new address; after the documented step it backs up.
    moved = dataclasses.replace(app, server=promoted)
    refused = client_command(sandbox, moved, ["run"])
    assert refused.returncode != 0
    assert (
        "borg knew this repository at another address (its security record): if it moved on purpose (a promoted "
        "replica, a changed BORG_SERVER_NAME), remove the old address once: rm "
        "/var/lib/borg-client/security/*/location (docs/how-to/promote-a-replica.md); to read a replica's copy for a "
        "restore, set RESTORE_FROM_REPLICA=yes instead (docs/how-to/primary-lost.md)"
    ) in refused.stderr, refused.stderr
    step = ("rm -f /var/lib/borg-client/security/*/location /var/lib/borg-client/security/*/manifest-timestamp"
            " && rm -rf /var/lib/borg-client/cache/*")  # fmt: skip
    sandbox.run("step", CLIENT_IMAGE, [*moved.options(), "--entrypoint", "sh"], ["-c", step], detach=False)
    backup = client_command(sandbox, moved, ["run"], env={"ARCHIVE_NAME": "after-{utcnow}"})
    assert backup.returncode == 0, backup.stdout + backup.stderr
    archives = client_command(sandbox, moved, ["list", "--short"]).stdout.split()
    assert any(name.startswith("after-") for name in archives) and not any(n.startswith("first-") for n in archives)


def test_a_replica_key_mounted_readable_by_all_copies_through_a_private_copy_left_nowhere(sandbox, tmp_path):
    primary, replica, _export, _receiver = start_pair(sandbox)
    primary.exec("chmod", "444", "/var/lib/borg-server/export-replica/id_ed25519")  # as Swarm mounts a secret
    app = make_client(sandbox, primary, "app", tmp_path)
    fill_volume(sandbox, app.data, "echo one > /data/note.txt")
    assert client_command(sandbox, app, ["run"]).returncode == 0

    output = replicate(replica)

    assert "copied" in output and "UNPROTECTED" not in output, output
    assert committed(replica) == committed(primary)
    left = replica.exec("sh", "-c", "ls -A /dev/shm/borg-server /run/borg-server/replica").stdout
    assert "ssh-key-" not in left and "id_replica" not in left, left  # the copy lived for the round only
    assert replica.exec("stat", "-c", "%a", "/replica-pairing/id_ed25519").stdout == "444\n"
