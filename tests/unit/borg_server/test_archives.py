"""Tests for the archives the server tells apart in a repository, and the marks on the deletes that took them."""

from borg_server.records.client_state import ClientState, DeleteGroup
from borg_server.repository import archives, deletes
from tests.unit.borg_server.borg_files import (
    ARCHIVE_ONE,
    ARCHIVE_TWO,
    CHUNK,
    ITEMS,
    checkpointed_create,
    delete,
    init_create_create_delete,
    manifest_rewrite,
    put,
    write_repository,
)

NOW = "2024-05-06T03:00:00+00:00"
ONE, TWO = archives.short(ARCHIVE_ONE), archives.short(ARCHIVE_TWO)
THREE = bytes([0x33]) * 32


def scanned(repository, state: ClientState | None = None) -> ClientState:
    """Scan the repository's deletes and follow its archives as the monitor's watch does; return the state."""
    state = state or ClientState(first_seen=NOW)
    before = state.scanned
    deletes.scan_deletes(state, repository, NOW)
    archives.follow(state, repository, -1 if before is None else before)
    return state


def test_each_backup_adds_its_archive_and_a_delete_of_an_older_one_takes_it_out(tmp_path):
    state = scanned(write_repository(tmp_path, init_create_create_delete()))

    assert state.archives == [TWO]
    assert [(group.segment, group.archives, group.newest) for group in state.deletes] == [(10, 1, False)]


def test_deleting_the_newest_and_then_every_archive_is_marked(tmp_path):
    repository = write_repository(tmp_path, [*init_create_create_delete(), [delete(ARCHIVE_TWO)], *manifest_rewrite()])

    state = scanned(repository)

    assert state.archives == []
    assert [(group.segment, group.archives, group.newest) for group in state.deletes] == [(10, 1, False), (14, 1, True)]


def test_the_list_follows_only_what_was_committed_since_the_last_scan(tmp_path):
    state = scanned(write_repository(tmp_path, init_create_create_delete()))
    write_repository(tmp_path, [*init_create_create_delete(), [put(CHUNK, b"new"), put(THREE)], *manifest_rewrite()])

    scanned(tmp_path, state)

    assert state.archives == [TWO, archives.short(THREE)]


def test_checkpoint_clean_ups_and_renames_take_no_archive(tmp_path):
    renamed = bytes([0x44]) * 32
    steps = [*checkpointed_create(), [put(renamed), delete(bytes([9]) * 32)], *manifest_rewrite()]

    state = scanned(write_repository(tmp_path, steps))

    assert state.archives == [archives.short(renamed)]
    assert [(group.kinds, group.archives) for group in state.deletes] == [
        ({"checkpoint": 1}, 0), ({"checkpoint": 1}, 0), ({"rename": 1}, 0)
    ]  # fmt: skip


def test_chunks_deleted_without_their_archive_take_no_archive(tmp_path):
    repository = write_repository(tmp_path, [*init_create_create_delete(), [delete(ITEMS)], *manifest_rewrite()])

    state = scanned(repository)

    assert (state.archives, state.deletes[-1].archives) == ([TWO], 0)


def test_a_state_without_a_list_reads_the_repository_from_its_first_segment_and_marks_the_pending_groups(tmp_path):
    repository = write_repository(tmp_path, init_create_create_delete())
    state = ClientState(first_seen=NOW, scanned=13)
    state.deletes = [DeleteGroup(10, 1, {"delete": 1}, (), None, NOW)]

    archives.follow(state, repository, 13)

    assert (state.archives, state.deletes[0].archives) == ([TWO], 1)
