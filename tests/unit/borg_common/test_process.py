"""Tests for running commands: output streamed into the log line by line, a bounded tail, secrets masked."""

import logging

import pytest

from borg_common.process import MASK, masked, run

BOTH_STREAMS = ["sh", "-c", "echo a; echo b >&2"]


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG, logger="borg_common.process")
    return caplog


def test_run_logs_stdout_and_stderr_lines_and_returns_them_as_tail(logs):
    result = run(BOTH_STREAMS)

    assert (result.returncode, result.stdout, result.tail) == (0, "", ["a", "b"])
    assert [(r.levelno, r.getMessage()) for r in logs.records if r.levelno == logging.INFO] == [
        (logging.INFO, "a"),
        (logging.INFO, "b"),
    ]


def test_run_logs_the_command_and_its_exit_code_at_debug(logs):
    run(["sh", "-c", "exit 3"])

    assert logs.messages == ["running sh -c 'exit 3'", "sh exited with 3"]


def test_run_returns_the_exit_code_of_a_failing_command():
    assert run(["sh", "-c", "echo oops >&2; exit 7"]).returncode == 7


def test_run_with_capture_stdout_returns_stdout_whole_and_logs_only_stderr(logs):
    result = run(BOTH_STREAMS, capture_stdout=True)

    assert (result.returncode, result.stdout, result.tail) == (0, "a\n", ["b"])
    assert [r.getMessage() for r in logs.records if r.levelno == logging.INFO] == ["b"]


def test_run_logs_at_the_level_given(logs):
    run(BOTH_STREAMS, log_level=logging.WARNING)

    assert [r.getMessage() for r in logs.records if r.levelno == logging.WARNING] == ["a", "b"]


def test_run_keeps_only_the_last_lines_in_the_tail():
    result = run(["sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done"], tail_lines=2)

    assert result.tail == ["line 4", "line 5"]


def test_run_masks_secrets_in_the_logged_command_the_logged_lines_and_the_tail(logs):
    result = run(["sh", "-c", "echo the passphrase is hunter2; echo hunter2 >&2"], secrets=["hunter2", ""])

    assert result.tail == [f"the passphrase is {MASK}", MASK]
    assert logs.messages == [
        f"running sh -c 'echo the passphrase is {MASK}; echo {MASK} >&2'",
        f"the passphrase is {MASK}",
        MASK,
        "sh exited with 0",
    ]
    assert "hunter2" not in logs.text


def test_run_masks_a_secret_in_the_line_render_line_returns():
    result = run(["sh", "-c", "echo abc123"], secrets=["abc123"], render_line=lambda line: f"INFO: token={line}")

    assert result.tail == [f"INFO: token={MASK}"]


def test_run_drops_a_line_render_line_turns_into_none(logs):
    result = run(
        ["sh", "-c", "echo keep 1; echo progress; echo keep 2"],
        render_line=lambda line: None if line == "progress" else f"> {line}",
    )

    assert result.tail == ["> keep 1", "> keep 2"]
    assert [r.getMessage() for r in logs.records if r.levelno == logging.INFO] == ["> keep 1", "> keep 2"]


def test_run_passes_the_environment_and_working_directory(tmp_path):
    result = run(
        ["sh", "-c", 'echo "$GREETING"; pwd'], env={"GREETING": "hello", "PATH": "/usr/bin:/bin"}, cwd=str(tmp_path)
    )

    assert result.tail == ["hello", str(tmp_path)]


def test_run_gives_on_start_the_running_process():
    started = []

    result = run(["sh", "-c", "echo $$"], on_start=started.append)

    assert result.tail == [str(started[0].pid)]


def test_run_of_a_missing_program_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        run([str(tmp_path / "no-such-program")])


def test_masked_quotes_the_command_and_hides_every_secret():
    assert masked(["borg", "init", "--passphrase", "s3cret", "ssh://u:pw@host/x"], ["s3cret", "pw", ""]) == (
        f"borg init --passphrase '{MASK}' 'ssh://u:{MASK}@host/x'"
    )


def test_masked_without_secrets_is_the_shell_quoted_command():
    assert masked(["echo", "two words", "it's"]) == "echo 'two words' 'it'\"'\"'s'"


def test_masked_hides_a_secret_that_shell_quoting_changes():
    assert "secret" not in masked(["borg", "--passphrase", "it's secret"], ["it's secret"])
