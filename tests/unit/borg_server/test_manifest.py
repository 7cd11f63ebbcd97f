"""Tests for what the server reads of the manifest: sessions that added data, manifests that shrank."""

from borg_server.records.client_state import ManifestShrink
from borg_server.repository import manifest, segments
from borg_server.repository.manifest import ManifestPut
from borg_server.repository.segments import MANIFEST_KEY
from tests.unit.borg_server.borg_files import (
    commit,
    delete,
    init_create_create_delete,
    put,
    write_repository,
)

NOW = "2024-05-06T03:00:00+00:00"


def test_a_session_that_put_chunks_added_data(tmp_path):
    files = segments.segment_files(write_repository(tmp_path, init_create_create_delete()))

    assert manifest.added_data(files, 1, 5) is True
    assert manifest.added_data(files, None, 5) is True


def test_a_session_that_committed_only_the_manifest_or_a_delete_added_no_data(tmp_path):
    files = segments.segment_files(write_repository(tmp_path, init_create_create_delete()))

    assert manifest.added_data(files, 6, 9) is False  # manifest rewrite and commit
    assert manifest.added_data(files, 9, 13) is False  # delete of an archive, manifest rewrite
    assert manifest.added_data(files, 13, None) is False


def test_objects_put_without_a_manifest_in_their_transaction_are_no_backup(tmp_path):
    data, other = b"d" * 32, b"e" * 32
    repository = write_repository(tmp_path, [[put(data), commit()], [put(MANIFEST_KEY), commit()], [put(other)]])
    files = segments.segment_files(repository)

    assert manifest.added_data(files, None, 0) is False  # borg debug put-obj: no manifest at all
    assert manifest.added_data(files, None, 1) is False  # then a prune: the manifest alone
    write_repository(
        tmp_path, [[put(data), commit()], [put(MANIFEST_KEY), commit()], [put(other), put(MANIFEST_KEY), commit()]]
    )
    assert manifest.added_data(segments.segment_files(repository), None, 2) is True  # a backup's transaction


def test_a_session_whose_segments_are_gone_or_damaged_added_no_data(tmp_path):
    repository = write_repository(tmp_path, init_create_create_delete())
    files = segments.segment_files(repository)

    assert manifest.added_data(files, 13, 20) is False
    (repository / "data" / "0" / "2").write_bytes(b"BORG_SEGgarbage")
    assert manifest.added_data(files, 1, 5) is False


def test_manifest_puts_tell_whether_another_key_was_deleted_since_the_manifest_before(tmp_path):
    repository = write_repository(tmp_path, init_create_create_delete())

    puts = manifest.manifest_puts(repository, -1, 13)

    assert [(p.segment, p.deleted_between) for p in puts] == [(0, False), (4, False), (8, False), (12, True)]


def test_a_manifest_smaller_by_an_archive_entry_with_no_delete_is_a_shrink():
    puts = [ManifestPut(4, 500, False), ManifestPut(8, 468, False), ManifestPut(12, 400, True)]

    found, last = manifest.shrinks((0, 450), puts, NOW)

    assert found == [ManifestShrink(8, 4, 500, 468, NOW)]
    assert last == (12, 400)


def test_a_manifest_smaller_by_less_than_an_archive_id_or_with_nothing_known_before_is_no_shrink():
    found, last = manifest.shrinks((None, None), [ManifestPut(4, 500, False), ManifestPut(8, 469, False)], NOW)

    assert (found, last) == ([], (8, 469))


def test_a_repository_whose_manifest_was_rewritten_smaller_shows_the_shrink(tmp_path):
    big, small = b"x" * 200, b"x" * 100
    repository = write_repository(
        tmp_path,
        [[put(MANIFEST_KEY, big)], [commit()], [delete(MANIFEST_KEY)], [put(MANIFEST_KEY, small)], [commit()]],
    )

    found, _ = manifest.shrinks((None, None), manifest.manifest_puts(repository, -1, 4), NOW)

    assert found == [ManifestShrink(3, 0, 41 + 200, 41 + 100, NOW)]
