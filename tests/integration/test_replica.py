"""Replication: a replica pulls every repository from the primary, keeps tampering out, and restores a lost primary."""

from __future__ import annotations

import dataclasses
import json

from tests.integration.docker_helpers import CLIENT_IMAGE, docker, health, wait_until
from tests.integration.stack import SSH, Server, client_command, fill_volume, make_client, start_server

# The committed segments of app's repository (number -> sha256), read with the server's own segment module.
COMMITTED = (
    "import json, sys; sys.path.insert(0, '/opt/borg-appliance'); from borg_server import segments; "
    "r = '/srv/borg/app/main'; last = segments.last_commit(r); "
    "print(json.dumps({n: segments.fingerprint(p).sha256 for n, p in segments.segment_files(r).items() if n <= last}))"
)
# Flips one byte in the middle of the largest committed segment; prints its number.
FLIP = (
    "import sys; sys.path.insert(0, '/opt/borg-appliance'); from borg_server import segments; "
    "files = segments.segment_files('/srv/borg/app/main'); n = max(files, key=lambda n: files[n].stat().st_size); "
    "f = open(files[n], 'r+b'); f.seek(files[n].stat().st_size // 2); b = f.read(1); f.seek(-1, 1); "
    "f.write(bytes([b[0] ^ 1])); f.close(); print(n)"
)

# Run with the replica key (its export at /pairing): what an attacker holding it would try.
ATTACK = """
import json, subprocess, sys
ssh = sys.argv[1].split() + ["borg@" + sys.argv[2]]
def session(payload, *extra):
    done = subprocess.run(ssh + list(extra), input=payload, capture_output=True, timeout=60)
    return done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
def ask(*requests):
    return session(b"".join(json.dumps(r).encode() + b"\\n" for r in requests))
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


def start_pair(sandbox, env: dict[str, str] | None = None) -> tuple[Server, Server, str]:
    """Start a primary that generates the replica key, and a replica paired from its export on the same network;
    return both and the export's volume."""
    export = sandbox.volume("replica-export")
    primary = start_server(sandbox, ["app"], env={"BORG_REPLICA_KEY": "generate"},
                           extra=["-v", f"{export}:/var/lib/borg-server/export-replica"])  # fmt: skip
    settings = {
        "REPLICATE_FROM": f"ssh://borg@{primary.container}:22",
        "REPLICATE_HOST_KEY_FILE": "/replica-pairing/known_hosts",
        "REPLICATE_SSH_KEY_FILE": "/replica-pairing/id_ed25519",
        "REPLICATE_CRON": "0 0 1 1 *",  # the scenario copies with borg-server replicate
        **(env or {}),
    }
    replica = start_server(sandbox, ["app"], env=settings, network=primary.network, role="replica",
                           extra=["-v", f"{export}:/replica-pairing:ro"])  # fmt: skip
    return primary, replica, export


def attack_with_the_replica_key(sandbox, primary: Server, export: str) -> None:
    """Try, with the replica key, a shell, a pty, forwarding, a write, ../ and a planted symlink: all refused."""
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
    assert primary.exec("sh", "-c", files).stdout == digest
    audit = primary.exec("cat", "/var/lib/borg-server/audit/sessions.jsonl").stdout.splitlines()
    sessions = [json.loads(line) for line in audit if '"replica-session"' in line]
    assert len(sessions) >= 6 and all(s["role"] == "replica" for s in sessions)


def test_the_replica_copies_committed_segments_keeps_tampering_out_and_restores_a_lost_primary(sandbox, tmp_path):
    primary, replica, export = start_pair(sandbox, {"REPLICA_KEEP_REMOVED": "20s"})
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

    # One byte flipped in a committed segment on the primary: not copied, replica_mismatch names it.
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
    primary.exec("python3", "-c", FLIP)  # the same byte flipped back: the primary is whole again
    assert alerts(replicate(replica), "replica_mismatch")[-1]["state"] == "cleared"

    # A compaction on the primary after the audit: the removed segments stay on the replica for the keep period.
    deleted = client_command(sandbox, app, ["borg-client", "borg", "delete", "--glob-archives", "first-*"])
    assert deleted.returncode == 0, deleted.stderr
    listing = primary.exec("borg-server", "audit", "app").stdout
    primary.exec(*next(line.split() for line in listing.splitlines() if "--acknowledge" in line))
    primary.exec("borg-server", "compact", "app")
    before_compaction = committed(replica)
    removed = set(before_compaction) - set(committed(primary))
    assert removed
    output = replicate(replica)
    assert committed(replica) == committed(primary)
    kept = held(replica)
    assert {name.split(".")[0] for name in kept} == removed
    assert all(before_compaction[name.split(".")[0]] == digest for name, digest in kept.items())
    assert alerts(output, "replica_mismatch") == [] and "set aside" in output  # a compaction is no mismatch
    rounds = []
    try:
        wait_until(lambda: rounds.append(replicate(replica)) or not held(replica), 90, "the keep period to pass")
    except AssertionError:
        state = replica.exec("cat", "/var/lib/borg-server/monitor/clients/app.json").stdout
        raise AssertionError(f"{rounds[-2:]}\n{held(replica)}\n{state[-3000:]}") from None

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
    attack_with_the_replica_key(sandbox, primary, export)

    # The primary is lost with its volumes; the sidecar, pointed at the replica, restores byte for byte.
    docker("rm", "-f", "-v", primary.container)
    docker("volume", "rm", primary.repositories, primary.state)
    restored = dataclasses.replace(app, server=replica)
    options = [*restored.options(), "--entrypoint", "sh"]
    moved = "rm -rf /var/lib/borg-client/security/*/location /var/lib/borg-client/cache/*"  # the README's step
    listing = sandbox.run("list", CLIENT_IMAGE, options, ["-c", f"{moved} && borg-client list --short"],
                          detach=False, check=False)  # fmt: skip
    assert listing.returncode == 0 and len(listing.stdout.split()) >= 4, listing.stdout + listing.stderr
    script = (
        f"archive={listing.stdout.split()[-1]} && borg-client restore $archive --target /tmp/r >&2"
        " && for f in old.bin new.bin note.txt; do cmp /tmp/r/backup/data/$f /backup/data/$f || exit 1; done"
        " && echo restored"
    )
    restore = sandbox.run("restore", CLIENT_IMAGE, options, ["-c", script], detach=False, check=False)
    assert restore.stdout.strip() == "restored", restore.stdout + restore.stderr

    # No client can write to a replica: a backup fails and the copy stays byte for byte.
    copy = committed(replica)
    backup = client_command(sandbox, restored, ["run"])
    assert backup.returncode != 0 and "backup failure" in backup.stderr, backup.stderr
    assert committed(replica) == copy
