"""The sidecar's digest (borg_client.digest): what a person reads when backups are good, when the last one failed,
when there is none yet, and the reminders: what the last coverage audit found."""

from __future__ import annotations

from datetime import UTC, datetime

from borg_client import digest, journal
from borg_client.coverage import Item
from borg_client.coverage_audit import Audit

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
NEXT = (
    "The next digest comes 2026-12-14 08:00 UTC; if it does not, notifications from web on app-host are not getting "
    "through."
)


def backup(day: int, status: str = "success", size: int = 1_000_000_000, message: str = "backup finished") -> dict:
    good = status != "failure"
    return {"kind": "backup", "status": status, "archive": f"web-2026-12-0{day}T03:00:00" if good else None,
            "started_at": f"2026-12-0{day}T03:00:00+00:00", "finished_at": f"2026-12-0{day}T03:02:00+00:00",
            "message": message, "stats": {"original_size": size, "nfiles": 1200, "repository_size": 600_000_000}
            if good else {}}  # fmt: skip


PRUNE = {"kind": "prune", "status": "success", "started_at": "2026-12-06T04:00:00+00:00",
         "finished_at": "2026-12-06T04:01:00+00:00", "pruned": ["a", "b"], "kept": ["c"]}  # fmt: skip


def test_good_backups_say_all_good_with_the_size_and_its_trend(config):
    runs = [backup(1, size=900_000_000), PRUNE, backup(7, size=1_000_000_000)]

    made = digest.build(config, runs, (0, 0), NOW, "app-host", [])

    assert made.title == "weekly digest of web on app-host: backed up 4h 58m ago, all good"
    assert made.body() == (
        "Last good backup (web-2026-12-07T03:00:00) finished 4h 58m ago, at 2026-12-07 03:02 UTC.\n"
        "Last archive: 1.0 GB, 1200 file(s) (+100.0 MB since 2026-12-01, 2 backups).\n"
        "Repository: 600.0 MB on the server, deduplicated and compressed.\n"
        "Last prune: success at 2026-12-06 04:00 UTC, 2 archive(s) deleted.\n\n"
        f"{NEXT}"
    )


def test_a_failed_last_backup_says_so_in_the_title_and_tells_what_waits_in_the_outboxes(config):
    runs = [backup(6), backup(7, status="failure", message="borg create failed (exit 2)")]

    made = digest.build(config, runs, (1, 2), NOW, "app-host", [])

    assert made.title == "weekly digest of web on app-host: the last backup failed"
    assert made.body() == (
        "Last good backup (web-2026-12-06T03:00:00) finished 1d 4h ago, at 2026-12-06 03:02 UTC.\n"
        "Last run: failure at 2026-12-07 03:00 UTC: borg create failed (exit 2)\n"
        "Last archive: 1.0 GB, 1200 file(s).\n"
        "Repository: 600.0 MB on the server, deduplicated and compressed.\n"
        "Last prune: none in the journal.\n"
        "Waiting for delivery: 1 report(s), 2 notification(s) (before this digest).\n\n"
        f"{NEXT}"
    )


def test_no_backup_yet_and_a_stale_one(config):
    never = digest.build(config, [], (0, 0), NOW, "app-host", [])
    stale = digest.build(config, [backup(1)], (0, 0), NOW, "app-host", [])

    assert never.title == "weekly digest of web on app-host: no good backup yet"
    assert never.body().startswith("There is no good backup of this client yet.\nLast prune: none in the journal.")
    assert stale.title == "weekly digest of web on app-host: no good backup for 6d 4h"
    assert stale.body().startswith(
        "Last good backup (web-2026-12-01T03:00:00) finished 6d 4h ago, later than BACKUP_CRON allows, at 2026-12-01 "
    )


def test_reminders_are_lines_of_their_own_and_counted_in_the_title(config):
    made = digest.build(config, [backup(7)], (0, 0), NOW, "app-host", ["the recovery kit was never saved"])

    assert made.title == "weekly digest of web on app-host: backed up 4h 58m ago, 1 reminder"
    assert "\n\nReminder: the recovery kit was never saved\n\n" in made.body()


def test_a_recovery_kit_never_confirmed_saved_is_a_reminder(config):
    assert digest.reminders(config) == [
        "recovery kit: never confirmed saved: run borg-client recovery-kit, keep its output off this host, then "
        "borg-client recovery-kit --confirm-saved; see docs/how-to/host-lost.md"
    ]


def test_the_last_audits_findings_are_the_reminders(config, monkeypatch):
    monkeypatch.setattr(digest.recovery_kit, "saved", lambda paths: True)
    assert digest.reminders(config) == []  # never audited

    found = Item("shop", "volume", "shop_uploads", "/srv/uploads", "not_covered", "no sidecar mounts it under /backup")
    copied = Item("db", "volume", "pg", "/var/lib/postgresql/data", "unsafe", "PostgreSQL data copied while it runs",
                  database="postgresql")  # fmt: skip
    kept = Item("web", "volume", "web_data", "/data", "covered", "under /backup of sidecar backup")
    journal.record_run(config.paths, {"kind": "backup", "coverage": Audit("audited", (found, copied, kept)).to_dict()})

    assert sorted(digest.reminders(config)) == [
        "db /var/lib/postgresql/data (volume pg) is copied unsafely: PostgreSQL data copied while it runs; see "
        "docs/how-to/adding-a-service.md",
        "shop /srv/uploads (volume shop_uploads) is not backed up: no sidecar mounts it under /backup; see "
        "docs/how-to/adding-a-service.md",
    ]
