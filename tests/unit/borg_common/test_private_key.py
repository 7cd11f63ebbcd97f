"""Tests for borg_common.private_key: a key ssh would refuse for its mode is used through a private copy."""

import os
import stat

import pytest

from borg_common import private_key

KEY = b"the bytes of a private key file, as ssh would read them\n"  # any content: only where it is copied matters


@pytest.fixture
def tmpfs(tmp_path):
    directory = tmp_path / "shm"
    directory.mkdir()
    return directory


def key_file(tmp_path, mode):
    path = tmp_path / f"key-{mode:o}"
    path.write_bytes(KEY)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o444, 0o644, 0o640, 0o440])  # Swarm's, Kubernetes' default, group-readable
def test_a_key_others_may_read_is_used_through_a_private_copy_removed_afterwards(tmp_path, tmpfs, mode):
    key = key_file(tmp_path, mode)

    with private_key.usable(key, tmpfs) as usable:
        status = os.stat(usable)
        copied = usable.read_bytes()
        assert usable.parent == tmpfs and usable != key

    assert (stat.S_IMODE(status.st_mode), status.st_uid, copied) == (0o600, os.getuid(), KEY)
    assert list(tmpfs.iterdir()) == []
    assert stat.S_IMODE(key.stat().st_mode) == mode  # the mounted file is left as it is


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_key_ssh_accepts_is_used_where_it_is(tmp_path, tmpfs, mode):
    key = key_file(tmp_path, mode)

    with private_key.usable(key, tmpfs) as usable:
        assert usable == key
    assert list(tmpfs.iterdir()) == []


def test_a_key_through_a_symlink_is_judged_by_the_file_as_kubernetes_mounts_it(tmp_path, tmpfs):
    target = key_file(tmp_path, 0o644)
    (tmp_path / "..data").symlink_to(target)

    with private_key.usable(tmp_path / "..data", tmpfs) as usable:
        assert usable.parent == tmpfs and usable.read_bytes() == KEY


def test_a_key_of_another_user_is_used_as_it_is_since_ssh_accepts_it(tmp_path, tmpfs, monkeypatch):
    key = key_file(tmp_path, 0o644)
    monkeypatch.setattr(os, "getuid", lambda: key.stat().st_uid + 1)

    assert not private_key.refused_for_mode(key)
    with private_key.usable(key, tmpfs) as usable:
        assert usable == key


def test_a_missing_key_is_left_for_ssh_to_name(tmp_path, tmpfs):
    with private_key.usable(tmp_path / "nope", tmpfs) as usable:
        assert usable == tmp_path / "nope"


def test_a_key_that_cannot_be_copied_is_used_as_it_is_with_a_warning(tmp_path, caplog):
    key = key_file(tmp_path, 0o444)

    with private_key.usable(key, tmp_path / "no-such-tmpfs") as usable:
        assert usable == key
    assert f"cannot make a private copy of the private key {key} for ssh: No such file or directory" in caplog.text


def test_a_file_too_big_for_a_key_is_not_copied(tmp_path, tmpfs, caplog):
    key = tmp_path / "big"
    key.write_bytes(b"x" * (private_key.KEY_LIMIT + 1))
    key.chmod(0o644)

    with private_key.usable(key, tmpfs) as usable:
        assert usable == key
    assert list(tmpfs.iterdir()) == [] and "more than 65536 bytes: not a private key" in caplog.text
