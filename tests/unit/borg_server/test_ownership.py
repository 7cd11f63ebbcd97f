"""Tests for client file ownership: created private to the client's uid, re-owned once on upgrade."""

import os

import pytest

from borg_server.system.accounts import Account
from borg_server.system.ownership import ensure_client_tree, own_replica_copy, reown
from borg_server.system.paths import Paths

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
WEB = Account("web", 23456)


def owner(path) -> tuple[int, int]:
    status = os.lstat(path)
    return status.st_uid, status.st_gid


def old_repository(paths, uid: int = 1000):
    """A client directory as the previous version left it: everything the borg account's (uid)."""
    repository = paths.client_repository("web")
    (repository / "data" / "0").mkdir(parents=True)
    (repository / "data" / "0" / "1").write_bytes(b"segment")
    (repository / "config").write_text("[repository]\n")
    os.symlink("/etc/passwd", repository / "link")
    for path in (paths.client_directory("web"), repository, repository / "data", repository / "data" / "0",
                 repository / "data" / "0" / "1", repository / "config"):  # fmt: skip
        os.chown(path, uid, uid)
    os.lchown(repository / "link", uid, uid)
    return repository


def test_a_new_client_directory_and_home_belong_to_the_client_only(paths):
    account = ensure_client_tree(WEB, paths)

    for path in (paths.client_directory("web"), paths.client_home("web")):
        assert owner(path) == (23456, 23456)
        assert os.stat(path).st_mode & 0o777 == 0o700
    assert account == Account("web", 23456, reowned=True)


def test_an_old_repository_is_reowned_to_the_client_once_without_following_links(paths, caplog):
    repository = old_repository(paths)
    caplog.set_level("INFO")

    account = ensure_client_tree(WEB, paths)

    for path in (repository, repository / "data" / "0" / "1", repository / "config", repository / "link"):
        assert owner(path) == (23456, 23456)
    assert owner("/etc/passwd") == (0, 0)
    assert account.reowned
    assert "client web: re-owned 7 entries to borg-web (uid 23456)" in caplog.text


def test_a_recorded_client_whose_directory_is_its_own_is_not_walked_again(paths):
    repository = old_repository(paths)
    account = ensure_client_tree(WEB, paths)
    os.chown(repository / "config", 1000, 1000)  # below the top: not looked at again

    ensure_client_tree(account, paths)

    assert owner(repository / "config") == (1000, 1000)


def test_a_directory_that_changed_owner_again_is_walked_again(paths):
    repository = old_repository(paths)
    account = ensure_client_tree(WEB, paths)
    os.chown(paths.client_directory("web"), 1000, 1000)
    os.chown(repository / "config", 1000, 1000)

    ensure_client_tree(account, paths)

    assert owner(repository / "config") == (23456, 23456)


def test_snapshots_are_reowned_but_their_directory_stays_roots(paths):
    old_repository(paths)
    snapshot = paths.snapshot_directory("web") / "2026-01-01"
    snapshot.mkdir(parents=True)
    (snapshot / "config").write_text("x")
    os.chown(snapshot / "config", 1000, 1000)

    ensure_client_tree(WEB, paths)

    assert owner(snapshot / "config") == (23456, 23456)
    assert owner(paths.snapshot_directory("web")) == (0, 0)


def test_reown_counts_only_what_it_changed(tmp_path):
    (tmp_path / "a").write_text("x")
    os.chown(tmp_path / "a", 5000, 5000)

    assert reown(tmp_path, 0, 0) == 1
    assert reown(tmp_path, 0, 0) == 0


def test_a_symlink_where_the_clients_home_belongs_is_moved_aside_and_its_target_keeps_owner_and_mode(paths, tmp_path):
    outside = tmp_path / "etc"
    (outside / "shadow").parent.mkdir()
    (outside / "shadow").write_text("root:secret\n")
    paths.homes.mkdir(parents=True)
    paths.client_home("web").symlink_to(outside)

    ensure_client_tree(WEB, paths)

    assert os.path.isdir(paths.client_home("web")) and not os.path.islink(paths.client_home("web"))
    assert owner(outside) == owner(outside / "shadow") == (0, 0)
    assert os.stat(outside).st_mode & 0o777 == 0o755
    assert len(list(paths.homes.glob("web.unexpected-*"))) == 1


def test_reown_leaves_a_top_that_is_a_symlink_alone(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root\n")
    (tmp_path / "link").symlink_to(tmp_path / "etc")

    assert reown(tmp_path / "link", 5000, 5000, include_top=False) == 0
    assert owner(tmp_path / "etc" / "passwd") == (0, 0)


def test_a_replica_copy_that_is_a_symlink_is_never_walked_through(tmp_path, caplog):
    paths = Paths(repositories=tmp_path / "srv", state=tmp_path / "state")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    paths.repositories.mkdir()
    paths.client_directory("web").symlink_to(elsewhere)

    own_replica_copy(paths, "web", 12345)

    assert oct(elsewhere.stat().st_mode & 0o777) == "0o700"
    assert "is a symlink, not its copy" in caplog.text
