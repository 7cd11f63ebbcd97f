"""Recovery after a crash mid-backup: the server killed, then the sidecar killed; the next run just works.

A killed server leaves borg's repository lock behind (its borg serve never released it). The broker
removes it before the next session, since no borg of the client is alive, so borg neither waits
out --lock-wait nor sleeps its poll interval (60 s) before taking the lock. Timings are printed,
never asserted.
"""

from __future__ import annotations

import time

import pytest

from tests.harness.containers import CLIENT_IMAGE, docker, health, logs, wait_until
from tests.harness.stack import client_command, fill_volume, make_client, repository_bytes, start_server

DATA_MB = 250  # large enough that the kill always comes mid-backup, also on a loaded machine
REMOVED = "client rec: removed the lock of /srv/borg/rec/main left by a borg serve that is gone"
LOCKS = "ls -d /srv/borg/rec/main/lock.* 2>/dev/null || true"


def new_data(name: str) -> str:
    return f"head -c {DATA_MB * 1_000_000} /dev/urandom > /data/{name}.bin"


def start_backup_and_wait_for_a_tenth(sandbox, server, client, role: str) -> str:
    """Start a run of DATA_MB new megabytes in a sidecar; return its container once a tenth reached the server."""
    before = repository_bytes(server, "rec")
    sandbox.run(role, CLIENT_IMAGE, client.options(), ["run"])
    wait_until(lambda: repository_bytes(server, "rec") > before + DATA_MB * 1e6 / 10, 90, "a tenth of the backup", 0.1)
    return sandbox.name(role)


def next_run(sandbox, client, role: str):
    """Change 5 MB, run once; return the finished process and its wall-clock seconds."""
    fill_volume(sandbox, client.data, f"head -c 5000000 /dev/urandom > /data/{role}.bin")
    started = time.monotonic()
    result = client_command(sandbox, client, ["run"], role=role)
    return result, time.monotonic() - started


@pytest.mark.cores  # copies hundreds of MB and kills mid-way: never beside another such scenario
def test_the_run_after_a_killed_server_or_sidecar_succeeds_and_leaves_no_lock(sandbox, tmp_path):
    server = start_server(sandbox, ["rec"])
    client = make_client(sandbox, server, "rec", tmp_path)
    fill_volume(sandbox, client.data, new_data("first"))
    client_command(sandbox, client, ["borg-client", "borg", "init", "--encryption", "keyfile-blake2"], check=True)

    victim = start_backup_and_wait_for_a_tenth(sandbox, server, client, "victim-server-kill")
    docker("kill", server.container)
    wait_until(lambda: health(victim) == "exited", 60, "the interrupted run to end")
    assert docker("inspect", "-f", "{{.State.ExitCode}}", victim).stdout.strip() == "2"
    docker("start", server.container)
    wait_until(lambda: health(server.container) == "healthy", 60, "the server to be healthy again")
    assert server.exec("sh", "-c", LOCKS).stdout.split() == [
        "/srv/borg/rec/main/lock.exclusive",
        "/srv/borg/rec/main/lock.roster",
    ]  # the killed borg serve's lock is still there

    result, seconds = next_run(sandbox, client, "after-server-kill")
    print(f"run after the server was killed: {seconds:.1f} s")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "backup success" in result.stderr
    assert "Killed stale lock" not in result.stderr  # borg found no lock to break (and sleep after)
    assert REMOVED in logs(server.container)
    assert server.exec("sh", "-c", LOCKS).stdout == ""

    fill_volume(sandbox, client.data, new_data("second"))
    victim = start_backup_and_wait_for_a_tenth(sandbox, server, client, "victim-sidecar-kill")
    docker("kill", victim)
    wait_until(lambda: "borg serve" not in server.exec("ps", "-eo", "args").stdout, 60, "its borg serve to end")

    result, seconds = next_run(sandbox, client, "after-sidecar-kill")
    print(f"run after the sidecar was killed: {seconds:.1f} s")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "backup success" in result.stderr
    assert "removed /var/lib/borg-client/cache/" in result.stderr  # the killed run's cache lock
    assert server.exec("sh", "-c", LOCKS).stdout == ""
    listed = client_command(sandbox, client, ["list", "--short"], check=True).stdout.split()
    assert len(listed) == 2 and all(name.startswith("rec-") for name in listed)
