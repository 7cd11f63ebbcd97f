"""Tests for retries: the delays setting, when a retry is due, which failures are retried, a full server's message."""

import dataclasses
import threading
from datetime import UTC, datetime, timedelta

import pytest

from borg_client import failures, run, schedule
from borg_client.borgcall import BorgCall, Control, explain
from borg_client.config import load
from borg_client.retry import DEFAULT_DELAYS, retry_at
from borg_common.settings import ConfigError

FINISHED = datetime(2024, 5, 6, 3, 1, tzinfo=UTC)
NEXT_DAY = datetime(2024, 5, 7, 3, 0, tzinfo=UTC)
INSUFFICIENT = "Insufficient free space to complete transaction (required: 1.05 GB, available: 12.34 MB)."


def loaded(pairing, passphrase_file, **environ):
    return load({"BORG_PASSPHRASE_FILE": str(passphrase_file), **environ}, pairing=pairing)


def test_the_default_delays_are_5_minutes_30_minutes_and_2_hours(pairing, passphrase_file):
    assert loaded(pairing, passphrase_file).retry_delays == DEFAULT_DELAYS == (300, 1800, 7200)


def test_retry_delays_are_durations_and_0_turns_retries_off(pairing, passphrase_file):
    assert loaded(pairing, passphrase_file, RETRY_DELAYS="20s 1m,2h").retry_delays == (20, 60, 7200)
    assert loaded(pairing, passphrase_file, RETRY_DELAYS="0").retry_delays == ()


@pytest.mark.parametrize(
    "value, problem",
    [
        ("5m soon", "RETRY_DELAYS: is not a list of durations (e.g. 5m 30m 2h), or 0 for no retries"),
        ("1s", "RETRY_DELAYS: each delay must be within 10s..1d (or 0 alone: no retries)"),
        ("5m 0", "RETRY_DELAYS: each delay must be within 10s..1d (or 0 alone: no retries)"),
        ("2d", "RETRY_DELAYS: each delay must be within 10s..1d (or 0 alone: no retries)"),
        (" ".join(["1m"] * 11), "RETRY_DELAYS: has 11 delays; the maximum is 10"),
    ],
)
def test_wrong_retry_delays_are_a_problem_naming_the_setting(pairing, passphrase_file, value, problem):
    with pytest.raises(ConfigError) as raised:
        loaded(pairing, passphrase_file, RETRY_DELAYS=value)
    assert raised.value.problems == [problem]


def test_the_first_retry_comes_after_the_first_delay():
    assert retry_at((300, 1800), True, 1, FINISHED, NEXT_DAY) == FINISHED + timedelta(minutes=5)


def test_the_second_retry_comes_after_the_second_delay():
    assert retry_at((300, 1800), True, 2, FINISHED, NEXT_DAY) == FINISHED + timedelta(minutes=30)


def test_no_retry_once_the_delays_are_used_up_or_off():
    assert retry_at((300, 1800), True, 3, FINISHED, NEXT_DAY) is None
    assert retry_at((), True, 1, FINISHED, NEXT_DAY) is None


def test_no_retry_for_a_failure_a_retry_cannot_fix():
    assert retry_at((300,), False, 1, FINISHED, NEXT_DAY) is None


def test_a_retry_due_at_or_after_the_next_scheduled_time_is_dropped():
    assert retry_at((7200,), True, 1, FINISHED, FINISHED + timedelta(hours=2)) is None
    assert retry_at((7200,), True, 1, FINISHED, FINISHED + timedelta(hours=2, seconds=1)) is not None


@pytest.mark.parametrize(
    "status, cause, msgids, expected",
    [
        ("failure", None, ("ConnectionClosed",), True),
        ("failure", "unreachable", (), True),
        ("interrupted", None, (), True),
        ("failure", None, ("Repository.InsufficientFreeSpaceError",), True),
        ("failure", None, ("PassphraseWrong",), False),
        ("failure", None, ("Repository.DoesNotExist",), False),
        ("failure", None, ("PathNotAllowed",), False),
        ("failure", "host-key", (), False),
        ("failure", "sources", (), False),
        ("failure", "vanished", (), False),
        ("failure", "settings", (), False),
        ("skipped", None, (), False),
        ("success", None, (), False),
        ("warning", None, (), False),
    ],
)
def test_only_failures_a_retry_may_fix_are_retryable(status, cause, msgids, expected):
    assert failures.retryable(status, cause, msgids) is expected


def test_a_full_server_is_named_with_the_free_space_borg_gives():
    tail = (f"ERROR: {INSUFFICIENT} [Repository.InsufficientFreeSpaceError]",)
    assert failures.no_space(("Repository.InsufficientFreeSpaceError",), tail) == (
        "the backup server has no space left (12.34 MB free); the archive was not written"
    )


def test_no_space_left_on_the_server_is_named_without_a_figure():
    tail = ("ERROR: Borg server: OSError: [Errno 28] No space left on device [OSError]",)
    assert failures.no_space(("OSError",), tail) == "the backup server has no space left; the archive was not written"


def test_a_local_error_or_another_remote_oserror_is_not_a_full_server():
    assert failures.no_space(("Exception",), ("ERROR: Local Exception [Errno 28] No space left",)) is None
    assert failures.no_space(("OSError",), ("ERROR: OSError: [Errno 13] Permission denied [OSError]",)) is None


def test_a_run_on_a_full_server_says_so_and_is_retryable(run_config, fake_borg, lines):
    fake_borg.answer("create", 2, "", [lines.log("ERROR", INSUFFICIENT, "Repository.InsufficientFreeSpaceError")])

    result = run.run_once(run_config)

    assert (result.status, result.retryable, result.attempt) == ("failure", True, 1)
    assert result.message == "the backup server has no space left (12.34 MB free); the archive was not written"


def test_a_wrong_passphrase_is_a_failure_not_retried(run_config, fake_borg, lines):
    fake_borg.answer("create", 2, "", [lines.log("ERROR", "passphrase supplied is incorrect", "PassphraseWrong")])

    assert run.run_once(run_config).retryable is False


def test_a_retry_is_reported_with_its_attempt(run_config, fake_borg):
    assert run.run_once(run_config, attempt=2).to_dict()["attempt"] == 2


def test_a_refused_host_key_is_not_retried(run_config, fake_borg, lines, monkeypatch):
    def impersonated(config):
        raise run.preflight.PreflightFailed("the backup server shows a host key that is not the one pinned", "host-key")

    monkeypatch.setattr(run.preflight, "check_host_key", impersonated)
    fake_borg.answer("create", 2, "", [lines.log("ERROR", "Connection closed by remote host", "ConnectionClosed")])
    result = run.run_once(run_config)
    assert (result.status, result.retryable) == ("failure", False)


@pytest.fixture
def attempts(config, monkeypatch):
    """The scheduler's runs fail (retryable unless told), their waits recorded instead of waited."""
    tried, waited = [], []
    outcome = {"retryable": True, "status": "failure"}
    now = datetime(2024, 5, 6, 3, 0, tzinfo=UTC)

    def run_once(config, control, attempt=1):
        tried.append(attempt)
        report = run.report.RunReport("id", "web", "repo", now, status=outcome["status"])
        return dataclasses.replace(report, finished_at=now, attempt=attempt, retryable=outcome["retryable"])

    monkeypatch.setattr(run, "run_once", run_once)
    monkeypatch.setattr(schedule, "wait_until", lambda config, due, stop, what: waited.append(due - now) or True)
    monkeypatch.setattr(schedule, "next_times", lambda expression, after, count=2: [now + timedelta(days=1)])
    return tried, waited, outcome


def test_a_failed_scheduled_run_is_retried_after_each_delay_then_waits_for_the_schedule(config, attempts):
    tried, waited, _ = attempts
    schedule.run_with_retries(config, threading.Event(), Control())
    assert tried == [1, 2, 3, 4]
    assert waited == [timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2)]


def test_a_failure_no_retry_can_fix_is_tried_once(config, attempts):
    tried, waited, outcome = attempts
    outcome["retryable"] = False
    schedule.run_with_retries(config, threading.Event(), Control())
    assert (tried, waited) == ([1], [])


def test_retries_that_would_come_after_the_next_scheduled_run_are_dropped(config, attempts):
    tried, waited, _ = attempts
    schedule.run_with_retries(dataclasses.replace(config, retry_delays=(300, 86400)), threading.Event(), Control())
    assert (tried, waited) == ([1, 2], [timedelta(minutes=5)])


def test_a_stop_during_the_wait_for_a_retry_ends_the_retries(config, attempts, monkeypatch):
    tried, _, _ = attempts
    monkeypatch.setattr(schedule, "wait_until", lambda config, due, stop, what: False)  # SIGTERM came while waiting
    schedule.run_with_retries(config, threading.Event(), Control())
    assert tried == [1]


@pytest.mark.parametrize("msgid", sorted(failures.BORG_FAILURES))
def test_every_borg_failure_a_user_can_cause_is_explained_with_borgs_own_line(msgid):
    line = f"ERROR: something borg said [{msgid}]"

    meaning, said = failures.borg_failure(("Remote: connected", msgid), ("INFO: starting", line))

    assert (meaning, said) == (failures.BORG_FAILURES[msgid], f"borg: something borg said [{msgid}]")


def test_a_wrong_passphrase_reads_as_one_line_with_the_next_step():
    call = BorgCall(52, "", ("PassphraseWrong",), ("ERROR: passphrase supplied in BORG_PASSPHRASE ... is incorrect.",))

    assert explain(call, "borg create failed") == (
        "borg create failed (exit 52): the passphrase does not open the repository key; BORG_PASSPHRASE_FILE (or "
        "BORG_PASSCOMMAND, BORG_PASSPHRASE) must give the passphrase the repository was initialised with (borg: "
        "passphrase supplied in BORG_PASSPHRASE ... is incorrect.)"
    )


@pytest.mark.parametrize(
    ("ssh", "meaning", "said"),
    [
        ("borg@server: Permission denied (publickey).", "the server refused this client's key",
         "borg@server: Permission denied (publickey)."),
        ("Host key verification failed.", "the server's host key is not the one pinned in known_hosts",
         "Host key verification failed."),
        ("Permissions 0444 for '/keys/id' are too open.", "ssh refused the private key: others may read",
         "Permissions 0444 for '/keys/id' are too open."),
        ("ssh: Could not resolve hostname nowhere: Name or service not known", "the server's name in BORG_REPO",
         "Could not resolve hostname nowhere: Name or service not known"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("passed_on", ["ssh: {}", "WARNING: Remote: {}", "Remote: {}"])  # by borgcall, by borg
def test_an_ssh_refusal_is_reported_in_ssh_s_words_not_as_a_closed_connection(ssh, meaning, said, passed_on):
    tail = (passed_on.format(ssh), "ERROR: Connection closed by remote host. Is borg working on the server?")

    found = failures.borg_failure(("ConnectionClosedWithHint",), tail)

    assert found is not None and found[0].startswith(meaning) and found[1] == f"ssh: {said}"


def test_a_key_ssh_cannot_load_is_the_reason_not_the_refusal_that_follows_it():
    tail = ('ssh: Load key "/keys/id": Permission denied', "ssh: borg@server: Permission denied (publickey).")

    found = failures.borg_failure(("ConnectionClosedWithHint",), tail)

    assert found == (
        "ssh cannot read the private key (BORG_SSH_KEY_FILE, or BORG_ADMIN_SSH_KEY_FILE for prune)",
        'ssh: Load key "/keys/id": Permission denied',
    )


def test_a_wrong_key_reads_as_one_line_in_ssh_s_words():
    tail = ("ERROR: Connection closed by remote host. Is borg working on the server? [ConnectionClosedWithHint]",
            "ssh: borg@backup-server: Permission denied (publickey).")  # fmt: skip
    call = BorgCall(81, "", ("ConnectionClosedWithHint",), tail)

    assert explain(call, "borg create failed") == (
        "borg create failed (exit 81): the server refused this client's key: is it the key the server has for "
        "CLIENT_NAME? (borg-server show-client NAME shows its fingerprint) (ssh: borg@backup-server: Permission "
        "denied (publickey).)"
    )


def test_a_failure_no_user_causes_keeps_borgs_last_error_line():
    call = BorgCall(2, "", ("Exception",), ("ERROR: Local Exception", "Traceback ..."))

    assert failures.borg_failure(call.msgids, call.tail) is None
    assert explain(call, "borg create failed") == "borg create failed (exit 2): ERROR: Local Exception"
