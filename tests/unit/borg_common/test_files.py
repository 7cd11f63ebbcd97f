"""Tests for atomic_write: the whole new content with its mode, nothing left behind, no rewrite when unchanged."""

import os
import stat

from borg_common.files import atomic_write


def test_atomic_write_creates_the_file_with_its_content_and_mode(tmp_path):
    path = tmp_path / "authorized_keys"

    assert atomic_write(path, "line\n", 0o600) is True

    assert path.read_bytes() == b"line\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_atomic_write_uses_644_by_default_and_writes_bytes_as_they_are(tmp_path):
    path = tmp_path / "key"

    assert atomic_write(path, b"\x00\xffbinary") is True

    assert path.read_bytes() == b"\x00\xffbinary"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_atomic_write_of_unchanged_content_and_mode_returns_false_and_touches_nothing(tmp_path):
    path = tmp_path / "repo_url"
    atomic_write(path, "ssh://borg@srv:22/./main\n", 0o644)
    inode = path.stat().st_ino
    os.utime(path, (1_000_000_000, 1_000_000_000))

    assert atomic_write(path, "ssh://borg@srv:22/./main\n", 0o644) is False

    assert path.stat().st_ino == inode
    assert path.stat().st_mtime == 1_000_000_000


def test_atomic_write_of_new_content_replaces_the_file(tmp_path):
    path = tmp_path / "known_hosts"
    atomic_write(path, "old\n", 0o644)

    assert atomic_write(path, "new\n", 0o644) is True

    assert path.read_text() == "new\n"


def test_atomic_write_of_the_same_content_with_another_mode_fixes_the_mode(tmp_path):
    path = tmp_path / "id_ed25519"
    atomic_write(path, "key", 0o644)

    assert atomic_write(path, "key", 0o600) is True

    assert (path.read_text(), stat.S_IMODE(path.stat().st_mode)) == ("key", 0o600)


def test_atomic_write_sets_the_mode_whatever_the_umask(tmp_path):
    previous = os.umask(0o077)
    try:
        atomic_write(tmp_path / "public", "x", 0o644)
    finally:
        os.umask(previous)

    assert stat.S_IMODE((tmp_path / "public").stat().st_mode) == 0o644


def test_atomic_write_leaves_no_temporary_file_behind(tmp_path):
    path = tmp_path / "sshd_config"

    atomic_write(path, "Port 22\n")
    atomic_write(path, "Port 2222\n")
    atomic_write(path, "Port 2222\n")

    assert os.listdir(tmp_path) == ["sshd_config"]


def test_atomic_write_replaces_a_symlink_or_fifo_in_its_place_without_following_or_waiting(tmp_path):
    target = tmp_path / "shadow"
    target.write_text("root:secret\n")
    (tmp_path / "link").symlink_to(target)
    os.mkfifo(tmp_path / "fifo")  # reading it would block for ever

    for name in ("link", "fifo"):
        assert atomic_write(tmp_path / name, "new\n", 0o600) is True
        assert (tmp_path / name).read_text() == "new\n" and not (tmp_path / name).is_symlink()
    assert target.read_text() == "root:secret\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_atomic_write_moves_a_directory_in_its_place_aside(tmp_path):
    (tmp_path / "authorized_keys" / "inside").mkdir(parents=True)

    assert atomic_write(tmp_path / "authorized_keys", "key\n", 0o644) is True

    assert (tmp_path / "authorized_keys").read_text() == "key\n"
    (aside,) = tmp_path.glob("authorized_keys.unexpected-*")
    assert (aside / "inside").is_dir()
