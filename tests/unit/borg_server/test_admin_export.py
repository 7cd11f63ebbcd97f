"""Tests for ADMIN_KEY=generate: the server makes the client's admin keypair, grants it and exports it apart."""

import logging
import os
import stat
from pathlib import Path

import pytest

from borg_common.settings import ConfigError
from borg_server.config.reader import load
from borg_server.provision import generated_keys
from borg_server.provision.authorized_keys import grants_for
from borg_server.status.text import show_client
from borg_server.system.ssh_keys import parse_public_key

from .sample_keys import ED25519, ED25519_OTHER

HOST_KEY = parse_public_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID26CUVU/8m/Dk6cyWmnuBbX1SpdBW8FFXYWWvdh1+ST host")
# A stand-in, written in parts so that no scanner takes this file for one holding a private key.
ADMIN_PRIVATE = "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nadmin\n-----END OPENSSH " + "PRIVATE KEY-----\n"
EXPORT_FILES = ["client_name", "id_ed25519", "id_ed25519.pub", "known_hosts", "repo_url"]


def config(server_name: str = "backup", **variables: str):
    """Given BORG_SERVER_NAME and BORG_CLIENT_WEB_* settings (without the prefix), return the configuration."""
    environ = {"BORG_CLIENTS": "web", "BORG_SERVER_NAME": server_name}
    return load(environ | {f"BORG_CLIENT_WEB_{name}": value for name, value in variables.items()}, "backup")


def problems(**variables: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        config(**variables)
    return raised.value.problems


def generated(paths, name: str = "web", public: str = ED25519_OTHER) -> None:
    """Put an admin keypair where generate_missing_keys writes it."""
    paths.admin_key(name).parent.mkdir(parents=True, exist_ok=True)
    paths.admin_key(name).write_text(ADMIN_PRIVATE)
    Path(f"{paths.admin_key(name)}.pub").write_text(public + "\n")


def exported(paths, server, name: str = "web"):
    """Apply the admin key step of setup for the configured client; return its generated admin key."""
    (client,) = server.clients
    return generated_keys.generated_admin_key(client, HOST_KEY, paths, server)


def test_admin_key_generate_asks_the_server_for_the_keypair():
    (client,) = config(KEY=ED25519, ADMIN_KEY="generate").clients

    assert (client.admin_key, client.generate_admin_key) == (None, True)


def test_admin_key_generate_is_accepted_from_the_yaml_file(tmp_path):
    (tmp_path / "server.yaml").write_text("clients:\n  web:\n    admin_key: generate\n")
    (client,) = load({"BORG_SERVER_CONFIG": str(tmp_path / "server.yaml")}, "backup").clients

    assert client.generate_admin_key


def test_a_given_admin_key_is_kept_as_before_and_generates_nothing():
    (client,) = config(ADMIN_KEY=ED25519).clients

    assert (client.admin_key, client.generate_admin_key) == (parse_public_key(ED25519), False)


@pytest.mark.parametrize("value", ["Generate", "GENERATE", "generated", "yes"])
def test_any_other_word_is_refused_with_the_message_of_a_bad_key(value):
    assert problems(ADMIN_KEY=value) == [
        "BORG_CLIENT_WEB_ADMIN_KEY: does not start with a known key type; use one of ssh-ed25519, ssh-rsa, "
        "ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521, sk-ssh-ed25519@openssh.com, "
        "sk-ecdsa-sha2-nistp256@openssh.com"
    ]


def test_the_generated_admin_key_gets_the_admin_role_beside_the_append_key():
    (client,) = config(KEY=ED25519, ADMIN_KEY="generate").clients
    grants = grants_for(client, parse_public_key(ED25519), parse_public_key(ED25519_OTHER))

    assert [(grant.role, grant.key) for grant in grants] == [
        ("append", parse_public_key(ED25519)),
        ("admin", parse_public_key(ED25519_OTHER)),
    ]


def test_generate_missing_keys_makes_the_admin_keypair_once_beside_the_client_key(paths):
    server = config(ADMIN_KEY="generate")
    generated_keys.generate_missing_keys(server, paths)
    first = Path(f"{paths.admin_key('web')}.pub").read_text()
    generated_keys.generate_missing_keys(server, paths)

    assert sorted(os.listdir(paths.client_keys("web"))) == [
        "admin_ed25519", "admin_ed25519.pub", "id_ed25519", "id_ed25519.pub"
    ]  # fmt: skip
    assert Path(f"{paths.admin_key('web')}.pub").read_text() == first
    assert first.endswith(" borg-appliance admin web\n")


def test_the_admin_export_has_the_sidecar_files_with_the_admin_key_private_to_root(paths):
    generated(paths)
    key = exported(paths, config(KEY=ED25519, ADMIN_KEY="generate", server_name="backup.example:2222"))
    export = paths.admin_export("web")

    assert key == parse_public_key(ED25519_OTHER)
    assert sorted(os.listdir(export)) == EXPORT_FILES
    assert (export / "id_ed25519").read_text() == ADMIN_PRIVATE
    assert (export / "id_ed25519.pub").read_text() == ED25519_OTHER + "\n"
    assert (export / "known_hosts").read_text() == f"[backup.example]:2222 ssh-ed25519 {HOST_KEY.blob}\n"
    assert (export / "repo_url").read_text() == "ssh://borg@backup.example:2222/./main\n"
    assert (export / "client_name").read_text() == "web\n"
    modes = {name: stat.S_IMODE(os.stat(export / name).st_mode) for name in EXPORT_FILES}
    assert modes == {name: 0o600 if name == "id_ed25519" else 0o644 for name in EXPORT_FILES}
    assert stat.S_IMODE(os.stat(export).st_mode) == 0o700
    assert not paths.client_export("web").exists()  # the sidecar's export is written by write_export alone


def test_a_given_admin_key_exports_nothing(paths):
    assert exported(paths, config(ADMIN_KEY=ED25519)) is None
    assert not paths.admin_export("web").exists()


def test_switching_generate_off_deletes_the_admin_keypair_and_its_export(paths, caplog):
    caplog.set_level(logging.INFO)
    generated(paths)
    exported(paths, config(ADMIN_KEY="generate"))
    (paths.client_keys("web") / "id_ed25519").write_text("the client's own key")

    assert exported(paths, config(ADMIN_KEY=ED25519)) is None
    assert os.listdir(paths.client_keys("web")) == ["id_ed25519"]
    assert not paths.admin_export("web").exists()
    assert (
        f"client web: ADMIN_KEY is not generate; deleted its generated admin key and {paths.admin_export('web')}"
        in (caplog.messages)
    )


def test_removing_the_admin_export_never_follows_a_symlink(paths, tmp_path):
    generated(paths)
    exported(paths, config(ADMIN_KEY="generate"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("kept")
    (paths.admin_export("web") / "link").symlink_to(outside)
    (paths.admin_export("web") / "sub").mkdir()

    exported(paths, config())

    assert (outside / "precious").read_text() == "kept"
    assert os.listdir(paths.admin_export("web")) == ["sub"]  # the directory stays, with a warning


def test_an_admin_export_that_is_a_symlink_is_neither_written_nor_removed_through(paths, tmp_path, caplog):
    generated(paths)
    outside = tmp_path / "outside"
    outside.mkdir()
    paths.admin_export("web").parent.mkdir(parents=True)
    paths.admin_export("web").symlink_to(outside)

    exported(paths, config(ADMIN_KEY="generate"))
    exported(paths, config())

    assert os.listdir(outside) == []
    assert paths.admin_export("web").is_symlink()


def test_removing_the_client_removes_its_admin_export(paths):
    generated(paths)
    exported(paths, config(ADMIN_KEY="generate"))
    paths.client_export("db").mkdir(parents=True)

    generated_keys.forget_removed_clients(load({"BORG_CLIENTS": "db"}, "backup"), paths)

    assert not paths.admin_export("web").exists()
    assert not paths.client_keys("web").exists()


def test_show_client_shows_the_generated_admin_key_and_where_it_is_exported(paths):
    generated(paths)
    line = show_client(config(KEY=ED25519, ADMIN_KEY="generate"), paths, "web").splitlines()[3]

    assert line == (
        f"admin key:      {parse_public_key(ED25519_OTHER).fingerprint}  "
        f"(generated, exported to {paths.admin_export('web')})"
    )


def test_show_client_says_a_generated_admin_key_does_not_exist_yet(paths):
    line = show_client(config(KEY=ED25519, ADMIN_KEY="generate"), paths, "web").splitlines()[3]

    assert line == "admin key:      (not generated yet: start the server once)"
