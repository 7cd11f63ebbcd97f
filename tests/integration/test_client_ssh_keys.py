"""The sidecar's SSH key as orchestrators mount secrets (readable by everyone, owned by root) backs up; every refusal
by ssh (a key others may read, a key the server does not know, a server with another host key) is reported in ssh's
words."""

from __future__ import annotations

import pytest

from tests.harness.containers import CLIENT_IMAGE, Sandbox
from tests.harness.stack import client_command, fill_volume, make_client, start_server

OTHER_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMMGMDr32o+fZxuauSbaUuQBkW91mKBRRZDT2daWDXcK"
# The pairing export's key mounted as Docker Swarm (0444) and Kubernetes (0644) mount a secret: root's, all may read.
KEYS = (
    "cp /pairing/id_ed25519 /keys/swarm && chmod 444 /keys/swarm && "
    "cp /pairing/id_ed25519 /keys/kubernetes && chmod 644 /keys/kubernetes && "
    "ssh-keygen -q -t ed25519 -N '' -C wrong -f /keys/wrong && chown -R root:root /keys"
)


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    """A server, client web backed up once with its pairing export, and a volume of keys mounted as secrets."""
    sandbox = Sandbox()
    try:
        server = start_server(sandbox, ["web"])
        web = make_client(sandbox, server, "web", tmp_path_factory.mktemp("ssh-keys"))
        fill_volume(sandbox, web.data, "echo one > /data/file")
        assert client_command(sandbox, web, ["run"]).returncode == 0
        keys = sandbox.volume("keys")
        options = ["-v", f"{server.exports['web']}:/pairing:ro", "-v", f"{keys}:/keys", "--entrypoint", "sh"]
        sandbox.run("keys", CLIENT_IMAGE, options, ["-c", KEYS], detach=False)
        yield sandbox, server, web, keys
    finally:
        sandbox.cleanup()


def run_with_key(paired, key: str, extra: list[str] = ()):
    """Run one backup with BORG_SSH_KEY_FILE=/run/secrets/<key> (mounted read-only); print what /dev/shm holds after."""
    sandbox, _server, web, keys = paired
    script = "borg-client run; code=$?; ls -A /dev/shm; stat -c '%a %U' /run/secrets/$KEY; exit $code"
    return client_command(
        sandbox, web, ["-c", script], env={"BORG_SSH_KEY_FILE": f"/run/secrets/{key}", "KEY": key},
        extra=["-v", f"{keys}:/run/secrets/keys:ro", "--entrypoint", "sh", *extra],
    )  # fmt: skip


@pytest.mark.parametrize(("key", "mode"), [("swarm", "444"), ("kubernetes", "644")])
def test_a_key_mounted_as_an_orchestrator_mounts_secrets_backs_up(paired, key, mode):
    result = run_with_key(paired, f"keys/{key}")

    assert result.returncode == 0, result.stderr
    assert "backup success: borg finished without problems" in result.stderr
    assert "UNPROTECTED" not in result.stderr and "are too open" not in result.stderr
    assert result.stdout == f"{mode} root\n"  # no copy of the key left on the tmpfs; the mounted file as it was


def test_a_key_the_server_does_not_know_is_reported_as_refused_in_ssh_s_words(paired):
    _sandbox, server, _web, _keys = paired
    result = run_with_key(paired, "keys/wrong")

    assert result.returncode == 2
    assert (
        "backup failure: borg create failed (exit 81): the server refused this client's key: is it the key the server "
        "has for CLIENT_NAME? (borg-server show-client NAME shows its fingerprint) "
        f"(ssh: borg@{server.container}: Permission denied (publickey).)\n" in result.stderr
    ), result.stderr


def test_a_key_ssh_refuses_with_no_tmpfs_for_a_copy_is_reported_in_ssh_s_words(paired):
    result = run_with_key(paired, "keys/swarm", extra=["--tmpfs", "/dev/shm:ro"])

    assert result.returncode == 2
    assert "cannot make a private copy of the private key /run/secrets/keys/swarm for ssh: Read-only file system" \
        in result.stderr  # fmt: skip
    assert (
        "backup failure: borg create failed (exit 81): ssh refused the private key: others may read it, and no "
        "private copy of it could be made in /dev/shm (see the warning before it in the log) "
        "(ssh: Permissions 0444 for '/run/secrets/keys/swarm' are too open.)\n" in result.stderr
    ), result.stderr


def test_a_server_showing_another_host_key_is_reported_as_host_key_verification_failed(paired, tmp_path):
    sandbox, server, web, _keys = paired
    (tmp_path / "known_hosts").write_text(f"{server.container} {OTHER_HOST_KEY}\n")

    result = client_command(sandbox, web, ["run"], env={"BORG_KNOWN_HOSTS_FILE": "/pins/known_hosts"},
                            extra=["-v", f"{tmp_path}:/pins:ro"])  # fmt: skip

    assert result.returncode == 2
    assert "ssh: Host key verification failed." in result.stderr  # ssh's own line, in the log whatever borg passed on
    assert (
        f"backup failure: host key verification failed: the backup server {server.container}:22 shows a host key "
        "that is not the one pinned in /pins/known_hosts: someone may be impersonating it; no backup was sent. If the "
        "server's key was changed on purpose, pin the new one (borg-server show-client prints it)\n" in result.stderr
    ), result.stderr
