"""Tests for running commands: output streamed into the log line by line, a bounded tail, secrets masked."""

import logging
import os

import pytest

from borg_common.process import MASK, READ_SIZE, batched_lines, masked, run

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


def test_run_keeps_every_line_of_a_long_listing_in_order():
    result = run(["sh", "-c", "seq 1 20000"], tail_lines=20000, log_level=logging.DEBUG)

    assert result.tail == [str(number) for number in range(1, 20001)]


def test_run_takes_a_listing_in_batches_not_a_read_per_line(monkeypatch):
    reads = []
    real_read = os.read

    def counting(fd, size):
        data = real_read(fd, size)
        reads.append(len(data))
        return data

    monkeypatch.setattr(os, "read", counting)
    result = run(["sh", "-c", "for i in $(seq 1 300); do echo line $i; sleep 0.0002; done"], tail_lines=300)

    assert len(result.tail) == 300
    assert len(reads) < 100


def read_end(tmp_path, data: bytes):
    path = tmp_path / "stream"
    path.write_bytes(data)
    return path.open("rb")


def test_batched_lines_ends_lines_at_newline_and_lone_carriage_return_like_text_mode(tmp_path):
    with read_end(tmp_path, b"one\r\ntwo\rthree\nlast, unterminated") as stream:
        assert list(batched_lines(stream)) == ["one", "two", "three", "last, unterminated"]


def test_batched_lines_replaces_bytes_that_are_not_utf8(tmp_path):
    with read_end(tmp_path, b"caf\xe9\n") as stream:
        assert list(batched_lines(stream)) == ["caf\ufffd"]


def test_batched_lines_joins_a_line_longer_than_one_read(tmp_path):
    with read_end(tmp_path, b"x" * (3 * READ_SIZE + 5) + b"\nnext\n") as stream:
        assert list(batched_lines(stream)) == ["x" * (3 * READ_SIZE + 5), "next"]


def test_masked_quotes_the_command_and_hides_every_secret():
    assert masked(["borg", "init", "--passphrase", "s3cret", "ssh://u:pw@host/x"], ["s3cret", "pw", ""]) == (
        f"borg init --passphrase '{MASK}' 'ssh://u:{MASK}@host/x'"
    )


def test_masked_without_secrets_is_the_shell_quoted_command():
    assert masked(["echo", "two words", "it's"]) == "echo 'two words' 'it'\"'\"'s'"


def test_masked_hides_a_secret_that_shell_quoting_changes():
    assert "secret" not in masked(["borg", "--passphrase", "it's secret"], ["it's secret"])
