"""Tests for `borg-server new-client`: the secrets of a client on another host, for Swarm and for Kubernetes."""

import subprocess

import pytest
import yaml

from borg_server.provision import pairing_secrets
from borg_server.provision.pairing_secrets import NoHostKey, render, server_host_key
from borg_server.records.configuration import Endpoint
from borg_server.system.ssh_keys import parse_public_key
from tests.unit.borg_server.sample_keys import ED25519, ED25519_OTHER

HOST_KEY = parse_public_key(ED25519)
ENDPOINT = Endpoint("borg-server", 2222, None)
PRIVATE = "-----BEGIN OPENSSH" + " PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"  # a stand-in
KEYS = (PRIVATE, ED25519_OTHER)
KNOWN_HOSTS = f"[borg-server]:2222 {HOST_KEY.type} {HOST_KEY.blob}\n"
URL = "ssh://borg@borg-server:2222/./main"


def test_the_swarm_script_creates_the_three_secrets_with_exactly_their_contents(tmp_path):
    docker = tmp_path / "docker"  # a stand-in for docker: keeps what `docker secret create NAME -` reads
    docker.write_text(f'#!/bin/sh\n[ "$1 $2 $4" = "secret create -" ] && cat > "{tmp_path}/$3"\n')
    docker.chmod(0o755)
    script = render("db_main", "swarm", ENDPOINT, HOST_KEY, KEYS)

    done = subprocess.run(
        ["sh"], input=script, capture_output=True, text=True, env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, check=True
    )

    assert (tmp_path / "borg_db_main_ssh_key").read_text() == PRIVATE
    assert (tmp_path / "borg_db_main_ssh_key_pub").read_text() == ED25519_OTHER + "\n"
    assert (tmp_path / "borg_db_main_known_hosts").read_text() == KNOWN_HOSTS
    assert done.stdout.splitlines() == [
        "created secret borg_db_main_ssh_key",
        "created secret borg_db_main_ssh_key_pub",
        "created secret borg_db_main_known_hosts",
    ]


def test_the_swarm_script_says_which_settings_point_at_the_secrets():
    script = render("db_main", "swarm", ENDPOINT, HOST_KEY, KEYS)

    assert "BORG_CLIENT_DB_MAIN_KEY_FILE=/run/secrets/borg_db_main_ssh_key_pub" in script
    assert f"CLIENT_NAME=db_main BORG_REPO={URL}" in script
    assert "BORG_SSH_KEY_FILE=/run/secrets/borg_db_main_ssh_key (mount it with mode: 0400)" in script
    assert "BORG_KNOWN_HOSTS_FILE=/run/secrets/borg_db_main_known_hosts" in script


def test_the_kubernetes_client_secret_is_a_pairing_export_and_the_server_gets_only_the_public_key():
    documents = list(yaml.safe_load_all(render("db_main", "kubernetes", ENDPOINT, HOST_KEY, KEYS)))

    assert [(d["kind"], d["metadata"]["name"]) for d in documents] == [
        ("Secret", "borg-db-main-client"),
        ("Secret", "borg-db-main-server"),
    ]
    assert documents[0]["stringData"] == {
        "id_ed25519": PRIVATE,
        "known_hosts": KNOWN_HOSTS,
        "repo_url": URL + "\n",
        "client_name": "db_main\n",
    }
    assert documents[1]["stringData"] == {"id_ed25519.pub": ED25519_OTHER + "\n"}


def test_the_pinned_host_key_is_the_configured_one_else_the_generated_one(paths):
    with pytest.raises(NoHostKey, match="no host key yet: set BORG_HOST_KEY_FILE"):
        server_host_key(ENDPOINT, paths)

    paths.ssh.mkdir(parents=True)
    (paths.ssh / "ssh_host_ed25519_key.pub").write_text(ED25519 + "\n")
    assert server_host_key(ENDPOINT, paths) == HOST_KEY


def test_kubernetes_names_are_dns_labels():
    names = pairing_secrets.kubernetes_names("db_main")

    assert names == {"client": "borg-db-main-client", "server": "borg-db-main-server"}


def test_the_command_line_offers_exactly_the_formats_render_knows():
    from borg_server import __main__

    assert __main__.SECRET_FORMATS == pairing_secrets.FORMATS


def test_the_compose_script_writes_a_private_pairing_export_and_never_overwrites_one(tmp_path):
    script = render("db_main", "compose", ENDPOINT, HOST_KEY, KEYS)

    done = subprocess.run(["sh"], input=script, capture_output=True, text=True, cwd=tmp_path, check=True)
    again = subprocess.run(["sh"], input=script, capture_output=True, text=True, cwd=tmp_path, check=False)

    export = tmp_path / "borg-pairing-db_main"
    assert {path.name: path.read_text() for path in export.iterdir()} == {
        "id_ed25519": PRIVATE,
        "known_hosts": KNOWN_HOSTS,
        "repo_url": URL + "\n",
        "client_name": "db_main\n",
    }
    assert {oct(path.stat().st_mode & 0o777) for path in export.iterdir()} == {"0o600"}
    assert oct(export.stat().st_mode & 0o777) == "0o700"
    assert done.stdout == "wrote borg-pairing-db_main: mount it at /pairing in the sidecar of db_main\n"
    assert (again.returncode, again.stderr) == (1, "borg-pairing-db_main exists already: nothing was written\n")


def test_the_compose_script_says_what_each_side_sets():
    script = render("db_main", "compose", ENDPOINT, HOST_KEY, KEYS)

    assert f"#            BORG_CLIENT_DB_MAIN_KEY: {ED25519_OTHER}\n" in script
    assert "#              - ./borg-pairing-db_main:/pairing:ro\n" in script
    assert "#              CLIENT_NAME: db_main\n" in script
