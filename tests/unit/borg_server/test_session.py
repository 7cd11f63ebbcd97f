"""Tests for the forced command: the borg serve argv each role gets, and the committed segment it logs."""

from borg_server.sessions.session import committed_segment, serve_argv
from borg_server.system.paths import Paths
from tests.unit.borg_server.borg_files import CHUNK, init_create_create_delete, put, write_repository


def test_an_append_key_serves_append_only_restricted_to_its_client_directory(paths):
    assert serve_argv("web", "append", None, paths) == [
        "borg",
        "serve",
        "--append-only",
        "--restrict-to-path",
        str(paths.repositories / "web"),
    ]


def test_an_append_key_serves_the_real_srv_borg_client_directory_by_default():
    assert serve_argv("web", "append", None, Paths()) == [
        "borg",
        "serve",
        "--append-only",
        "--restrict-to-path",
        "/srv/borg/web",
    ]


def test_a_full_key_serves_without_append_only(paths):
    assert serve_argv("db", "full", None, paths) == [
        "borg",
        "serve",
        "--restrict-to-path",
        str(paths.repositories / "db"),
    ]


def test_a_quota_confines_an_append_key_to_its_one_repository():
    assert serve_argv("web", "append", 5_000_000, Paths()) == [
        "borg",
        "serve",
        "--append-only",
        "--storage-quota",
        "5000000",
        "--restrict-to-repository",
        "/srv/borg/web/main",
    ]


def test_a_quota_confines_a_full_key_to_its_one_repository(paths):
    assert serve_argv("web", "full", 7, paths) == [
        "borg",
        "serve",
        "--storage-quota",
        "7",
        "--restrict-to-repository",
        str(paths.repositories / "web" / "main"),
    ]


def test_an_admin_key_with_a_quota_reaches_the_client_directory_without_quota_nor_append_only(paths):
    assert serve_argv("web", "admin", 5_000_000, paths) == [
        "borg",
        "serve",
        "--restrict-to-path",
        str(paths.repositories / "web"),
    ]


def test_committed_segment_is_the_last_commit_of_the_client_repository(paths):
    write_repository(paths.client_repository("web"), [*init_create_create_delete(), [put(CHUNK)]])

    assert committed_segment(paths, "web") == 13


def test_committed_segment_of_a_client_without_a_repository_is_none(paths):
    assert committed_segment(paths, "web") is None
