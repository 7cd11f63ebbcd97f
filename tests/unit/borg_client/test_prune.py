"""Tests for `borg-client prune`: its argv, the admin key, the refusals, the sanity checks and its report."""

import dataclasses
import json
import shlex
from datetime import datetime, timedelta

import pytest

from borg_client import __main__ as cli
from borg_client import borg, prune, prunecli, retention
from borg_client.journal import last_runs, last_success_age, run_lock
from borg_client.retention import Retention
from borg_common import outbox
from borg_common.settings import Settings

BORG = ["borg", "--log-json", "--lock-wait", "600"]
NOW = datetime.fromisoformat("2024-05-06T12:00:00+00:00")


@pytest.fixture
def admin_key(tmp_path):
    path = tmp_path / "admin_ed25519"
    path.write_text("admin key")
    return path


@pytest.fixture
def pruning(run_config, admin_key):
    """Client web ready to prune: KEEP_DAILY=7 KEEP_WEEKLY=2, its admin key, borg and pings faked."""
    keep = (("--keep-daily", "7"), ("--keep-weekly", "2"))
    return dataclasses.replace(run_config, retention=Retention(keep=keep, admin_key=admin_key))


def info(*archives: tuple[str, str, int]) -> str:
    """Return borg info --json output for archives given as (name, start, original size)."""
    listed = [{"name": name, "start": start, "stats": {"original_size": size}} for name, start, size in archives]
    return json.dumps({"archives": listed})


def listed(what: str, name: str) -> str:
    """Return borg prune --list's --log-json line for one archive."""
    line = {"type": "log_message", "levelname": "INFO", "name": "borg.output.list"}
    return json.dumps(line | {"message": f"{what:<44} {name:<36} Mon, 2024-05-06 03:00:00 [ab12]"})


def loaded(environ: dict[str, str]) -> tuple[Retention, list[str]]:
    settings = Settings(environ)
    return retention.load(settings), settings.problems


def test_prune_argv_is_exactly_borg_prune_of_this_clients_archives_by_the_keep_rules(pruning):
    assert borg.prune_argv(pruning) == [
        *BORG, "prune", "--list", "--glob-archives", "web-*", "--keep-daily", "7", "--keep-weekly", "2",
    ]  # fmt: skip


def test_keep_settings_become_borg_options_in_borgs_order(admin_key):
    environ = {"KEEP_YEARLY": "3", "KEEP_WITHIN": "2d", "KEEP_HOURLY": "24", "KEEP_MONTHLY": "6"}

    found, problems = loaded(environ | {"BORG_ADMIN_SSH_KEY_FILE": str(admin_key)})

    assert problems == []
    assert found.keep == (("--keep-within", "2d"), ("--keep-hourly", "24"), ("--keep-monthly", "6"),
                          ("--keep-yearly", "3"))  # fmt: skip
    assert found.admin_key == admin_key and found.min_size_ratio == 0.5


def test_the_newest_archives_are_asked_of_this_clients_archives_only(pruning):
    assert borg.newest_argv(pruning) == [*BORG, "info", "--json", "--glob-archives", "web-*", "--last", "2"]


@pytest.mark.parametrize(
    ("name", "glob"),
    [("{client}-{utcnow:%Y-%m-%dT%H:%M:%S}", "web-*"), ("app-{client}-{now}", "app-web-*"),
     ("nightly[{client}]-{uuid4}", "nightly[[]web]-*"), ("{utcnow}-{client}", None)],
)  # fmt: skip
def test_the_archive_glob_is_archive_names_text_before_its_first_placeholder(name, glob):
    assert retention.archive_glob(name, "web") == glob


def test_a_prune_connects_with_the_admin_key_and_everything_else_as_the_backups(pruning, admin_key):
    admin = borg.borg_environment(borg.as_admin(pruning), {})
    backup = borg.borg_environment(pruning, {})

    assert shlex.split(admin["BORG_RSH"])[:3] == ["ssh", "-i", str(admin_key)]
    assert shlex.split(admin["BORG_RSH"])[3:] == shlex.split(backup["BORG_RSH"])[3:]
    own = ("BORG_RSH", "BORG_CACHE_DIR")  # the admin's cache: see the next test
    assert {key: value for key, value in admin.items() if key not in own} == {
        key: value for key, value in backup.items() if key not in own
    }


def test_a_prune_never_uses_the_cache_in_the_state_volume_which_the_backup_side_can_write(pruning, fake_borg):
    fake_borg.answer("info", stdout=info(("web-a", recent(1), 1000), ("web-b", recent(0.01), 1000)))
    fake_borg.answer("prune", lines=[listed("Keeping archive (rule: daily #1):", "web-b")])

    prune.prune_once(pruning)

    assert [environ["BORG_CACHE_DIR"] for environ in fake_borg.environments] == ["/var/cache/borg-admin"] * 2
    assert borg.borg_environment(pruning, {})["BORG_CACHE_DIR"] == str(pruning.paths.cache)


def test_prune_with_only_the_append_only_key_is_refused_and_says_why(run_config, fake_borg, capsys):
    config = dataclasses.replace(run_config, retention=Retention(keep=(("--keep-daily", "7"),)))

    assert prunecli.command_prune(config, None) == 2

    assert capsys.readouterr().err == (
        "borg-client prune: refused: BORG_ADMIN_SSH_KEY_FILE is not set: the append-only key can only write "
        "deletes down; the server would keep every archive's data and report the deletes as an attack. Set "
        "BORG_ADMIN_SSH_KEY_FILE to the client's admin key (the server's BORG_CLIENT_<NAME>_ADMIN_KEY)\n"
    )
    assert fake_borg.commands == []
    assert last_runs(config.paths) == []


def test_the_backup_key_given_as_admin_key_is_refused(pruning):
    config = dataclasses.replace(pruning, retention=dataclasses.replace(pruning.retention, admin_key=pruning.ssh_key))

    assert retention.refusal(config).startswith(f"BORG_ADMIN_SSH_KEY_FILE is the backup key {pruning.ssh_key}: ")


def test_prune_without_any_keep_setting_is_refused(pruning):
    config = dataclasses.replace(pruning, retention=dataclasses.replace(pruning.retention, keep=()))

    assert retention.refusal(config) == (
        "nothing to keep is set: set at least one of KEEP_WITHIN, KEEP_HOURLY, KEEP_DAILY, KEEP_WEEKLY, "
        "KEEP_MONTHLY, KEEP_YEARLY"
    )


def test_prune_cron_without_keep_rules_or_admin_key_is_a_configuration_problem():
    _found, problems = loaded({"PRUNE_CRON": "30 4 * * *"})

    assert problems[0] == (
        "PRUNE_CRON: needs at least one of KEEP_WITHIN, KEEP_HOURLY, KEEP_DAILY, KEEP_WEEKLY, KEEP_MONTHLY, KEEP_YEARLY"
    )
    assert problems[1].startswith("PRUNE_CRON: needs BORG_ADMIN_SSH_KEY_FILE: the append-only key can only write")


@pytest.mark.parametrize(
    ("environ", "problem"),
    [({"KEEP_DAILY": "seven"}, "KEEP_DAILY: 'seven' is not a whole number"),
     ({"KEEP_DAILY": "0"}, "KEEP_DAILY: 0 is out of range 1..100000"),
     ({"KEEP_WITHIN": "7 days"}, "KEEP_WITHIN: '7 days' is not an interval (e.g. 12H, 7d, 4w, 6m, 1y)"),
     ({"PRUNE_MIN_SIZE_RATIO": "1.5"}, "PRUNE_MIN_SIZE_RATIO: '1.5' is not a number within 0..1 (e.g. 0.5)"),
     ({"PRUNE_MIN_SIZE_RATIO": "１"}, "PRUNE_MIN_SIZE_RATIO: '１' is not a number within 0..1 (e.g. 0.5)"),
     ({"PRUNE_MIN_SIZE_RATIO": "nan"}, "PRUNE_MIN_SIZE_RATIO: 'nan' is not a number within 0..1 (e.g. 0.5)"),
     ({"BORG_ADMIN_SSH_KEY_FILE": "/nowhere/key"}, "BORG_ADMIN_SSH_KEY_FILE: /nowhere/key is not a file")],
)  # fmt: skip
def test_wrong_retention_settings_are_problems_naming_the_setting(environ, problem):
    assert loaded(environ)[1] == [problem]


def test_a_recent_archive_of_the_usual_size_may_be_pruned(pruning):
    archives = prune.newest(info(("web-b", "2024-05-06T03:00:00", 900), ("web-a", "2024-05-05T03:00:00", 1000)))

    assert [archive["name"] for archive in archives] == ["web-a", "web-b"]  # oldest first, whatever borg's order
    assert prune.sanity(pruning, archives, NOW) is None


def test_an_archive_older_than_one_and_a_half_backup_periods_stops_the_prune(pruning):
    archives = prune.newest(info(("web-a", "2024-05-04T23:59:00", 1000)))

    assert prune.sanity(pruning, archives, NOW) == (
        "the newest archive web-a is 1 day, 12:01 old, more than 1.5 periods of BACKUP_CRON (1 day, 12:00): "
        "backups may be failing; prune after a successful backup"
    )


def test_a_weekday_schedule_lets_fridays_archive_be_recent_over_the_weekend_but_not_on_monday_noon(pruning):
    weekdays = dataclasses.replace(pruning, cron="0 3 * * 1-5")
    archives = prune.newest(info(("web-a", "2024-05-03T03:00:00", 1000)))  # a Friday
    sunday, monday_early, monday_noon = (datetime.fromisoformat(f"2024-05-{day}+00:00")
                                         for day in ("05T12:00:00", "06T02:00:00", "06T12:00:00"))  # fmt: skip

    assert prune.sanity(weekdays, archives, sunday) is None  # the period around Sunday: Friday 03:00 to Monday 03:00
    assert prune.sanity(weekdays, archives, monday_early) is None  # Monday's backup has not run yet
    assert prune.sanity(weekdays, archives, monday_noon) == (  # Monday's backup made no archive
        "the newest archive web-a is 3 days, 9:00 old, more than 1.5 periods of BACKUP_CRON (1 day, 12:00): "
        "backups may be failing; prune after a successful backup"
    )


def test_an_archive_that_shrank_below_the_ratio_stops_the_prune(pruning):
    archives = prune.newest(info(("web-a", "2024-05-05T03:00:00", 1_000_000), ("web-b", "2024-05-06T03:00:00", 10_000)))

    refused = prune.sanity(pruning, archives, NOW)

    assert refused.startswith("the newest archive web-b holds ")
    assert "under PRUNE_MIN_SIZE_RATIO=0.5 of the " in refused and " of web-a before it: data may be missing" in refused
    unchecked = dataclasses.replace(pruning, retention=dataclasses.replace(pruning.retention, min_size_ratio=0.0))
    assert prune.sanity(unchecked, archives, NOW) is None


def test_no_archive_at_all_stops_the_prune(pruning):
    assert prune.sanity(pruning, [], NOW) == "there is no archive of this client (web-*) yet"


def recent(days_ago: float) -> str:
    return (datetime.now() - timedelta(days=days_ago)).isoformat(timespec="seconds")


def test_a_prune_checks_the_newest_archives_then_prunes_and_reports_what_it_kept_and_pruned(pruning, fake_borg, pings):
    fake_borg.answer("info", stdout=info(("web-a", recent(1), 1000), ("web-b", recent(0.01), 1000)))
    lines = [listed("Keeping archive (rule: daily #1):", "web-b"), listed("Keeping archive (rule: daily #2):", "web-a"),
             listed("Pruning archive (1/1):", "web-old")]  # fmt: skip
    fake_borg.answer("prune", lines=lines)

    finished = prune.prune_once(pruning)

    assert [argv[4] for argv in fake_borg.commands] == ["info", "prune"]
    assert fake_borg.commands[1] == borg.prune_argv(pruning)
    assert (finished.status, finished.message) == ("success", "kept 2 archives, pruned 1")
    document = last_runs(pruning.paths)[-1]
    assert (document["kind"], document["kept"], document["pruned"]) == ("prune", ["web-b", "web-a"], ["web-old"])
    assert document["archive"] is None and document["borg_rc"] == 0
    assert pings == []  # a prune's success never hides a failing backup on the same check


def test_a_prune_refused_by_the_sanity_check_deletes_nothing_and_reports_a_failure(pruning, fake_borg, pings):
    fake_borg.answer("info", stdout=info(("web-a", recent(1), 1_000_000), ("web-b", recent(0.01), 10_000)))

    finished = prune.prune_once(pruning)

    assert [argv[4] for argv in fake_borg.commands] == ["info"]
    assert finished.status == "failure" and finished.kind == "prune"
    assert finished.message.startswith("nothing pruned: the newest archive web-b holds ")
    assert [url for url, _body in pings] == ["http://hc:8000/ping/abc/fail"]


def test_a_scheduled_prune_while_a_backup_runs_is_skipped_without_borg(pruning, fake_borg):
    with run_lock(pruning.paths):
        finished = prune.prune_once(pruning, wait=False)

    assert (finished.status, finished.message, fake_borg.commands) == ("skipped", "a backup is going on", [])


def test_a_run_lock_the_state_volume_refuses_is_a_failed_prune_report_with_the_traceback_logged(
    pruning, fake_borg, pings, caplog
):
    lock = pruning.paths.run_lock
    lock.mkdir(parents=True)  # open() of the lock file fails: IsADirectoryError

    finished = prune.prune_once(pruning)

    message = f"unexpected error: IsADirectoryError: [Errno 21] Is a directory: '{lock}'"
    assert (finished.kind, finished.status, finished.message, fake_borg.commands) == ("prune", "failure", message, [])
    assert [entry.document["kind"] for entry in outbox.entries(pruning.paths.outbox)] == ["prune"]
    assert pings[-1][0].endswith("/fail")
    (logged,) = [record for record in caplog.records if record.exc_info]
    assert logged.getMessage() == "the prune failed unexpectedly"


def test_a_successful_prune_does_not_count_as_a_backup_for_catch_up_and_health():
    runs = [{"kind": "backup", "status": "failure", "finished_at": "2024-05-06T11:00:00+00:00"},
            {"kind": "prune", "status": "success", "finished_at": "2024-05-06T11:30:00+00:00"}]  # fmt: skip

    assert last_success_age(runs, NOW) is None
    assert last_success_age([{"status": "success", "finished_at": "2024-05-06T11:00:00+00:00"}], NOW) == (
        timedelta(hours=1)
    )  # a report from before reports had a kind is a backup


def test_run_timestamp_dates_the_archive_for_tests(config):
    dated = dataclasses.replace(config, backup_timestamp=cli.timestamp("2024-04-06T03:00"))

    assert borg.create_argv(dated, "a", ["/backup/data"])[-4:] == ["--timestamp", "2024-04-06T03:00:00", "::a",
                                                                   "/backup/data"]  # fmt: skip


def test_prune_schedule_without_prune_cron_is_refused_naming_it(pruning, capsys):
    assert prunecli.command_prune_schedule(pruning, None) == 2

    assert capsys.readouterr().err == "borg-client prune-schedule: refused: PRUNE_CRON is not set\n"


def test_a_prune_stopped_by_sigterm_is_interrupted_and_names_what_was_pruned_before(pruning, fake_borg):
    fake_borg.answer("info", stdout=info(("web-a", recent(1), 1000), ("web-b", recent(0.01), 1000)))
    fake_borg.answer("prune", returncode=2, lines=[listed("Pruning archive (1/3):", "web-old")])
    control = prune.Control()
    fake_borg.during = lambda: control.interrupt() if len(fake_borg.commands) == 2 else None

    finished = prune.prune_once(pruning, control=control)

    assert finished.status == "interrupted"
    assert finished.message == "stopped during borg prune; before it stopped: kept 0 archives, pruned 1"
    assert finished.pruned == ("web-old",)


def test_a_copy_of_the_backup_key_given_as_admin_key_is_refused_too(pruning, tmp_path):
    copy = tmp_path / "copied_key"
    copy.write_bytes(pruning.ssh_key.read_bytes())
    config = dataclasses.replace(pruning, retention=dataclasses.replace(pruning.retention, admin_key=copy))

    assert retention.refusal(config).startswith(f"BORG_ADMIN_SSH_KEY_FILE is the backup key {pruning.ssh_key}: ")


def test_backup_jitter_lets_the_newest_archive_be_that_much_later(pruning):
    archives = prune.newest(info(("web-a", "2024-05-04T23:59:00", 1000)))
    late = dataclasses.replace(pruning, jitter=3600)

    assert prune.sanity(late, archives, NOW) is None
    assert prune.sanity(late, archives, NOW + timedelta(hours=1)) == (
        "the newest archive web-a is 1 day, 13:01 old, more than 1.5 periods of BACKUP_CRON plus BACKUP_JITTER "
        "(1 day, 13:00): backups may be failing; prune after a successful backup"
    )
