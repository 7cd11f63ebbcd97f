"""The sidecar's SSH key as orchestrators mount secrets (readable by everyone, owned by root) backs up; every refusal
by ssh (a key others may read, a key the server does not know, a server with another host key) is reported in ssh's
words."""

from __future__ import annotations

import pytest

from tests.harness.containers import CLIENT_IMAGE, Sandbox
from tests.harness.stack import client_command, fill_volume, make_client, start_server

OTHER_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMMGMDr32o+fZxuauSbaUuQBkW91mKBRRZDT2daWDXcK"
# A key the server does not know, and the admin key, mounted as Docker Swarm mounts a secret (0444, root's).
MADE_KEYS = (
    "ssh-keygen -q -t ed25519 -N '' -C wrong -f /keys/wrong && "
    "ssh-keygen -q -t ed25519 -N '' -C admin -f /keys/admin && chmod 444 /keys/admin && chown -R root:root /keys"
)
# The pairing export's key mounted as Docker Swarm (0444) and Kubernetes (0644) mount a secret: root's, all may read.
PAIRING_KEYS = (
    "cp /pairing/id_ed25519 /keys/swarm && chmod 444 /keys/swarm && "
    "cp /pairing/id_ed25519 /keys/kubernetes && chmod 644 /keys/kubernetes && chown -R root:root /keys"
)


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    """A server, client web (with an admin key) backed up once with its pairing export, and a volume of keys
    mounted as secrets."""
    sandbox = Sandbox()
    try:
        keys = sandbox.volume("keys")
        shell = ["-v", f"{keys}:/keys", "--entrypoint", "sh"]
        admin = sandbox.run("make-keys", CLIENT_IMAGE, shell, ["-c", f"{MADE_KEYS} && cat /keys/admin.pub"],
                            detach=False).stdout.strip()  # fmt: skip
        server = start_server(sandbox, ["web"], env={"BORG_CLIENT_WEB_ADMIN_KEY": admin})
        web = make_client(sandbox, server, "web", tmp_path_factory.mktemp("ssh-keys"))
        fill_volume(sandbox, web.data, "echo one > /data/file")
        assert client_command(sandbox, web, ["run"]).returncode == 0
        pairing = ["-v", f"{server.exports['web']}:/pairing:ro", *shell]
        sandbox.run("pairing-keys", CLIENT_IMAGE, pairing, ["-c", PAIRING_KEYS], detach=False)
        yield sandbox, server, web, keys
    finally:
        sandbox.cleanup()


def run_with_key(paired, key: str, extra: list[str] = (), command: str = "run", setting: str = "BORG_SSH_KEY_FILE"):
    """Run one borg-client command with setting=/run/secrets/<key> (mounted read-only); print what /dev/shm holds
    after it, and the key file's mode and owner."""
    sandbox, _server, web, keys = paired
    script = f"borg-client {command}; code=$?; ls -A /dev/shm; stat -c '%a %U' /run/secrets/$KEY; exit $code"
    return client_command(
        sandbox, web, ["-c", script], env={setting: f"/run/secrets/{key}", "KEY": key, "KEEP_DAILY": "7"},
        extra=["-v", f"{keys}:/run/secrets/keys:ro", "--entrypoint", "sh", *extra],
    )  # fmt: skip


@pytest.mark.parametrize(("key", "mode"), [("swarm", "444"), ("kubernetes", "644")])
def test_a_key_mounted_as_an_orchestrator_mounts_secrets_backs_up(paired, key, mode):
    result = run_with_key(paired, f"keys/{key}")

    assert result.returncode == 0, result.stderr
    assert "backup success: borg finished without problems" in result.stderr
    assert "ssh: " not in result.stderr  # ssh said nothing: no refusal, no warning
    assert result.stdout == f"{mode} root\n"  # no copy of the key left on the tmpfs; the mounted file as it was


def test_an_admin_key_mounted_as_swarm_mounts_secrets_prunes(paired):
    result = run_with_key(paired, "keys/admin", command="prune", setting="BORG_ADMIN_SSH_KEY_FILE")

    assert result.returncode == 0, result.stderr
    assert "INFO borg_client.report: prune success: kept " in result.stderr, result.stderr  # counts: by the order run
    assert "ssh: " not in result.stderr
    assert result.stdout == "444 root\n"


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
