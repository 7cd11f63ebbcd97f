"""A repository that vanished from the server is never replaced silently; URLs the sidecar prints keep no secrets.

The story: a sidecar backs up twice, then someone deletes its repository on the server (a lost
volume, a compromised or re-created server). The next run must fail, say what was there, create
nothing and keep the key export byte for byte; a new repository comes only from
`borg-client init --new-repository`, which keeps the old key export aside.
"""

from __future__ import annotations

import json

from tests.harness.containers import CLIENT_IMAGE
from tests.harness.stack import Client, client_command, fill_volume, make_client, start_server


def key_exports(sandbox, client: Client) -> dict[str, str]:
    """Return the sha256 of every file in the sidecar's key export directory, by name."""
    options = ["-v", f"{client.state}:/state:ro", "--entrypoint", "sh"]
    script = "cd /state/key-export && sha256sum *"
    listing = sandbox.run("peek", CLIENT_IMAGE, options, ["-c", script], detach=False).stdout
    return {name: digest for digest, name in (line.split() for line in listing.splitlines())}


def test_a_vanished_repository_fails_the_run_until_a_new_one_is_asked_for(sandbox, tmp_path):
    server = start_server(sandbox, ["web"])
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "echo one > /data/file")
    for _ in range(2):
        backup = client_command(sandbox, web, ["run"])
        assert backup.returncode == 0, backup.stderr
    keys_before = key_exports(sandbox, web)
    assert sorted(keys_before) == ["web.key", "web.key.txt"]

    # A typo in BORG_REPO is called what it is, and nothing is initialised at the mistyped place.
    typo = f"ssh://borg@{server.container}:22/./mian"
    mistyped = client_command(sandbox, web, ["run"], env={"BORG_REPO": typo})
    assert mistyped.returncode == 2, mistyped.stderr
    assert f"there is no repository at BORG_REPO {typo}, and this sidecar has backed up to another location, " \
           f"ssh://borg@{server.container}:22/./main (the last archive web-" in mistyped.stderr  # fmt: skip
    assert "is BORG_REPO mistyped? Nothing was initialised." in mistyped.stderr
    assert server.exec("test", "-e", "/srv/borg/web/mian", check=False).returncode == 1

    server.exec("rm", "-rf", "/srv/borg/web/main")
    gone = client_command(sandbox, web, ["run"])

    assert gone.returncode == 2, gone.stderr
    assert "held the 2 archives this sidecar wrote into it, the last web-" in gone.stderr
    assert "it is gone from the server. Nothing was initialised and the key export was kept" in gone.stderr
    assert "borg-client init --new-repository" in gone.stderr
    assert "initialising" not in gone.stderr
    assert server.exec("test", "-e", "/srv/borg/web/main", check=False).returncode == 1
    assert key_exports(sandbox, web) == keys_before
    status = json.loads(client_command(sandbox, web, ["status", "--json"]).stdout)
    assert status["last_runs"][-1]["status"] == "failure"
    assert "it is gone from the server" in status["last_runs"][-1]["message"]

    refused = client_command(sandbox, web, ["init"])
    assert refused.returncode == 2
    assert "run `borg-client init --new-repository`" in refused.stderr
    assert server.exec("test", "-e", "/srv/borg/web/main", check=False).returncode == 1

    fresh = client_command(sandbox, web, ["init", "--new-repository"])
    assert fresh.returncode == 0, fresh.stderr
    assert "initialised a new repository" in fresh.stdout and "kept as" in fresh.stdout
    again = client_command(sandbox, web, ["run"])
    assert again.returncode == 0, again.stderr
    assert len(client_command(sandbox, web, ["list", "--short"]).stdout.split()) == 1

    keys_after = key_exports(sandbox, web)
    aside = {name.split(".replaced-")[0]: digest for name, digest in keys_after.items() if ".replaced-" in name}
    assert aside == keys_before  # the old key export, byte for byte, under a time-suffixed name
    assert keys_after["web.key"] != keys_before["web.key"]  # the new repository's own key


def test_check_config_shows_report_urls_without_password_or_path_tokens(sandbox, tmp_path):
    server = start_server(sandbox, ["web"])
    web = make_client(sandbox, server, "web", tmp_path)
    env = {
        "REPORT_URLS": "http://u:p@host:8080/secret-token",
        "HEALTHCHECKS_URL": "https://hc.example/ping/uuid-secret",
        "BACKUP_STOP_LABEL_FILE": "/run/secrets/borg_passphrase",  # a mistake: any text is a valid label
    }
    socket = ["-v", f"{web.passphrase_file}:/var/run/docker.sock:ro"]  # a label needs the socket to be there

    shown = client_command(sandbox, web, ["check-config"], env=env, extra=socket)

    assert shown.returncode == 0, shown.stderr
    settings = json.loads(shown.stdout)
    assert settings["report_urls"] == "('http://host:8080/…',)"
    assert settings["healthchecks_url"] == "https://hc.example/…"
    assert settings["stop_label"] == "(read from BACKUP_STOP_LABEL_FILE)"
    output = shown.stdout + shown.stderr
    assert not any(secret in output for secret in ("secret-token", "uuid-secret", "u:p", "/ping"))
    assert web.passphrase_file.read_text().strip() not in output
