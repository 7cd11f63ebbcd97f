"""Tests for the forced command: the borg serve argv each role gets, and the committed segment it logs."""

from borg_server.records import state_file
from borg_server.records.client_state import ClientState, SegmentPrint
from borg_server.sessions.session import clear_left_behind, committed_segment, serve_argv
from borg_server.system.paths import Paths
from tests.unit.borg_server.borg_files import CHUNK, commit, init_create_create_delete, put, write_repository
from tests.unit.borg_server.test_stale_locks import fake_proc


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


def failed_backup(paths):
    """A repository of web with one commit, then a transaction that never committed (a full disk), and a dead lock."""
    repository = paths.client_repository("web")
    write_repository(repository, [[put(b"k" * 32), commit()], [put(b"k" * 32, b"x" * 1000)]])
    (repository / "config").write_text("[repository]\n")
    (repository / "lock.exclusive").mkdir()
    (repository / "lock.exclusive" / "borg-server@1.2-0").touch()
    (repository / "lock.roster").write_text("{}")
    return repository


def test_a_session_start_removes_the_lock_and_the_failed_transaction_a_dead_borg_left(paths, tmp_path):
    repository = failed_backup(paths)
    first = (repository / "data" / "0" / "0").read_bytes()

    clear_left_behind(paths, "web", 24930, fake_proc(tmp_path, {}))

    assert sorted(path.name for path in (repository / "data" / "0").iterdir()) == ["0"]
    assert (repository / "data" / "0" / "0").read_bytes() == first
    assert not (repository / "lock.exclusive").exists() and not (repository / "lock.roster").exists()


def test_a_session_start_leaves_everything_while_a_process_of_the_client_runs(paths, tmp_path):
    repository = failed_backup(paths)
    proc = fake_proc(tmp_path, {10: ("24930\t24930\t24930\t24930", "S (sleeping)")})

    clear_left_behind(paths, "web", 24930, proc)

    assert sorted(path.name for path in (repository / "data" / "0").iterdir()) == ["0", "1"]
    assert (repository / "lock.exclusive").exists()


def test_a_session_start_keeps_segments_the_monitors_baseline_knows_as_committed(paths, tmp_path):
    repository = failed_backup(paths)
    known = ClientState(first_seen="2026-12-05T00:00:00+00:00")
    known.segments[1] = SegmentPrint(1, "00", 0, 0, 0)
    state_file.save(paths.monitor_state("web"), known)

    clear_left_behind(paths, "web", 24930, fake_proc(tmp_path, {}))

    assert sorted(path.name for path in (repository / "data" / "0").iterdir()) == ["0", "1"]
