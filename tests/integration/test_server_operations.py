"""Running the server: reload without dropping sessions, removing clients, quotas, status, a dying sshd."""

from __future__ import annotations

import json
import re

from tests.harness.containers import CLIENT_IMAGE, docker, health, logs, wait_until
from tests.harness.stack import SSH, attack, client_command, fill_volume, make_client, start_server

YAML_WEB = "clients:\n  web: {}\n"
YAML_WEB_DB = "clients:\n  web: {}\n  db:\n    append_only: false\n"
YAML_DB = "clients:\n  db: {}\n"


def test_reload_applies_new_clients_and_removes_old_keys_without_dropping_a_running_session(sandbox, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "server.yaml").write_text(YAML_WEB)
    server = start_server(
        sandbox, ["web"], env={"BORG_CLIENTS": "", "BORG_SERVER_CONFIG": "/config/server.yaml"},
        extra=["-v", f"{config}:/config:ro"],
    )  # fmt: skip
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "echo one > /data/file")
    assert client_command(sandbox, web, ["run"]).returncode == 0

    # A session that holds the repository lock for a while, as a long backup would.
    sandbox.run("long", CLIENT_IMAGE, [*web.options(), "--entrypoint", "sh"],
                ["-c", 'borg-client borg with-lock "$(cat /pairing/repo_url)" sleep 15'])  # fmt: skip
    wait_until(lambda: "borg serve" in server.exec("ps", "-eo", "args", check=False).stdout, 30, "a borg session")

    (config / "server.yaml").write_text(YAML_WEB_DB)
    reload = server.exec("borg-server", "reload")
    assert "reloaded: 2 clients" in reload.stderr
    keys = server.exec("cat", "/var/lib/borg-server/ssh/authorized_keys").stdout
    assert "--client db --role full" in keys and "--client web --role append" in keys

    assert docker("wait", sandbox.name("long")).stdout.strip() == "0"  # the session ran to its end
    assert health(server.container) == "healthy"

    # Someone kept a copy of web's key; then web is removed from the configuration.
    kept = sandbox.volume("kept-key")
    sandbox.run("keep", CLIENT_IMAGE, ["-v", f"{server.exports['web']}:/pairing:ro", "-v", f"{kept}:/kept",
                "--entrypoint", "cp"], ["-a", "/pairing/.", "/kept/"], detach=False)  # fmt: skip
    (config / "server.yaml").write_text(YAML_DB)
    server.exec("borg-server", "reload")
    keys = server.exec("cat", "/var/lib/borg-server/ssh/authorized_keys").stdout
    assert "--client web" not in keys
    assert server.exec("test", "-e", "/var/lib/borg-server/clients/web", check=False).returncode == 1
    assert server.exec("test", "-f", "/srv/borg/web/main/config").returncode == 0  # its data is kept
    assert server.exec("ls", "-A", "/var/lib/borg-server/export/web").stdout == ""  # the pairing export is empty
    refused = sandbox.run(
        "refused", CLIENT_IMAGE, ["--network", server.network, "-v", f"{kept}:/pairing:ro",
        "--entrypoint", "sh"], ["-c", f"{SSH} borg@{server.container} </dev/null"], detach=False, check=False,
    )  # fmt: skip
    assert refused.returncode == 255
    assert "Permission denied (publickey)" in refused.stderr


def test_a_quota_stops_writes_beyond_it_and_cannot_be_dodged_with_a_second_repository(sandbox, tmp_path):
    server = start_server(sandbox, ["web"], env={"BORG_CLIENT_WEB_QUOTA": "12M"})
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "head -c 20000000 /dev/urandom > /data/random.bin")
    over = client_command(sandbox, web, ["run"])
    assert over.returncode == 2
    assert "StorageQuotaExceeded" in over.stderr, over.stderr
    dodge = attack(sandbox, web, 'BORG_RSH="$SSH" borg --log-json init -e none "ssh://borg@$SERVER:22/./other"')
    assert '"msgid": "PathNotAllowed"' in dodge.stderr, dodge.stderr


def test_status_and_show_client_describe_each_client(world):
    server = world.server
    statuses = {entry["client"]: entry for entry in json.loads(server.exec("borg-server", "status", "--json").stdout)}
    assert statuses["web"]["last_backup"] is not None and statuses["web"]["repository_bytes"] > 0
    assert statuses["web"]["append_only"] is True
    assert statuses["db"]["last_backup"] is None and statuses["db"]["append_only"] is False
    table = server.exec("borg-server", "status").stdout.splitlines()
    assert table[0].split() == ["CLIENT", "LAST", "BACKUP", "AGE", "SIZE", "QUOTA", "APPEND-ONLY", "DELETES", "CHECK",
                                "ALERTS", "AUTO-COMPACT", "ADMIN", "DELETES", "NEXT", "COMPACTION", "LAST",
                                "FREED"]  # fmt: skip
    assert table[1].split()[:3] == ["db", "never", "-"]
    web_row = re.split(r"\s{2,}", table[2])  # columns are two spaces apart; "1.2 kB" is one cell
    assert web_row[0] == "web" and web_row[5:7] == ["yes", "0"], table

    shown = server.exec("borg-server", "show-client", "web").stdout
    fingerprint = server.exec("ssh-keygen", "-lf", "/var/lib/borg-server/clients/web/id_ed25519.pub").stdout.split()[1]
    assert f"fingerprint:    {fingerprint}" in shown
    assert f"repository URL: ssh://borg@{server.container}:22/./main" in shown
    unknown = server.exec("borg-server", "show-client", "nobody", check=False)
    assert unknown.returncode == 2 and "no client 'nobody' is configured" in unknown.stderr


def test_an_sshd_that_dies_for_good_takes_the_container_down(sandbox):
    server = start_server(sandbox, ["web"])

    def sshd_running() -> bool:  # a plain supervisorctl finds the running supervisord
        return bool(re.search(r"^sshd\s+RUNNING", server.exec("supervisorctl", "status").stdout, re.MULTILINE))

    wait_until(sshd_running, 10, "supervisor to call sshd RUNNING (sshd answers a little before)")
    server.exec("sh", "-c", "chmod -x /usr/sbin/sshd && supervisorctl signal KILL sshd")
    wait_until(lambda: health(server.container) == "exited", 60, "the container to stop")
    assert "a program failed for good" in logs(server.container)
