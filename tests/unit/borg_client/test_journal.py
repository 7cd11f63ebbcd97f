"""Tests for the run journal and lock, the day log, and the state volume's layout."""

import logging
from datetime import UTC, datetime

from borg_client import journal
from borg_client.daylog import day_log
from borg_client.paths import Paths


def test_the_state_volume_keeps_the_names_earlier_versions_wrote(tmp_path):
    paths = Paths(tmp_path, "web")

    assert {
        name: str(getattr(paths, name).relative_to(tmp_path))
        for name in ("outbox", "runs", "runs_lock", "run_lock", "logs", "key_export", "key_file", "paper_key_file",
                     "keys", "security", "cache", "borg_config", "host_id", "stopped_containers")
    } == {
        "outbox": "outbox", "runs": "runs.json", "runs_lock": "runs.lock", "run_lock": "run.lock", "logs": "logs",
        "key_export": "key-export", "key_file": "key-export/web.key", "paper_key_file": "key-export/web.key.txt",
        "keys": "keys", "security": "security", "cache": "cache", "borg_config": "config", "host_id": "host_id",
        "stopped_containers": "stopped-containers.json",
    }  # fmt: skip
    assert paths.day_log(datetime(2024, 5, 6, tzinfo=UTC).date()) == tmp_path / "logs" / "web-2024-05-06.log"


def test_the_run_lock_is_refused_while_held_and_free_again_afterwards(tmp_path):
    paths = Paths(tmp_path / "state", "web")

    with journal.run_lock(paths) as first:
        with journal.run_lock(paths) as second:
            assert (first, second) == (True, False)
    with journal.run_lock(paths) as again:
        assert again is True


def test_the_journal_keeps_the_last_50_runs_oldest_first(tmp_path):
    paths = Paths(tmp_path, "web")

    for number in range(55):
        journal.record_run(paths, {"run_id": str(number)})

    assert [run["run_id"] for run in journal.last_runs(paths)] == [str(number) for number in range(5, 55)]
    assert paths.runs.stat().st_mode & 0o777 == 0o600


def test_a_missing_or_unreadable_journal_has_no_runs(tmp_path):
    paths = Paths(tmp_path, "web")
    assert journal.last_runs(paths) == []

    paths.runs.write_text("{not json")

    assert journal.last_runs(paths) == []


def test_stale_cache_locks_are_removed_and_the_cache_kept(tmp_path):
    repository = tmp_path / "cache" / "abc123"
    (repository / "lock.exclusive").mkdir(parents=True)
    (repository / "lock.exclusive" / "host.pid").write_text("")
    (repository / "lock.roster").write_text("{}")
    (repository / "config").write_text("[cache]")

    journal.clear_stale_cache_locks(tmp_path / "cache")

    assert sorted(path.name for path in repository.iterdir()) == ["config"]


def test_the_day_log_gets_the_lines_logged_inside_and_keeps_30_days(tmp_path, caplog):
    paths = Paths(tmp_path, "web")
    paths.logs.mkdir()
    for day in range(1, 32):
        (paths.logs / f"web-2020-01-{day:02d}.log").write_text("old\n")
    (paths.logs / "other-2020-01-01.log").write_text("another client\n")

    with caplog.at_level(logging.INFO), day_log(paths) as path:
        logging.getLogger("borg_client.test").info("inside")
    logging.getLogger("borg_client.test").warning("outside")

    assert path == paths.day_log(datetime.now(UTC).date())
    assert path.read_text().endswith("INFO borg_client.test: inside\n")
    kept = sorted(entry.name for entry in paths.logs.iterdir())
    assert kept == ["other-2020-01-01.log", *[f"web-2020-01-{day:02d}.log" for day in range(3, 32)], path.name]
