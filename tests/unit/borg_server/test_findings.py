"""Tests for the watch over an append-only client's repository: deletes and tamper findings in one step.

Repositories are segment files written byte by byte like borg 1.4.0 (see borg_files).
"""

import hashlib
import logging

from borg_server.records.client_state import ClientState, Tampering
from borg_server.repository import watch
from borg_server.system.paths import Paths
from tests.unit.borg_server.borg_files import ARCHIVE_ONE, ARCHIVE_TWO, commit, delete, init_create_create_delete
from tests.unit.borg_server.borg_files import write_repository as write_segments

NOW = "2024-05-06T03:00:00+00:00"
LONG_AGO = "2024-01-01T00:00:00+00:00"


def write_repository(paths: Paths, segments: list[list[bytes]], name: str = "web"):
    """Write a client's repository (a borg config file and segments); return it."""
    repository = paths.client_repository(name)
    write_segments(repository, segments)
    (repository / "config").write_text("[repository]\n")
    return repository


# watch_repository


def test_a_client_without_a_repository_is_not_watched(paths):
    state = ClientState(first_seen=NOW)

    watch.watch_repository("web", state, paths.client_repository("web"), admin_session=False, now=NOW)

    assert state == ClientState(first_seen=NOW)


def test_watching_a_repository_finds_its_deletes_and_takes_its_baseline(paths, caplog):
    repository = write_repository(paths, init_create_create_delete())
    state = ClientState(first_seen=NOW)

    with caplog.at_level(logging.WARNING):
        watch.watch_repository("web", state, paths.client_repository("web"), admin_session=False, now=NOW)

    assert [(d.segment, d.kinds, d.keys) for d in state.deletes] == [(10, {"delete": 1}, (ARCHIVE_ONE.hex(),))]
    assert sorted(state.segments) == list(range(14))
    assert state.config_digest == hashlib.sha256((repository / "config").read_bytes()).hexdigest()
    assert caplog.messages == ["client web: 1 new delete(s) found in its repository"]


def test_watching_finds_a_segment_removed_since_the_baseline(paths):
    repository = write_repository(paths, init_create_create_delete())
    state = ClientState(first_seen=NOW)
    watch.watch_repository("web", state, paths.client_repository("web"), admin_session=False, now=NOW)
    (repository / "data" / "0" / "6").unlink()

    watch.watch_repository("web", state, paths.client_repository("web"), admin_session=False, now=NOW)

    assert state.tampering == Tampering(changed=(), truncated=(), removed=(6,), config=False, seen_at=NOW)


def test_after_an_admin_session_removed_segments_leave_the_baseline_without_tampering(paths):
    repository = write_repository(paths, init_create_create_delete())
    state = ClientState(first_seen=NOW)
    watch.watch_repository("web", state, paths.client_repository("web"), admin_session=False, now=NOW)
    (repository / "data" / "0" / "6").unlink()

    watch.watch_repository("web", state, paths.client_repository("web"), admin_session=True, now=NOW)

    assert state.tampering is None
    assert sorted(state.segments) == [number for number in range(14) if number != 6]


def test_after_an_admin_session_a_changed_segment_is_still_tampering(paths):
    repository = write_repository(paths, init_create_create_delete())
    state = ClientState(first_seen=NOW)
    watch.watch_repository("web", state, paths.client_repository("web"), admin_session=False, now=NOW)
    changed = repository / "data" / "0" / "2"
    changed.write_bytes(changed.read_bytes() + commit())

    watch.watch_repository("web", state, paths.client_repository("web"), admin_session=True, now=NOW)

    assert state.tampering == Tampering(changed=(2,), truncated=(), removed=(), config=False, seen_at=NOW)


def test_the_borg_lock_does_not_stop_the_watch(paths):
    repository = write_repository(paths, init_create_create_delete())
    state = ClientState(first_seen=NOW)
    watch.watch_repository("web", state, paths.client_repository("web"), admin_session=False, now=NOW)
    write_segments(repository, [*init_create_create_delete(), [delete(ARCHIVE_TWO)], [commit()]])
    (repository / "data" / "0" / "6").unlink()
    (repository / "lock.exclusive").mkdir()

    watch.watch_repository("web", state, paths.client_repository("web"), admin_session=False, now=NOW)

    assert state.tampering.removed == (6,)
    assert [d.segment for d in state.deletes] == [10, 14]


def test_a_segment_that_cannot_be_read_is_recorded_as_tampering_even_while_borg_holds_the_lock(paths):
    repository = write_repository(paths, init_create_create_delete())
    damaged = repository / "data" / "0" / "10"
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"X")
    (repository / "lock.exclusive").mkdir()
    state = ClientState(first_seen=NOW)

    watch.watch_repository("web", state, paths.client_repository("web"), admin_session=False, now=NOW)

    assert state.tampering == Tampering(
        changed=(),
        truncated=(),
        removed=(),
        config=False,
        unreadable=f"{damaged}: crc32 mismatch at offset 8",
        seen_at=NOW,
    )
    assert state.scanned is None


def test_a_segment_replaced_by_something_that_is_not_a_file_is_reported_removed(paths):
    repository = write_repository(paths, init_create_create_delete())
    state = ClientState(first_seen=NOW)
    watch.watch_repository("web", state, paths.client_repository("web"), admin_session=False, now=NOW)
    replaced = repository / "data" / "0" / "2"
    replaced.unlink()
    replaced.mkdir()

    watch.watch_repository("web", state, paths.client_repository("web"), admin_session=False, now=LONG_AGO)

    assert (state.tampering.removed, state.tampering.seen_at) == ((2,), LONG_AGO)


def test_a_removed_repository_config_is_recorded_as_tampering(paths):
    repository = write_repository(paths, init_create_create_delete())
    state = ClientState(first_seen=NOW)
    watch.watch_repository("web", state, paths.client_repository("web"), admin_session=False, now=NOW)
    (repository / "config").unlink()

    watch.watch_repository("web", state, paths.client_repository("web"), admin_session=False, now=LONG_AGO)

    assert state.tampering.unreadable == f"{repository / 'config'} is missing"


def test_an_unreadable_segment_keeps_the_first_sighting_of_the_tampering_seen_before(paths):
    repository = write_repository(paths, init_create_create_delete())
    state = ClientState(first_seen=NOW)
    watch.watch_repository("web", state, paths.client_repository("web"), admin_session=False, now=NOW)
    (repository / "data" / "0" / "6").unlink()
    watch.watch_repository("web", state, paths.client_repository("web"), admin_session=False, now=NOW)
    damaged = repository / "data" / "0" / "14"
    damaged.write_bytes(b"BORG_SEG" + delete(ARCHIVE_TWO)[:-1] + b"X")
    (repository / "data" / "0" / "15").write_bytes(b"BORG_SEG" + commit())

    watch.watch_repository("web", state, paths.client_repository("web"), admin_session=False, now=LONG_AGO)

    assert state.tampering == Tampering(
        changed=(),
        truncated=(),
        removed=(6,),
        config=False,
        unreadable=f"{damaged}: crc32 mismatch at offset 8",
        seen_at=NOW,
    )
