"""Tests for the host key given as a setting: checked as sshd would read it, copied into place, never quoted."""

import base64
import os
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from borg_common.settings import ConfigError
from borg_server.config.reader import load, load_endpoint
from borg_server.provision import start
from borg_server.system import host_key
from borg_server.system.host_key import parse_private_key
from borg_server.system.ssh_keys import KeyProblem
from tests.unit.borg_server.sample_keys import ARMOUR, PUBLIC, private_key, string


def test_an_ed25519_private_key_gives_its_public_key_named_as_the_appliance_s_host_key():
    key = parse_private_key(private_key())

    assert key.type == "ssh-ed25519"
    assert base64.b64decode(key.blob) == string(b"ssh-ed25519") + string(PUBLIC)
    assert key.comment == "borg-appliance host key"


def rsa_private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encoding, format = serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH
    return key.private_bytes(encoding, format, serialization.NoEncryption()).decode()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "is empty; give an OpenSSH ed25519 private key (make one with: borg-server new-host-key)"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOxYbhQW host", "is a public key; give the private key"),
        ("-----BEGIN RSA" + " PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", "is a PEM private key"),
        ("just some text", "is not an OpenSSH private key"),
        (f"{ARMOUR[0]}\n!!!\n{ARMOUR[1]}", "is damaged: its body is not base64"),
        (private_key(cipher=b"aes256-ctr"), "is protected by a passphrase, which sshd cannot ask for"),
        (private_key(count=2), "holds more than one key; give exactly one"),
        (rsa_private_key(), "is a ssh-rsa key; the host key is ssh-ed25519"),
        (
            private_key(key_type=b"x-unknown@example.com"),
            "is of a type sshd cannot use as a host key; the host key is ssh-ed25519",
        ),
        (private_key(checks=(7, 8)), "is damaged: its check numbers differ"),
        (private_key(header=bytes(32)), "is damaged: its public and private parts differ"),
        (private_key(secret=bytes(64)), "is damaged: its public and private parts differ"),
        (private_key()[: len(ARMOUR[0]) + 69] + "\n" + ARMOUR[1], "is damaged: it ends in the middle of a field"),
    ],
)
def test_a_key_sshd_could_not_use_is_refused_saying_why(text, problem):
    with pytest.raises(KeyProblem) as refused:
        parse_private_key(text)

    assert str(refused.value).startswith(problem)


def test_a_bad_host_key_file_is_a_problem_naming_the_setting_and_never_its_content(tmp_path):
    secret = tmp_path / "host_key"
    secret.write_text(private_key(cipher=b"aes256-ctr"))

    with pytest.raises(ConfigError) as refused:
        load({"BORG_CLIENTS": "web", "BORG_HOST_KEY_FILE": str(secret)}, "srv")

    [problem] = refused.value.problems
    assert problem.startswith("BORG_HOST_KEY_FILE: is protected by a passphrase")
    assert base64.b64encode(PUBLIC).decode()[:20] not in problem


def test_a_missing_host_key_file_is_a_problem_naming_the_setting(tmp_path):
    with pytest.raises(ConfigError) as refused:
        load_endpoint({"BORG_HOST_KEY_FILE": str(tmp_path / "missing")}, "srv")

    missing = tmp_path / "missing"
    assert refused.value.problems == [f"BORG_HOST_KEY_FILE: cannot read {missing}: No such file or directory"]


def test_the_host_key_and_the_endpoint_are_read_without_any_client(tmp_path):
    secret = tmp_path / "host_key"
    secret.write_text(private_key())

    endpoint = load_endpoint({"BORG_HOST_KEY_FILE": str(secret), "BORG_SERVER_NAME": "backup:2222"}, "srv")

    assert (endpoint.server_host, endpoint.server_port) == ("backup", 2222)
    assert endpoint.host_key.public == parse_private_key(private_key())
    assert endpoint.host_key.label == "BORG_HOST_KEY_FILE"
    assert "OPENSSH" not in repr(endpoint.host_key)  # the secret never shows in a log of the configuration


@pytest.fixture
def real_key(tmp_path):
    """A real ed25519 key pair made by ssh-keygen, as borg-server new-host-key makes it."""
    if shutil.which("ssh-keygen") is None:
        pytest.fail("ssh-keygen (openssh-client) is needed by this test")
    return host_key.new_private_key()


def test_a_given_host_key_is_copied_into_place_with_mode_600_and_its_public_key_derived(paths, tmp_path, real_key):
    secret = tmp_path / "secret"
    secret.write_text(real_key)
    secret.chmod(0o444)  # as a Docker secret is mounted: sshd would refuse it there
    paths.ssh.mkdir(parents=True)
    given = load_endpoint({"BORG_HOST_KEY_FILE": str(secret)}, "srv").host_key

    public = start.ensure_host_key(paths, given)

    assert paths.host_key.read_text() == real_key
    assert os.stat(paths.host_key).st_mode & 0o777 == 0o600
    derived = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(paths.host_key)], capture_output=True, text=True, check=True
    )
    assert (paths.ssh / "ssh_host_ed25519_key.pub").read_text() == derived.stdout
    assert public.identity == given.public.identity


def test_a_given_host_key_replaces_a_generated_one_with_a_warning(paths, tmp_path, real_key, caplog):
    paths.ssh.mkdir(parents=True)
    start.ensure_host_key(paths)
    generated = paths.host_key.read_text()
    secret = tmp_path / "secret"
    secret.write_text(real_key)

    start.ensure_host_key(paths, load_endpoint({"BORG_HOST_KEY_FILE": str(secret)}, "srv").host_key)

    assert paths.host_key.read_text() == real_key != generated
    assert "host key: replaced by BORG_HOST_KEY_FILE's" in caplog.text


def test_new_host_key_makes_a_key_the_setting_accepts(real_key):
    assert parse_private_key(real_key).fingerprint.startswith("SHA256:")  # made in process: no comment inside


def test_a_kept_host_key_that_is_a_symlink_or_garbage_is_moved_aside_and_a_new_one_made(paths, tmp_path, caplog):
    shadow = tmp_path / "shadow"
    shadow.write_text("root:secret\n")
    shadow.chmod(0o640)
    paths.ssh.mkdir(parents=True)
    paths.host_key.symlink_to(shadow)

    first = start.ensure_host_key(paths)
    paths.host_key.write_text("garbage\n")
    second = start.ensure_host_key(paths)

    assert shadow.read_text() == "root:secret\n" and shadow.stat().st_mode & 0o777 == 0o640
    assert first.identity != second.identity
    assert parse_private_key(paths.host_key.read_text()).identity == second.identity
    assert len(list(paths.ssh.glob("ssh_host_ed25519_key.unexpected-*"))) == 2
    assert "cannot be used" in caplog.text and "clients must pin the new one" in caplog.text


def test_a_kept_host_keys_public_half_that_is_a_directory_is_rewritten_from_the_private_key(paths):
    paths.ssh.mkdir(parents=True)
    kept = start.ensure_host_key(paths)
    public = paths.ssh / "ssh_host_ed25519_key.pub"
    public.unlink()
    public.mkdir()

    assert start.ensure_host_key(paths).identity == kept.identity
    assert public.is_file()
