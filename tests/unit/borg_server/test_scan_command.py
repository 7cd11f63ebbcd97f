"""Tests for `borg-server scan`'s way to the monitor: only a live process whose last argument is `monitor` is
signalled, so a stale pid file never sends SIGUSR1 (which ends most programs) to anything else."""

import os
import subprocess
import sys

import pytest

from borg_server import cli_admin
from borg_server.paths import Paths


@pytest.fixture
def paths(tmp_path, monkeypatch):
    paths = Paths(volatile=tmp_path)
    monkeypatch.setattr(cli_admin, "PATHS", paths)
    return paths


def test_the_monitor_is_found_by_its_pid_file_and_command_line(paths):
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "monitor"]) as monitor:
        try:
            paths.monitor_pid.write_text(f"{monitor.pid}\n")
            assert cli_admin.monitor_pid() == monitor.pid
        finally:
            monitor.kill()


@pytest.mark.parametrize("content", [None, "", "not a number\n", "999999999\n", f"{os.getpid()}\n"])
def test_no_pid_file_a_bad_one_or_another_process_is_no_monitor(paths, content):
    if content is not None:
        paths.monitor_pid.write_text(content)  # os.getpid(): pytest, whose last argument is not `monitor`
    assert cli_admin.monitor_pid() is None
