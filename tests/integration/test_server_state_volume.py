"""A careless operator (or an attacker with write access) leaves stray files, directories and symlinks in
the server's state volume: every start and reload still succeeds, root follows no symlink, and a
removed client's key stops working."""

from __future__ import annotations

import dataclasses
import json
import re

from tests.harness.containers import CLIENT_IMAGE, SERVER_IMAGE, docker, health, logs, wait_until
from tests.harness.stack import Server, attack, client_command, fill_volume, make_client, start_server

STRAYS = """
set -e
cd /var/lib/borg-server
touch export/notes.txt
mkdir -p export/olddir/sub && touch export/olddir/id_ed25519
ln -s /etc export/linked
touch clients/stray.txt
ln -s /etc clients/ghost
mkdir -p monitor/clients
rm -f monitor/clients/web.json monitor/clients/web.lock
ln -s /etc/shadow monitor/clients/web.json
ln -s /etc/pwned-lock monitor/clients/web.lock
mkfifo audit/stray.fifo
ln -s /etc/shadow ssh/stray-link
rm -f export/web/known_hosts && mkdir export/web/known_hosts
rm -rf homes/web && ln -s /etc homes/web
rm -f audit/sessions.jsonl && ln -s /etc/shadow audit/sessions.jsonl
rm -f accounts.json && mkfifo accounts.json
rm -f ssh/authorized_keys && mkfifo ssh/authorized_keys
rm -f ssh/ssh_host_ed25519_key.pub && mkdir ssh/ssh_host_ed25519_key.pub
rm -f monitor/monitor.json && mkfifo monitor/monitor.json
rm -f monitor/server.lock && mkdir monitor/server.lock
"""
WATCHED = "stat -c '%n %a %u:%g' /etc /etc/shadow /etc/passwd /etc/group; ls /etc | wc -l; find /etc ! -uid 0 | wc -l"


def account_line(server: Server, name: str) -> str:
    """Return the client's account line of show-client: "borg-web (uid N, gid N)"."""
    return re.search(r"^account: +(.*)$", server.exec("borg-server", "show-client", name).stdout, re.MULTILINE)[1]


def restart_with(sandbox, server: Server, clients: list[str], role: str) -> Server:
    """Stop server and start a new container on the same volumes for clients; wait until healthy."""
    sandbox_options = ["--network", server.network, "--hostname", server.container,
                       "-v", f"{server.repositories}:/srv/borg", "-v", f"{server.state}:/var/lib/borg-server",
                       "-e", f"BORG_CLIENTS={' '.join(clients)}", "-e", f"BORG_SERVER_NAME={server.container}",
                       "-e", "MONITOR_INTERVAL=10s", "--network-alias", server.container]  # fmt: skip
    for client, volume in server.exports.items():
        sandbox_options += ["-v", f"{volume}:/var/lib/borg-server/export/{client}"]
    docker("stop", server.container)
    sandbox.run(role, SERVER_IMAGE, sandbox_options)
    again = Server(sandbox.name(role), server.network, server.repositories, server.state, server.exports)
    wait_until(lambda: health(again.container) in ("healthy", "exited"), 90, "the restarted server")
    assert health(again.container) == "healthy", logs(again.container)
    return again


def test_stray_entries_in_the_state_volume_never_stop_a_start_and_a_removed_client_loses_its_key(sandbox, tmp_path):
    server = start_server(sandbox, ["web", "db"])  # no scan of its own meets the strays: the restarted one must
    web, db = make_client(sandbox, server, "web", tmp_path), make_client(sandbox, server, "db", tmp_path)
    watched = server.exec("sh", "-c", WATCHED).stdout
    uids = {name: account_line(server, name) for name in ("web", "db")}
    server.exec("sh", "-c", STRAYS)
    kept = sandbox.volume("db-pairing-copy")  # what db had: its key must stop working
    copy = ["-v", f"{server.exports['db']}:/from:ro", "-v", f"{kept}:/to", "--entrypoint", "cp"]
    sandbox.run("copy", CLIENT_IMAGE, copy, ["-a", "/from/.", "/to/"], detach=False)
    db.server = dataclasses.replace(server, exports={"db": kept})

    # db leaves the configuration while the state volume is full of surprises.
    again = restart_with(sandbox, server, ["web"], "server2")
    output = logs(again.container)
    assert "Traceback" not in output, output
    for line in (
        "/var/lib/borg-server/export/notes.txt: a file is not a client's directory; skipped",
        "/var/lib/borg-server/export/linked: a symlink is not a client's directory; skipped",
        "/var/lib/borg-server/export/olddir/sub: a directory where only files belong; skipped",
        "/var/lib/borg-server/clients/ghost: a symlink is not a client's directory; skipped",
        "/var/lib/borg-server/clients/stray.txt: a file is not a client's directory; skipped",
        "/var/lib/borg-server/export/web/known_hosts is a directory where a file belongs",
        "client db: removed from the configuration; deleted /var/lib/borg-server/clients/db",
        "client web: /var/lib/borg-server/homes/web was a symlink, not a directory; moved it to",
        "/var/lib/borg-server/audit/sessions.jsonl was a symlink where a file belongs; removed it",
        "/var/lib/borg-server/accounts.json was a FIFO, not the registry of accounts; moved it to",
        "no registry of accounts; 2 client uids recovered from the owners of /srv/borg/*",
        "/var/lib/borg-server/ssh/authorized_keys was a FIFO where a file belongs; replaced it",
        "/var/lib/borg-server/ssh/ssh_host_ed25519_key.pub is not the host key's public key; moved it to",
    ):
        assert output.count(line) == 1, (line, output)
    assert account_line(again, "web") == uids["web"]  # recovered from the owner of /srv/borg/web
    registry = json.loads(again.exec("cat", "/var/lib/borg-server/accounts.json").stdout)["clients"]
    assert f"(uid {registry['db']['uid']}," in uids["db"]  # a removed client's uid stays recorded
    wait_until(lambda: "scanned 1 clients" in logs(again.container), 30, "a monitor scan")
    assert "monitor state /var/lib/borg-server/monitor/clients/web.json is damaged" in logs(again.container)
    moved = "/var/lib/borg-server/monitor/server.lock was a directory where a lock file belongs; moved it to"
    assert logs(again.container).count(moved) == 1
    assert "Traceback" not in logs(again.container)

    # Root followed no symlink: /etc is as it was, nothing was created through the dangling link.
    assert again.exec("sh", "-c", WATCHED).stdout == watched
    assert again.exec("test", "-e", "/etc/pwned-lock", check=False).returncode == 1
    assert again.exec("test", "-L", "/var/lib/borg-server/monitor/clients/web.lock", check=False).returncode == 1
    assert again.exec("stat", "-c", "%F %u %a", "/var/lib/borg-server/audit/sessions.jsonl").stdout == (
        "regular empty file 0 600\n"
    )

    # authorized_keys comes from the configuration only: db's key is refused, web still backs up.
    keys = again.exec("cat", "/var/lib/borg-server/ssh/authorized_keys").stdout
    assert sum(1 for line in keys.splitlines() if line and not line.startswith("#")) == 1, keys
    refused = attack(sandbox, db, '$SSH "borg@$SERVER" borg serve </dev/null', role="db-attacker")
    assert refused.returncode == 255 and "Permission denied" in refused.stderr, refused.stderr
    fill_volume(sandbox, web.data, "echo one > /data/file")
    web_known_hosts = "/var/lib/borg-server/export/web/known_hosts"
    again.exec("rmdir", web_known_hosts)
    assert again.exec("borg-server", "reload").returncode == 0
    assert again.exec("test", "-f", web_known_hosts).returncode == 0
    assert client_command(sandbox, web, ["run"]).returncode == 0
    assert "Traceback" not in logs(again.container)
