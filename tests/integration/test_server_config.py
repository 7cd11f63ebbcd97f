"""The server's configuration at start: bad settings are refused before anything changes; keys persist."""

from __future__ import annotations

import pytest

from tests.harness.containers import SERVER_IMAGE, Sandbox, docker, health, logs, wait_until
from tests.harness.stack import client_command, fill_volume, make_client, start_server, tree_digest
from tests.harness.tables import run_table

# Real public keys (made with ssh-keygen for these tests; the private halves were thrown away).
KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMMGMDr32o+fZxuauSbaUuQBkW91mKBRRZDT2daWDXcK a@test"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICvMkyGMwfHiOblU3GvMltMwpDcAMiSUQH9Jh0CjL4tj b@test"
RSA_1024 = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC32slqn1LertlUpVN4PeqvlklPJAqmNjaN/nDyLtEYK+F5NQoT5LTg4TLluUlEb2ZGw4aEdH"
    "k26Q4/59cOQSdgF5whqaS7gt8kRz+t12VJGvC2kS5PaO0dHsbgxB/VTR3KS9cnUvkGirehu22ZXqyr5oeurKWyba+BZw0G5pLLLw== short@test"
)

BAD_CONFIGURATIONS = {
    "invalid client name": ({"BORG_CLIENTS": "Web"}, "BORG_CLIENTS"),
    "client listed twice": ({"BORG_CLIENTS": "web web"}, "BORG_CLIENTS"),
    "names colliding in variables": ({"BORG_CLIENTS": "web-1 web_1"}, "BORG_CLIENTS"),
    "no client at all": ({"BORG_CLIENTS": ""}, "BORG_CLIENTS"),
    "key of two lines": ({"BORG_CLIENT_WEB_KEY": f"{KEY_A}\n{KEY_B}"}, "BORG_CLIENT_WEB_KEY: has 2 lines"),
    "key with options": ({"BORG_CLIENT_WEB_KEY": f'command="sh" {KEY_A}'}, "BORG_CLIENT_WEB_KEY: starts with options"),
    "private key": ({"BORG_CLIENT_WEB_KEY": "-----BEGIN OPENSSH " + "PRIVATE KEY-----"}, "BORG_CLIENT_WEB_KEY"),
    "unknown key type": ({"BORG_CLIENT_WEB_KEY": "ssh-foo AAAAC3Nz"}, "BORG_CLIENT_WEB_KEY"),
    "key blob of another type": ({"BORG_CLIENT_WEB_KEY": "ssh-rsa " + KEY_A.split()[1]}, "BORG_CLIENT_WEB_KEY"),
    "same key for two clients": ({"BORG_CLIENT_WEB_KEY": KEY_A, "BORG_CLIENT_DB_KEY": KEY_A}, "BORG_CLIENT_"),
    "same key as admin key": ({"BORG_CLIENT_WEB_KEY": KEY_A, "BORG_CLIENT_WEB_ADMIN_KEY": KEY_A}, "BORG_CLIENT_WEB"),
    "bad quota": ({"BORG_CLIENT_WEB_QUOTA": "lots"}, "BORG_CLIENT_WEB_QUOTA"),
    "quota below borg's minimum": ({"BORG_CLIENT_WEB_QUOTA": "5M"}, "BORG_CLIENT_WEB_QUOTA"),
    "bad append-only flag": ({"BORG_CLIENT_WEB_APPEND_ONLY": "maybe"}, "BORG_CLIENT_WEB_APPEND_ONLY"),
    "setting for an unknown client": ({"BORG_CLIENT_WEBX_KEY": KEY_A}, "BORG_CLIENT_WEBX_KEY"),
    "misspelt client setting": ({"BORG_CLIENT_WEB_QUTA": "5G"}, "BORG_CLIENT_WEB_QUTA"),
    "non-numeric PUID": ({"PUID": "abc"}, "PUID"),
    "root PGID": ({"PGID": "0"}, "PGID"),
    "port out of range": ({"SSH_PORT": "70000"}, "SSH_PORT"),
    "unknown log level": ({"SSH_LOG_LEVEL": "LOUD"}, "SSH_LOG_LEVEL"),
    "unreadable key file": ({"BORG_CLIENT_WEB_KEY_FILE": "/nonexistent.pub"}, "BORG_CLIENT_WEB_KEY_FILE"),
    "key and key file both set": (
        {"BORG_CLIENT_WEB_KEY": KEY_A, "BORG_CLIENT_WEB_KEY_FILE": "/etc/hostname"},
        "BORG_CLIENT_WEB_KEY",
    ),
    "missing YAML file": ({"BORG_SERVER_CONFIG": "/nonexistent.yaml"}, "BORG_SERVER_CONFIG"),
    "bad server name": ({"BORG_SERVER_NAME": "bad name!"}, "BORG_SERVER_NAME"),
    "short RSA key": ({"BORG_CLIENT_WEB_KEY": RSA_1024}, "BORG_CLIENT_WEB_KEY: is an RSA key of 1024 bits"),
    "misspelled setting": (
        {"MONITOR_INTERVALL": "1m"},
        "MONITOR_INTERVALL: is not a setting of the server; did you mean MONITOR_INTERVAL?",
    ),
}


@pytest.fixture(scope="module")
def configured(tmp_path_factory):
    """A server that started well with clients web and db and holds one backup, then was stopped."""
    sandbox = Sandbox()
    try:
        server = start_server(sandbox, ["web", "db"], env={"MONITOR_INTERVAL": "10s"})
        web = make_client(sandbox, server, "web", tmp_path_factory.mktemp("config"))
        fill_volume(sandbox, web.data, "echo precious > /data/file.txt")
        assert client_command(sandbox, web, ["run"]).returncode == 0
        # The monitor writes the disk reserve into a new repository's config once; after that a good
        # start changes nothing.
        wait_until(lambda: "additional_free_space set" in logs(server.container), 30, "the reserve in the config")
        # The default reserve is 1G in decimal units, as every size setting (at most 2% of the disk).
        statvfs = "import os; s = os.statvfs('/srv/borg'); print(s.f_blocks * s.f_frsize)"
        total = int(server.exec("python3", "-c", statvfs).stdout)
        config = server.exec("cat", "/srv/borg/web/main/config").stdout
        assert f"additional_free_space = {min(1000**3, int(total * 0.02))}\n" in config, config
        docker("stop", server.container)
        yield sandbox, server, tree_digest(sandbox, server)
    finally:
        sandbox.cleanup()


@pytest.fixture(scope="module")
def bad_starts(configured, tmp_path_factory):
    """Every bad configuration tried, one after another, in one container on the stopped server's volumes."""
    sandbox, server, _digest = configured
    cases = [{"id": case, "set": {"BORG_CLIENTS": "web db", **env}} for case, (env, _) in BAD_CONFIGURATIONS.items()]
    options = ["-v", f"{server.repositories}:/srv/borg", "-v", f"{server.state}:/var/lib/borg-server"]
    directories = ["/srv/borg", "/var/lib/borg-server"]
    command = ["/usr/local/bin/borg-server-entrypoint", "supervisord"]
    return run_table(sandbox, SERVER_IMAGE, options, cases, tmp_path_factory.mktemp("bad"), directories, command)


@pytest.mark.parametrize("case", BAD_CONFIGURATIONS)
def test_a_bad_configuration_is_refused_naming_the_setting_and_changes_nothing(bad_starts, case):
    _env, setting = BAD_CONFIGURATIONS[case]
    outcome = bad_starts.outcomes[case]
    assert outcome["rc"] == 2, outcome
    assert outcome["seconds"] < 20
    assert "nothing was changed" in outcome["stderr"]
    problems = [line.strip() for line in outcome["stderr"].splitlines() if line.startswith("  ")]
    assert any(problem.startswith(setting) for problem in problems), outcome["stderr"]
    assert "Traceback" not in outcome["stderr"]
    assert outcome["digest"] == bad_starts.before  # not a byte of keys, authorized_keys or data changed


def test_after_bad_starts_a_good_start_works_with_the_same_keys_and_data(configured, bad_starts):
    sandbox, server, digest = configured
    assert tree_digest(sandbox, server) == digest
    docker("start", server.container)
    wait_until(lambda: health(server.container) == "healthy", 60, "the server to be healthy again")
    assert tree_digest(sandbox, server) == digest  # same keys, authorized_keys and data, not a byte changed


def fingerprints(server) -> str:
    return server.exec(
        "sh", "-c", "ssh-keygen -lf /var/lib/borg-server/ssh/ssh_host_ed25519_key.pub && "
        "ssh-keygen -lf /var/lib/borg-server/clients/web/id_ed25519.pub"
    ).stdout  # fmt: skip


def test_restart_and_recreate_keep_host_keys_and_generated_client_keys(sandbox):
    server = start_server(sandbox, ["web"])
    before = fingerprints(server)
    docker("restart", server.container)
    wait_until(lambda: health(server.container) == "healthy", 60, "the restarted server to be healthy")
    assert fingerprints(server) == before
    docker("rm", "-f", server.container)
    recreated = start_server(sandbox, ["web"], network=server.network)
    assert fingerprints(recreated) == before
