"""Attack scenarios against the server: what someone holding one client's key can and cannot do."""

from __future__ import annotations

import pytest

from tests.harness.containers import CLIENT_IMAGE, Sandbox
from tests.harness.stack import (
    attack,
    client_command,
    fill_volume,
    make_client,
    repository_bytes,
    start_server,
)


@pytest.fixture(scope="module")
def two_clients(tmp_path_factory):
    """A server with clients web and db; db has one backup, web holds the attacker's key."""
    sandbox = Sandbox()
    tmp_path = tmp_path_factory.mktemp("attacks")
    try:
        server = start_server(sandbox, ["web", "db"])
        web, db = make_client(sandbox, server, "web", tmp_path), make_client(sandbox, server, "db", tmp_path)
        fill_volume(sandbox, db.data, "echo 'db secret' > /data/secret.txt")
        assert client_command(sandbox, db, ["run"]).returncode == 0
        yield sandbox, server, web, db
    finally:
        sandbox.cleanup()


@pytest.mark.parametrize(
    "repository",
    [
        "ssh://borg@$SERVER:22/srv/borg/db/main",  # the other client's repository by its absolute path
        "borg@$SERVER:../db/main",  # climbing out of the own directory (scp form: sent as written)
        "borg@$SERVER:/srv/borg/web/../db/main",  # climbing out of an absolute path
        "ssh://borg@$SERVER:22/~/../../srv/borg/db/main",  # by way of the borg user's home
        "ssh://borg@$SERVER:22/./shortcut",  # a symlink planted in the own directory
    ],
)
def test_a_client_cannot_open_another_clients_repository(two_clients, repository):
    sandbox, server, web, _db = two_clients
    server.exec(
        "sh", "-c", "ln -sfn /srv/borg/db/main /srv/borg/web/shortcut && chown -h borg:borg /srv/borg/web/shortcut"
    )
    result = attack(sandbox, web, f'BORG_RSH="$SSH" borg --log-json list "{repository}"')
    assert result.returncode != 0
    assert '"msgid": "PathNotAllowed"' in result.stderr, result.stderr
    assert "db secret" not in result.stdout + result.stderr


KEY = "-i /pairing/id_ed25519 -o UserKnownHostsFile=/pairing/known_hosts"
# what the attacker runs, and the error ssh must show (None: the forced command just ran borg serve)
SHELL_ATTEMPTS = {
    "a shell": ("$SSH borg@$SERVER </dev/null; echo rc=$?", None),
    "another command": ("$SSH borg@$SERVER 'cat /etc/passwd; echo PWNED' </dev/null; echo rc=$?", None),
    "a pty": ("$SSH -tt borg@$SERVER 'id' </dev/null; echo rc=$?", "PTY allocation request failed"),
    "a remote port forward": (
        "$SSH -N -o ExitOnForwardFailure=yes -R 9001:127.0.0.1:22 borg@$SERVER </dev/null; echo rc=$?",
        "remote port forwarding failed",
    ),
    "sftp": (f"echo ls | sftp -b - {KEY} borg@$SERVER; echo rc=$?", "Connection closed"),
    "scp over sftp": (f"scp {KEY} /etc/hostname borg@$SERVER:/tmp/pwned; echo rc=$?", "Connection closed"),
    "legacy scp": (f"scp -O {KEY} /etc/hostname borg@$SERVER:/tmp/pwned; echo rc=$?", None),
}


@pytest.mark.parametrize("what", SHELL_ATTEMPTS)
def test_a_client_key_gets_nothing_but_borg_serve(two_clients, what):
    sandbox, server, web, _db = two_clients
    script, expected_error = SHELL_ATTEMPTS[what]
    result = attack(sandbox, web, script)
    output = result.stdout + result.stderr
    for leak in ("root:x:0:0", "PWNED", "uid=", "borg@"):
        assert leak not in result.stdout, output
    if expected_error:
        assert expected_error in result.stderr, output
        assert "rc=0" not in result.stdout, output
    if what == "legacy scp":
        assert "rc=0" not in result.stdout, output  # borg serve does not speak scp
    assert server.exec("sh", "-c", "ls /tmp /home/borg /srv/borg/web").stdout.count("pwned") == 0


def test_a_local_port_forward_carries_nothing(two_clients):
    sandbox, _server, web, _db = two_clients
    script = """
$SSH -N -L 127.0.0.1:9000:127.0.0.1:22 borg@$SERVER </dev/null &
python3 - <<'PY'
import socket, time
deadline = time.monotonic() + 20
while True:
    try:
        connection = socket.create_connection(("127.0.0.1", 9000), 2)
        break
    except OSError:
        if time.monotonic() > deadline:
            raise SystemExit("no local listener")
        time.sleep(0.2)
connection.settimeout(10)
try:
    data = connection.recv(64)
except OSError:
    data = b""
print("received", repr(data))
PY
"""
    result = attack(sandbox, web, script)
    assert "received b''" in result.stdout, result.stdout + result.stderr


def test_borg_serve_arguments_sent_by_the_client_cannot_widen_its_restriction(two_clients):
    sandbox, server, web, _db = two_clients
    # borg lets ssh run whatever BORG_RSH is; this one asks for an unrestricted, deleting borg serve.
    script = """
cat > /tmp/evil-rsh <<'SH'
#!/bin/sh
exec $SSH borg@$SERVER "borg serve --restrict-to-path /srv/borg"
SH
chmod +x /tmp/evil-rsh
BORG_RSH=/tmp/evil-rsh borg --log-json list "ssh://borg@$SERVER:22/srv/borg/db/main"
"""
    result = attack(sandbox, web, script)
    assert result.returncode != 0
    assert '"msgid": "PathNotAllowed"' in result.stderr, result.stderr
    audit = server.exec("cat", "/var/lib/borg-server/audit/sessions.jsonl").stdout
    assert '"requested": "borg serve --restrict-to-path /srv/borg"' in audit  # on record, and without effect


def test_password_and_root_logins_are_refused(two_clients):
    sandbox, _server, web, _db = two_clients
    password = attack(
        sandbox, web, "$SSH -o PubkeyAuthentication=no -o PreferredAuthentications=password,keyboard-interactive "
        "borg@$SERVER true </dev/null"
    )  # fmt: skip
    assert password.returncode == 255
    assert "Permission denied (publickey)" in password.stderr  # the only method offered
    root = attack(sandbox, web, "$SSH root@$SERVER true </dev/null")
    assert root.returncode == 255
    assert "Permission denied" in root.stderr


def test_append_only_keeps_deleted_archives_on_disk_and_the_admin_key_frees_them(sandbox, tmp_path):
    keys = sandbox.volume("admin-key")
    sandbox.run("keygen", CLIENT_IMAGE, ["-v", f"{keys}:/admin", "--entrypoint", "ssh-keygen"],
                ["-q", "-t", "ed25519", "-N", "", "-C", "admin", "-f", "/admin/id_ed25519"], detach=False)  # fmt: skip
    admin_public = sandbox.run("cat", CLIENT_IMAGE, ["-v", f"{keys}:/admin", "--entrypoint", "cat"],
                               ["/admin/id_ed25519.pub"], detach=False).stdout.strip()  # fmt: skip
    server = start_server(sandbox, ["web"], env={"BORG_CLIENT_WEB_ADMIN_KEY": admin_public})
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "head -c 5000000 /dev/urandom > /data/random.bin")
    assert client_command(sandbox, web, ["run"]).returncode == 0
    archive = client_command(sandbox, web, ["list", "--short"]).stdout.split()[0]
    before_delete = repository_bytes(server, "web")
    last_good = server.exec("sh", "-c", "tail -n 1 /srv/borg/web/main/transactions").stdout.split(",")[0].split()[1]

    # The compromised client deletes its archive and compacts: the archive is gone from the list...
    assert client_command(sandbox, web, ["borg-client", "borg", "delete", f"::{archive}"]).returncode == 0
    assert client_command(sandbox, web, ["borg-client", "borg", "compact"]).returncode == 0
    assert client_command(sandbox, web, ["list", "--short"]).stdout.split() == []
    # ...but not one byte left the disk.
    assert repository_bytes(server, "web") >= before_delete

    # Recovery as docs/how-to/roll-back-a-compromised-client.md documents it: roll the repository back to the last
    # good transaction.
    server.exec("sh", "-c", f"cd /srv/borg/web/main && rm -f hints.* index.* integrity.* && "
                f"for f in data/*/*; do [ \"$(basename $f)\" -gt {last_good} ] && rm $f; done; true")  # fmt: skip
    reset = sandbox.run(
        "reset", CLIENT_IMAGE, [*web.options(), "--entrypoint", "sh"],
        ["-c", "rm -f /var/lib/borg-client/security/*/manifest-timestamp && borg-client borg delete --cache-only"
               " && borg-client restore " + archive + " --target /tmp/r >&2"
               " && cmp /tmp/r/backup/data/random.bin /backup/data/random.bin && echo restored"],
        detach=False, check=False,
    )  # fmt: skip
    assert reset.stdout.strip() == "restored", reset.stderr

    # The admin key, from a trusted machine holding the repository key, really deletes and frees space.
    admin_env = (
        'export BORG_RSH="ssh -i /admin/id_ed25519 -o UserKnownHostsFile=/pairing/known_hosts '
        '-o StrictHostKeyChecking=yes -o BatchMode=yes" BORG_REPO=$(cat /pairing/repo_url) '
        'BORG_PASSCOMMAND="cat /run/secrets/borg_passphrase" BORG_KEYS_DIR=/var/lib/borg-client/keys '
        "BORG_SECURITY_DIR=/tmp/security BORG_CACHE_DIR=/tmp/cache BORG_EXIT_CODES=modern && "
    )
    before_prune = repository_bytes(server, "web")
    prune = sandbox.run(
        "admin", CLIENT_IMAGE, [*web.options(), "-v", f"{keys}:/admin:ro", "--entrypoint", "sh"],
        ["-c", admin_env + f"borg delete ::{archive} && borg compact"], detach=False, check=False,
    )  # fmt: skip
    assert prune.returncode == 0, prune.stderr
    assert repository_bytes(server, "web") < before_prune - 4_000_000


def test_twenty_concurrent_sessions_from_one_address_all_succeed(sandbox):
    names = [f"c{number:02d}" for number in range(20)]
    server = start_server(sandbox, names)
    script = """
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_EXIT_CODES=modern
echo "$SERVER $(cut -d' ' -f1,2 /state/ssh/ssh_host_ed25519_key.pub)" > /tmp/known_hosts
mkdir -p /tmp/data && head -c 200000 /dev/urandom > /tmp/data/blob
for name in $NAMES; do (
    export BORG_RSH="ssh -i /state/clients/$name/id_ed25519 -o UserKnownHostsFile=/tmp/known_hosts \
-o StrictHostKeyChecking=yes -o BatchMode=yes" BORG_REPO=ssh://borg@$SERVER:22/./main BORG_BASE_DIR=/tmp/borg-$name
    borg init -e none >/tmp/$name.log 2>&1 && borg create ::one /tmp/data >>/tmp/$name.log 2>&1
    echo "$name rc=$?"
) & done
wait
"""
    options = ["--network", server.network, "-v", f"{server.state}:/state:ro", "-e", f"NAMES={' '.join(names)}",
               "-e", f"SERVER={server.container}",
               "--entrypoint", "sh"]  # fmt: skip
    result = sandbox.run("crowd", CLIENT_IMAGE, options, ["-c", script], detach=False, check=False)
    outcomes = sorted(result.stdout.split("\n")[:-1])
    assert outcomes == [f"{name} rc=0" for name in names], result.stdout + result.stderr
