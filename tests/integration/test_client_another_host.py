"""A sidecar on another host: paired by `borg-server new-client NAME --format compose`, it backs up under that
name; a sidecar without a stable name refuses to start rather than name its archives after its container."""

from __future__ import annotations

import re
import subprocess

from tests.harness.containers import CLIENT_IMAGE, SERVER_IMAGE, docker, logs, wait_until
from tests.harness.stack import fill_volume, make_client, start_server


def test_a_compose_sidecar_paired_by_new_client_backs_up_under_the_name_it_was_given(sandbox, tmp_path):
    # On the server host: a host key, and the new client's pairing script made before the server starts.
    host_key = tmp_path / "host_key"
    host_key.write_text(docker("run", "--rm", SERVER_IMAGE, "borg-server", "new-host-key").stdout)
    secret = ["-v", f"{host_key}:/run/secrets/borg_host_key:ro", "-e", "BORG_HOST_KEY_FILE=/run/secrets/borg_host_key"]
    script = docker("run", "--rm", *secret, "-e", f"BORG_SERVER_NAME={sandbox.name('server')}", SERVER_IMAGE,
                    "borg-server", "new-client", "far", "--format", "compose").stdout  # fmt: skip
    [public_key] = re.findall(r"^#\s+BORG_CLIENT_FAR_KEY: (ssh-ed25519 \S+ .*)$", script, re.MULTILINE)
    server = start_server(sandbox, ["far"], env={"BORG_CLIENT_FAR_KEY": public_key}, extra=secret)

    # On the client host: the script writes the pairing directory; the sidecar mounts it and sets nothing else.
    far_host = tmp_path / "far-host"
    far_host.mkdir()
    wrote = subprocess.run(["sh"], input=script, cwd=far_host, text=True, capture_output=True, check=True)
    assert wrote.stdout == "wrote borg-pairing-far: mount it at /pairing in the sidecar of far\n"
    client = make_client(sandbox, server, "far", tmp_path)
    fill_volume(sandbox, client.data, "echo far away > /data/note.txt")
    options = ["--network", server.network, "-v", f"{far_host / 'borg-pairing-far'}:/pairing:ro",
               "-v", f"{client.state}:/var/lib/borg-client", "-v", f"{client.data}:/backup/data:ro",
               "-v", f"{client.passphrase_file}:/run/secrets/borg_passphrase:ro",
               "-e", "BORG_PASSPHRASE_FILE=/run/secrets/borg_passphrase"]  # fmt: skip
    run = sandbox.run("far-run", CLIENT_IMAGE, options, ["run"], detach=False, check=False)
    listed = sandbox.run("far-list", CLIENT_IMAGE, options, ["list"], detach=False, check=False)

    assert run.returncode == 0, run.stderr
    assert listed.stdout.startswith("far-"), listed.stdout + listed.stderr


def test_a_sidecar_with_no_client_name_refuses_to_start_rather_than_use_its_container_hostname(sandbox, tmp_path):
    server = start_server(sandbox, ["web"])
    client = make_client(sandbox, server, "web", tmp_path)
    # Every file of the pairing export set by hand, as on another host, but no CLIENT_NAME.
    export = ["-v", f"{server.exports['web']}:/export:ro", "-e", "BORG_SSH_KEY_FILE=/export/id_ed25519",
              "-e", "BORG_KNOWN_HOSTS_FILE=/export/known_hosts",
              "-e", f"BORG_REPO=ssh://borg@{server.container}:22/./main",
              "-v", f"{client.passphrase_file}:/run/secrets/borg_passphrase:ro",
              "-e", "BORG_PASSPHRASE_FILE=/run/secrets/borg_passphrase", "--network", server.network]  # fmt: skip

    refused = sandbox.run("nameless", CLIENT_IMAGE, export, ["check-config"], detach=False, check=False)

    # Meanwhile the server's health check ran every 2 s and wrote nothing into sshd's log.
    probes = ["inspect", "-f", "{{len .State.Health.Log}}", server.container]
    wait_until(lambda: int(docker(*probes).stdout) >= 3, 30, "three health probes")
    assert "Connection from 127.0.0.1" not in logs(server.container)

    assert refused.returncode == 2
    assert refused.stderr.splitlines()[-1] == (
        "  CLIENT_NAME: not set, and no pairing export names this client; set it to the client's name on the server "
        "(BORG_CLIENTS): archives are named after it and prune keeps only its own, so it must stay the same when "
        "the container is re-created"
    ), refused.stderr
