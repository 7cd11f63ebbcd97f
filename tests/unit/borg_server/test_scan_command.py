"""Tests for `borg-server scan`'s way to the monitor: only a live process whose last argument is `monitor` is
signalled, so a stale pid file never sends SIGUSR1 (which ends most programs) to anything else; and the monitor's
threads leave its signals to its main thread, whose wait for the next scan they must interrupt."""

import os
import subprocess
import sys

import pytest

from borg_server.cli import admin
from borg_server.system.paths import Paths


@pytest.fixture
def paths(tmp_path, monkeypatch):
    paths = Paths(volatile=tmp_path)
    monkeypatch.setattr(admin, "PATHS", paths)
    return paths


def test_the_monitor_is_found_by_its_pid_file_and_command_line(paths):
    code = "import time; print('started', flush=True); time.sleep(30)"
    with subprocess.Popen([sys.executable, "-c", code, "monitor"], stdout=subprocess.PIPE) as monitor:
        try:
            assert monitor.stdout.readline() == b"started\n"  # its command line is its own from now on
            paths.monitor_pid.write_text(f"{monitor.pid}\n")
            assert admin.monitor_pid() == monitor.pid
        finally:
            monitor.kill()


@pytest.mark.parametrize("content", [None, "", "not a number\n", "999999999\n", f"{os.getpid()}\n"])
def test_no_pid_file_a_bad_one_or_another_process_is_no_monitor(paths, content):
    if content is not None:
        paths.monitor_pid.write_text(content)  # os.getpid(): pytest, whose last argument is not `monitor`
    assert admin.monitor_pid() is None


def test_threads_started_for_the_monitor_leave_its_signals_to_the_main_thread():
    import signal
    import threading

    from borg_server.monitor import loop as monitor

    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    seen = []
    with monitor.signals_for_the_main_thread():
        thread = threading.Thread(target=lambda: seen.append(signal.pthread_sigmask(signal.SIG_BLOCK, [])))
        thread.start()
        thread.join()
    assert monitor.SIGNALS <= seen[0]  # the thread never takes SIGUSR1, SIGTERM or SIGINT
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before  # the main thread takes them again


def test_a_monitor_that_stops_before_its_scan_ends_is_reported_not_waited_for(paths, monkeypatch, capsys):
    from types import SimpleNamespace

    monkeypatch.setattr(admin, "load_or_explain", lambda: SimpleNamespace(replication=None, clients=[]))
    monkeypatch.setattr(admin, "MONITOR_START", 0.5)
    code = "import time; print('started', flush=True); time.sleep(30)"  # SIGUSR1 ends it: no handler
    with subprocess.Popen([sys.executable, "-c", code, "monitor"], stdout=subprocess.PIPE) as monitor:
        assert monitor.stdout.readline() == b"started\n"
        paths.monitor_pid.write_text(f"{monitor.pid}\n")
        assert admin.command_scan(None) == 1
        assert monitor.wait(5) == -10  # SIGUSR1
    assert "the monitor stopped before its scan ended" in capsys.readouterr().err
