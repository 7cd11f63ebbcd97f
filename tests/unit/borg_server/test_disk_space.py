"""Tests for the repositories' disk: the figure, additional_free_space in each config, failed transactions removed."""

import hashlib

import pytest

from borg_server.records.client_state import ClientState
from borg_server.repository import disk_space, gate
from tests.unit.borg_server.borg_files import commit, put, write_repository

CONFIG = "[repository]\nversion = 1\nappend_only = 0\nadditional_free_space = 0\nid = 00ff\n\n"
KEY = b"k" * 32


def repository_with(paths, segments: list[list[bytes]], config: str = CONFIG):
    repository = paths.client_repository("web")
    write_repository(repository, segments)
    (repository / "config").write_text(config)
    return repository


def test_measure_reports_the_file_system_of_the_repositories_even_before_they_exist(empty_paths):
    usage = disk_space.measure(empty_paths.repositories, None)

    assert usage.total_bytes > 0 and 0 <= usage.free_bytes <= usage.total_bytes
    assert usage.used_ratio == round(1 - usage.free_bytes / usage.total_bytes, 4)


def test_the_default_reserve_is_one_gigabyte_but_never_more_than_two_percent_of_the_disk():
    assert disk_space.reserve_size(None, 10 * 1000**4) == 1000**3  # decimal, as the docs say
    assert disk_space.reserve_size(None, 120_000_000) == 2_400_000
    assert disk_space.reserve_size(4_000_000, 120_000_000) == 4_000_000
    assert disk_space.reserve_size(0, 120_000_000) == 0


def test_set_free_space_replaces_borgs_line_or_adds_one_to_the_repository_section():
    assert disk_space.set_free_space(CONFIG, 5) == CONFIG.replace(
        "additional_free_space = 0", "additional_free_space = 5"
    )
    bare = "[repository]\nversion = 1\n"
    assert disk_space.set_free_space(bare, 5) == "[repository]\nadditional_free_space = 5\nversion = 1\n"


def test_keep_free_space_writes_the_config_and_moves_the_baseline_so_it_is_no_tampering(paths):
    repository = repository_with(paths, [[put(KEY), commit()]])
    found = ClientState(first_seen="2024-05-01T00:00:00+00:00")
    found.config_digest = hashlib.sha256(CONFIG.encode()).hexdigest()

    assert disk_space.keep_free_space(found, repository, 4_000_000) is True

    written = (repository / "config").read_bytes()
    assert b"additional_free_space = 4000000\n" in written
    assert found.config_digest == hashlib.sha256(written).hexdigest()
    assert disk_space.keep_free_space(found, repository, 4_000_000) is False  # already so: nothing written


def test_keep_free_space_leaves_a_config_alone_that_changed_behind_the_baseline_or_is_locked(paths):
    repository = repository_with(paths, [[put(KEY), commit()]])
    tampered = ClientState(first_seen="2024-05-01T00:00:00+00:00", config_digest="0" * 64)

    assert disk_space.keep_free_space(tampered, repository, 4_000_000) is False
    (repository / "lock.exclusive").mkdir()
    assert disk_space.keep_free_space(None, repository, 4_000_000) is False
    assert (repository / "config").read_text() == CONFIG


def test_keep_free_space_follows_no_symlink_the_clients_account_planted_in_its_repository(paths, tmp_path):
    repository = repository_with(paths, [[put(KEY), commit()]])
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0::/root:/bin/sh\n")
    (repository / ".config.borg-server").symlink_to(passwd)  # the temporary file's name: root must not write there

    assert disk_space.keep_free_space(None, repository, 4_000_000) is True

    assert passwd.read_text() == "root:x:0:0::/root:/bin/sh\n"
    assert b"additional_free_space = 4000000" in (repository / "config").read_bytes()
    assert not (repository / "config").is_symlink()
    (repository / "config").unlink()
    (repository / "config").symlink_to(passwd)  # a config that is a link is not read, nor written through
    assert disk_space.keep_free_space(None, repository, 5_000_000) is False
    assert passwd.read_text() == "root:x:0:0::/root:/bin/sh\n"


def test_keep_free_space_writes_nothing_when_the_repository_directory_is_a_symlink(paths, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "config").write_text(CONFIG)
    paths.client_directory("web").mkdir(parents=True)
    paths.client_repository("web").symlink_to(elsewhere)

    assert disk_space.keep_free_space(None, paths.client_repository("web"), 4_000_000) is False
    assert (elsewhere / "config").read_text() == CONFIG


def test_uncommitted_lists_the_segments_after_the_last_one_ending_with_a_commit(paths):
    repository = repository_with(paths, [[put(KEY), commit()], [put(KEY)], [put(KEY)]])

    assert sorted(disk_space.uncommitted(repository)) == [1, 2]


@pytest.fixture
def gated(paths):
    gate.prepare(paths, ["web"])
    return paths


def test_a_failed_transaction_is_removed_and_committed_segments_stay(gated):
    repository = repository_with(gated, [[put(KEY), commit()], [put(KEY, b"x" * 1000)], [put(KEY, b"y" * 500)]])
    before = (repository / "data" / "0" / "0").read_bytes()

    freed = disk_space.remove_failed_transaction(gated, "web")

    assert freed == 2 * (8 + 41) + 1500
    assert sorted(p.name for p in (repository / "data" / "0").iterdir()) == ["0"]
    assert (repository / "data" / "0" / "0").read_bytes() == before


def test_nothing_is_removed_while_borg_holds_the_lock_or_a_baseline_segment_would_go(gated):
    repository = repository_with(gated, [[put(KEY), commit()], [put(KEY)]])
    (repository / "lock.exclusive").mkdir()
    assert disk_space.remove_failed_transaction(gated, "web") == 0
    (repository / "lock.exclusive").rmdir()
    assert disk_space.remove_failed_transaction(gated, "web", known={1}) == 0
    assert sorted(disk_space.uncommitted(repository)) == [1]


def test_nothing_is_removed_while_a_session_of_the_client_runs(gated):
    repository = repository_with(gated, [[put(KEY), commit()], [put(KEY)]])
    with gate.session(gated, "web", 5):
        assert disk_space.remove_failed_transaction(gated, "web") == 0
    assert sorted(disk_space.uncommitted(repository)) == [1]
