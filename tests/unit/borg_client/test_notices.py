"""Tests for what a person reads about a run: the notification's title and body."""

from borg_client import notices

BACKUP = {
    "run_id": "run-1", "client": "web", "kind": "backup", "archive": "web-2026-12-05T03:00:00",
    "started_at": "2026-12-05T03:00:00+00:00", "duration_s": 75.2, "stats": {},
}  # fmt: skip


def test_a_failed_backup_says_what_where_why_the_last_good_backup_and_what_to_do_next():
    report = BACKUP | {"status": "failure", "archive": None, "message": "the server ssh://backup:22 refused the key"}

    found = notices.message(report, last_good_age=26 * 3600 + 300, host="app-host")

    assert (found.event, found.key) == ("failure", "run-1")
    assert found.title == "backup of web failed on app-host"
    assert found.body == (
        "The server ssh://backup:22 refused the key.\n"
        "The last good backup finished 1d 2h ago.\n"
        "Started 2026-12-05 03:00:00 UTC, took 1m 15s.\n"
        "Next: read the run's log (docker logs of the sidecar, or its day log under /var/lib/borg-client/logs), "
        "fix the cause, then run borg-client run to back up now; see docs/explanation/backup-run.md."
    )


def test_a_successful_backup_tells_its_sizes_and_no_next_step():
    stats = {"original_size": 2_345_000_000, "deduplicated_size": 12_300_000, "nfiles": 1204}
    report = BACKUP | {"status": "success", "message": "backup finished", "stats": stats}

    found = notices.message(report, last_good_age=0, host="app-host")

    assert (found.event, found.title) == ("success", "backup of web succeeded on app-host")
    assert found.body == (
        "Backup finished.\n"
        "Archive web-2026-12-05T03:00:00: 2.3 GB read, 12.3 MB new in the repository, 1204 file(s).\n"
        "Started 2026-12-05 03:00:00 UTC, took 1m 15s."
    )


def test_a_warning_and_a_skipped_run_are_warnings_an_interrupted_one_a_failure():
    events = {status: notices.message(BACKUP | {"status": status, "message": "m"}, None, "h").event
              for status in ("warning", "skipped", "interrupted")}  # fmt: skip

    assert events == {"warning": "warning", "skipped": "warning", "interrupted": "failure"}


def test_a_backup_that_never_succeeded_says_so():
    found = notices.message(BACKUP | {"status": "failure", "message": "no repository"}, None, "app-host")

    assert "There is no good backup of this client yet." in found.body.splitlines()


def test_a_prune_lists_what_it_deleted():
    pruned = [f"web-2026-11-{day:02d}" for day in range(1, 13)]
    report = BACKUP | {"kind": "prune", "status": "success", "message": "prune finished", "pruned": pruned,
                       "kept": ["web-2026-12-05"]}  # fmt: skip

    found = notices.message(report, None, "app-host")

    assert found.title == "prune of web succeeded on app-host"
    assert found.body.splitlines()[1] == (
        "Deleted 12 archive(s): web-2026-11-01, web-2026-11-02, web-2026-11-03, web-2026-11-04, web-2026-11-05, "
        "web-2026-11-06, web-2026-11-07, web-2026-11-08, web-2026-11-09, web-2026-11-10 and 2 more; kept 1."
    )
