"""One Unix account per client: what a session (or a process with a client's uid) can reach, tried as an attacker."""

from __future__ import annotations

import json
import re

import pytest

from tests.harness.containers import CLIENT_IMAGE, Sandbox, docker, health, logs, wait_until
from tests.harness.stack import SSH, client_command, fill_volume, make_client, start_server

BORG_UID = "1000"  # PUID: the login account that runs the forced command
MARKER_MODULE = "open('/tmp/planted-{where}', 'w').write('imported')\n"


@pytest.fixture(scope="module")
def two_clients(tmp_path_factory):
    """A server with clients web and db, each with one backup."""
    sandbox = Sandbox()
    tmp_path = tmp_path_factory.mktemp("accounts")
    try:
        server = start_server(sandbox, ["web", "db"])
        web, db = make_client(sandbox, server, "web", tmp_path), make_client(sandbox, server, "db", tmp_path)
        fill_volume(sandbox, web.data, "echo 'web data' > /data/web.txt")
        fill_volume(sandbox, db.data, "echo 'db secret' > /data/secret.txt")
        for client in (web, db):
            result = client_command(sandbox, client, ["run"])
            assert result.returncode == 0, result.stdout + result.stderr
        yield sandbox, server, web, db
    finally:
        sandbox.cleanup()


def account_of(server, name: str) -> tuple[str, int]:
    """Return the client's account (user name, uid) as show-client prints it."""
    text = server.exec("borg-server", "show-client", name).stdout
    match = re.search(r"^account: +(borg-\S+) \(uid (\d+), gid \2\)$", text, re.MULTILINE)
    assert match, text
    return match[1], int(match[2])


def as_uid(server, uid: int | str, script: str):
    return server.exec("sh", "-c", script, check=False, user=f"{uid}:{uid}")


def sessions(server) -> list[dict]:
    text = server.exec("cat", "/var/lib/borg-server/audit/sessions.jsonl").stdout
    return [record for record in map(json.loads, text.splitlines()) if record.get("event") == "borg-session"]


def test_each_client_directory_belongs_to_its_own_uid_only(two_clients):
    _sandbox, server, _web, _db = two_clients
    (web_user, web_uid), (db_user, db_uid) = account_of(server, "web"), account_of(server, "db")

    stat = server.exec("stat", "-c", "%n %U %u:%g %a", "/srv/borg/web", "/srv/borg/db").stdout.splitlines()

    assert stat == [f"/srv/borg/web borg-web {web_uid}:{web_uid} 700", f"/srv/borg/db borg-db {db_uid}:{db_uid} 700"]
    assert (web_user, db_user) == ("borg-web", "borg-db")
    assert len({web_uid, db_uid, int(BORG_UID)}) == 3
    for name, uid in (("web", web_uid), ("db", db_uid)):  # borg serve wrote every file as the client's uid
        assert server.exec("find", f"/srv/borg/{name}", "!", "-uid", str(uid)).stdout == ""
    assert server.exec("find", "/srv/borg", "-uid", BORG_UID).stdout == ""


@pytest.mark.parametrize("who", ["web", "borg"])
def test_a_process_with_a_clients_or_the_login_uid_reaches_no_other_repository_nor_what_the_server_trusts(
    two_clients, who
):
    _sandbox, server, _web, _db = two_clients
    uid = account_of(server, "web")[1] if who == "web" else BORG_UID
    audit = "/var/lib/borg-server/audit/sessions.jsonl"
    before = server.exec("sha256sum", audit).stdout

    reads = as_uid(server, uid, "ls /srv/borg/db/main; cat /srv/borg/db/main/config")
    forges = as_uid(server, uid, f'echo \'{{"event": "borg-session", "client": "web"}}\' >> {audit}')
    registry = as_uid(server, uid, "cat /var/lib/borg-server/accounts.json")

    assert reads.returncode != 0 and "Permission denied" in reads.stderr, reads
    assert "[repository]" not in reads.stdout
    assert forges.returncode != 0 and "Permission denied" in forges.stderr, forges
    assert registry.returncode != 0 and "Permission denied" in registry.stderr, registry
    assert server.exec("sha256sum", audit).stdout == before
    assert server.exec("stat", "-c", "%u:%g %a", audit).stdout.strip() == "0:0 600"


def test_a_clients_uid_cannot_reach_the_session_broker(two_clients):
    _sandbox, server, _web, _db = two_clients
    connect = (
        "import socket; s = socket.socket(socket.AF_UNIX); "
        "s.connect('/run/borg-server/broker/broker.sock'); print('connected')"
    )

    result = server.exec("python3", "-c", connect, check=False, user=f"{account_of(server, 'web')[1]}")

    assert result.returncode != 0 and "PermissionError" in result.stderr, result
    assert "connected" not in result.stdout


def test_every_session_gets_one_root_written_record_with_its_committed_segments(two_clients):
    sandbox, server, web, _db = two_clients
    known = len(sessions(server))

    result = client_command(sandbox, web, ["run"])

    assert result.returncode == 0, result.stdout + result.stderr
    new = [record for record in sessions(server)[known:] if record["client"] == "web"]
    assert new, sessions(server)
    backup = [record for record in new if record["committed_after"] != record["committed_before"]]
    assert len(backup) == 1, new
    assert backup[0]["exit_code"] == 0 and backup[0]["role"] == "append"
    assert backup[0]["committed_after"] > backup[0]["committed_before"]
    status = json.loads(server.exec("borg-server", "status", "--json").stdout)
    wait_until(
        lambda: json.loads(server.exec("borg-server", "status", "--json").stdout)[1]["last_backup"],
        60, "the monitor to see web's backup",
    )  # fmt: skip
    assert [entry["client"] for entry in status] == ["db", "web"]


def is_borg_serve(process_line: str) -> bool:
    return "borg serve --" in process_line and "borg-server" not in process_line


def test_borg_serve_runs_as_the_clients_uid_and_only_the_wrapper_as_the_login_account(two_clients):
    sandbox, server, web, _db = two_clients
    web_uid = account_of(server, "web")[1]
    options = [*web.options({"SSH": SSH, "SERVER": server.container}), "--entrypoint", "sh"]
    sandbox.run("holder", CLIENT_IMAGE, options, ["-c", "sleep 60 | $SSH borg@$SERVER borg serve"])
    processes = (
        "for p in /proc/[0-9]*; do c=$(tr '\\0' ' ' < $p/cmdline 2>/dev/null); "
        'case "$c" in *"borg serve"*|*"borg-server serve"*) echo "$(stat -c %u $p) $c";; esac; done'
    )

    def session_processes() -> list[str]:
        lines = server.exec("sh", "-c", processes).stdout.splitlines()
        return lines if any(is_borg_serve(line) for line in lines) else []

    lines = wait_until(session_processes, 30, "a borg serve session to run")
    docker("rm", "-f", sandbox.name("holder"), check=False)

    serve = [line for line in lines if is_borg_serve(line)]
    wrapper = [line for line in lines if "borg-server serve --client web" in line]
    assert serve and all(line.startswith(f"{web_uid} ") for line in serve), lines
    assert any("--restrict-to-path /srv/borg/web" in line for line in serve), lines
    assert wrapper and all(line.startswith(f"{BORG_UID} ") for line in wrapper), lines


def test_a_module_planted_where_a_session_runs_or_in_borgs_home_is_never_imported(two_clients):
    sandbox, server, web, _db = two_clients
    web_uid = account_of(server, "web")[1]
    user_site = server.exec(
        "sh", "-c", "HOME=/home/borg python3 -c 'import site; print(site.getusersitepackages())'"
    ).stdout.strip()
    plant = {
        "cwd-of-borg-serve": "/srv/borg/web",
        "cwd-of-the-wrapper": "/home/borg",
        "user-site": user_site,
        "pythonpath": "/home/borg/lib",
    }
    for where, directory in plant.items():
        script = f'mkdir -p {directory}/borg_server && printf %s "$0" > {directory}/borg_server/__init__.py'
        server.exec("sh", "-c", script, MARKER_MODULE.format(where=where))
    server.exec("chown", "-R", f"{web_uid}:{web_uid}", "/srv/borg/web/borg_server")
    server.exec("chown", "-R", "borg:borg", "/home/borg")

    result = client_command(sandbox, web, ["run"])
    status = server.exec("sh", "-c", "cd /home/borg && PYTHONPATH=/home/borg/lib borg-server status", check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert status.returncode == 0, status
    assert server.exec("sh", "-c", "ls /tmp | grep planted || true").stdout == ""


def test_an_upgraded_volume_owned_by_the_old_borg_uid_is_reowned_at_start_and_backups_go_on(two_clients):
    sandbox, server, web, _db = two_clients
    web_uid = account_of(server, "web")[1]
    server.exec("chown", "-R", f"{BORG_UID}:{BORG_UID}", "/srv/borg/web")  # as the previous version left it
    server.exec("rm", "-rf", "/srv/borg/web/borg_server")

    docker("restart", server.container)
    wait_until(lambda: health(server.container) == "healthy", 60, "the restarted server to be healthy")

    assert server.exec("find", "/srv/borg/web", "!", "-uid", str(web_uid)).stdout == ""
    assert re.search(rf"client web: re-owned \d+ entries to borg-web \(uid {web_uid}\)", logs(server.container))
    result = client_command(sandbox, web, ["run"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert account_of(server, "web")[1] == web_uid


PLANT = """
cd /srv/borg/web/main
sed -i 's/^additional_free_space = .*/additional_free_space = 1/' config
ln -s /etc/planted-by-web .config.borg-server
"""


def test_symlinks_a_clients_uid_plants_in_its_repository_are_never_followed_by_root(sandbox, tmp_path):
    # Code running as web's account (a flaw in borg serve) plants a link where the monitor writes its
    # copy of the config when it sets DISK_RESERVE (web may delete: no baseline holds its config back).
    env = {"MONITOR_INTERVAL": "10s", "BORG_CLIENT_WEB_APPEND_ONLY": "no", "DISK_RESERVE": "20M"}
    server = start_server(sandbox, ["web"], env=env)
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "echo one > /data/file")
    assert client_command(sandbox, web, ["run"]).returncode == 0
    web_uid = account_of(server, "web")[1]
    assert as_uid(server, web_uid, PLANT).returncode == 0

    server.exec("borg-server", "scan")
    server.exec("borg-server", "scan")  # two scans, each of which sets the reserve in the config

    assert server.exec("test", "-e", "/etc/planted-by-web", check=False).returncode == 1
    config = server.exec("stat", "-c", "%F %u %a", "/srv/borg/web/main/config").stdout.split("\n")[0]
    assert config == f"regular file {web_uid} 600"
    assert "additional_free_space = 20000000" in server.exec("cat", "/srv/borg/web/main/config").stdout
    assert client_command(sandbox, web, ["run"]).returncode == 0
