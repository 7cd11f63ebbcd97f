"""Tests for reading and writing the state volume without following what a stranger left there."""

import os

import pytest

from borg_common import files


def test_a_regular_file_is_read_and_a_symlink_directory_or_fifo_is_refused(tmp_path):
    (tmp_path / "file").write_text("text")
    (tmp_path / "link").symlink_to(tmp_path / "file")
    (tmp_path / "directory").mkdir()
    os.mkfifo(tmp_path / "fifo")

    assert files.read_regular(tmp_path / "file").decode(errors="replace") == "text"
    for name, kind in (("link", "a symlink"), ("directory", "a directory"), ("fifo", "a FIFO")):
        with pytest.raises(files.NotRegular, match=f"is {kind}, not a file"):
            files.read_regular(tmp_path / name).decode(errors="replace")
    with pytest.raises(FileNotFoundError):
        files.read_regular(tmp_path / "missing").decode(errors="replace")


def test_a_file_bigger_than_the_limit_is_refused(tmp_path):
    (tmp_path / "big").write_text("x" * 11)

    with pytest.raises(files.NotRegular, match="has 11 bytes, more than 10"):
        files.read_regular(tmp_path / "big", limit=10).decode(errors="replace")


def test_a_lock_file_that_is_a_dangling_symlink_is_replaced_never_created_through_it(tmp_path):
    (tmp_path / "web.lock").symlink_to(tmp_path / "created-through-the-link")

    with files.open_lock(tmp_path / "web.lock"):
        pass

    assert not (tmp_path / "created-through-the-link").exists()
    assert (tmp_path / "web.lock").is_file() and not (tmp_path / "web.lock").is_symlink()


def test_a_server_directory_that_is_a_symlink_is_moved_aside_and_its_target_left_alone(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "export").symlink_to(tmp_path / "etc")

    files.ensure_real_directories([tmp_path / "export", tmp_path / "missing"])

    assert not (tmp_path / "export").exists()
    assert [p.name.split("-")[0] for p in tmp_path.iterdir() if p.name.startswith("export")] == ["export.unexpected"]
    assert (tmp_path / "etc").is_dir()


def test_clear_for_write_removes_a_symlink_but_keeps_a_directory(tmp_path):
    (tmp_path / "link").symlink_to("/etc/shadow")
    (tmp_path / "directory").mkdir()

    assert files.clear_for_write(tmp_path / "link") is True
    assert not (tmp_path / "link").is_symlink()
    assert files.clear_for_write(tmp_path / "directory") is False
    assert (tmp_path / "directory").is_dir()


def test_holds_is_false_for_a_directory_a_fifo_a_symlink_or_other_content(tmp_path):
    (tmp_path / "directory").mkdir()
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "file").write_bytes(b"key\n")
    os.chmod(tmp_path / "file", 0o644)
    (tmp_path / "link").symlink_to(tmp_path / "file")
    assert files.holds(tmp_path / "file", b"key\n", 0o644)
    for name in ("directory", "fifo", "link", "missing"):
        assert not files.holds(tmp_path / name, b"key\n", 0o644), name
    assert not files.holds(tmp_path / "file", b"other", 0o644)
    assert not files.holds(tmp_path / "file", b"key\n", 0o600)


@pytest.mark.skipif(os.geteuid() != 0, reason="the file is made root's")
def test_ensure_file_never_chmods_through_a_symlink_and_moves_a_directory_aside(tmp_path):
    target = tmp_path / "shadow"
    target.write_text("secret\n")
    target.chmod(0o640)
    (tmp_path / "log").symlink_to(target)
    (tmp_path / "other").mkdir()

    for name in ("log", "other", "new"):
        files.ensure_file(tmp_path / name, 0o600)
        assert files.describe(tmp_path / name) == "a file"
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
    assert target.read_text() == "secret\n" and target.stat().st_mode & 0o777 == 0o640
    assert len(list(tmp_path.glob("other.unexpected-*"))) == 1


def test_a_directory_where_a_lock_file_belongs_is_moved_aside_so_the_monitor_goes_on(tmp_path):
    (tmp_path / "web.lock" / "inside").mkdir(parents=True)

    with files.open_lock(tmp_path / "web.lock") as lock:
        lock.write("")

    assert (tmp_path / "web.lock").is_file()
    assert [p.name.split("-")[0] for p in tmp_path.glob("web.lock.*")] == ["web.lock.unexpected"]
