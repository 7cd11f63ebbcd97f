"""Tests for the pairing formats: the known_hosts line clients pin and the repository URL they connect to."""

import pytest

from borg_server.config.reader import load
from borg_server.provision.pairing import known_hosts_line, repository_url
from borg_server.system.ssh_keys import parse_public_key

HOST_BLOB = "AAAAC3NzaC1lZDI1NTE5AAAAID26CUVU/8m/Dk6cyWmnuBbX1SpdBW8FFXYWWvdh1+ST"
HOST_KEY = parse_public_key(f"ssh-ed25519 {HOST_BLOB} borg-appliance host key")


def config(server_name: str | None = None, clients: str = "web", **environ: str):
    """Given BORG_SERVER_NAME (None: unset), BORG_CLIENTS and other settings, return the loaded configuration."""
    environ = {"BORG_CLIENTS": clients} | environ
    if server_name is not None:
        environ["BORG_SERVER_NAME"] = server_name
    return load(environ, "backup")


@pytest.mark.parametrize(
    ("server_name", "line"),
    [
        (None, f"backup ssh-ed25519 {HOST_BLOB}\n"),
        ("backup.example", f"backup.example ssh-ed25519 {HOST_BLOB}\n"),
        ("backup.example:22", f"backup.example ssh-ed25519 {HOST_BLOB}\n"),
        ("backup.example:2222", f"[backup.example]:2222 ssh-ed25519 {HOST_BLOB}\n"),
        ("192.0.2.10:2222", f"[192.0.2.10]:2222 ssh-ed25519 {HOST_BLOB}\n"),
        ("[2001:db8::1]:2222", f"[2001:db8::1]:2222 ssh-ed25519 {HOST_BLOB}\n"),
        ("[2001:db8::1]", f"2001:db8::1 ssh-ed25519 {HOST_BLOB}\n"),
    ],
)
def test_known_hosts_line_names_the_host_as_ssh_looks_it_up(server_name, line):
    assert known_hosts_line(HOST_KEY, config(server_name)) == line


def test_known_hosts_line_uses_the_ssh_port_when_the_server_name_has_none():
    assert known_hosts_line(HOST_KEY, config("backup.example", SSH_PORT="2022")) == (
        f"[backup.example]:2022 ssh-ed25519 {HOST_BLOB}\n"
    )


def test_known_hosts_line_drops_the_host_key_comment():
    assert "host key" not in known_hosts_line(HOST_KEY, config())


@pytest.mark.parametrize(
    ("server_name", "url"),
    [
        (None, "ssh://borg@backup:22/./main"),
        ("backup.example", "ssh://borg@backup.example:22/./main"),
        ("backup.example:2222", "ssh://borg@backup.example:2222/./main"),
        ("192.0.2.10", "ssh://borg@192.0.2.10:22/./main"),
        ("[2001:db8::1]", "ssh://borg@[2001:db8::1]:22/./main"),
        ("[2001:db8::1]:2222", "ssh://borg@[2001:db8::1]:2222/./main"),
    ],
)
def test_repository_url_points_at_the_main_repository_relative_to_the_client_directory(server_name, url):
    assert repository_url(config(server_name)) == url
