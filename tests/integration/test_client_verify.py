"""Restore drills (borg-client verify, VERIFY_CRON): a healthy client's drill passes; a byte flipped in a live file
that keeps its size and mtime fails the spot check naming it; a damaged segment on the server fails the data check;
a drill due with a backup runs right after it."""

from __future__ import annotations

import json

from tests.harness.containers import CLIENT_IMAGE, docker, wait_until
from tests.harness.stack import client_command, fill_volume, make_client, start_server

FILES = (
    "mkdir -p /data/docs && printf 'hello drill\\n' > /data/a.txt && printf 'abcdefghij' > /data/b.txt"
    " && head -c 300000 /dev/urandom > /data/docs/c.bin && printf 'changes\\n' > /data/changes.txt"
)
DRILL = {"VERIFY_SAMPLE": "100%", "VERIFY_DATA_EVERY": "1"}


def status(sandbox, client) -> dict:
    return json.loads(client_command(sandbox, client, ["status", "--json", "--runs", "50"]).stdout)


def test_a_drill_passes_then_fails_on_a_silently_changed_live_file_and_on_a_damaged_segment(sandbox, tmp_path):
    server = start_server(sandbox, ["web"])
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, FILES)
    assert client_command(sandbox, web, ["run"]).returncode == 0
    # a drill killed earlier left files in its directory: the next drill empties it
    sandbox.run("leftover", CLIENT_IMAGE, ["-v", f"{web.state}:/state", "--entrypoint", "sh"],
                ["-c", "mkdir -p /state/drill/files && echo old > /state/drill/files/left"], detach=False)  # fmt: skip

    drilled = client_command(sandbox, web, ["verify"], env=DRILL)
    assert drilled.returncode == 0, drilled.stderr
    shown = status(sandbox, web)
    report = shown["last_runs"][-1]
    assert (report["kind"], report["status"]) == ("verify", "success")
    assert report["message"].startswith(f"restore drill of {report['archive']} passed: metadata checked, 4 file(s)")
    assert report["message"].endswith("0 skipped (changed since the backup), every chunk read and verified")
    last = shown["last_verified"]
    assert last["checked"] == ["metadata", "spot check", "data"]
    assert (last["status"], last["files_compared"], last["files_skipped"]) == ("success", 4, 0)
    assert last["bytes_compared"] == 12 + 10 + 300000 + 8
    healthy = client_command(sandbox, web, ["healthcheck"])
    assert healthy.returncode == 0 and "last_verified" in healthy.stdout, healthy.stdout
    assert docker("run", "--rm", "-v", f"{web.state}:/state", "--entrypoint", "ls", CLIENT_IMAGE, "/state").stdout \
        .split().count("drill") == 0  # fmt: skip

    # One byte of b.txt flipped with its size and mtime kept (silent corruption); changes.txt really changed.
    fill_volume(sandbox, web.data, "t=$(stat -c %y /data/b.txt); printf X | dd of=/data/b.txt bs=1 seek=3 "
                "conv=notrunc 2>/dev/null; touch -d \"$t\" /data/b.txt; echo more >> /data/changes.txt")  # fmt: skip
    drilled = client_command(sandbox, web, ["verify"], env={**DRILL, "VERIFY_DATA_EVERY": "0"})
    assert drilled.returncode == 2
    report = status(sandbox, web)["last_runs"][-1]
    assert report["status"] == "failure"
    assert report["message"] == (
        f"restore drill of {report['archive']} failed: the spot check found 1 file(s) that differ: /backup/data/b.txt "
        "differs from the archive from byte 3 on although its size and mtime are unchanged (silent corruption of "
        "the live file or of the backup)"
    )
    assert (report["verified"]["files_compared"], report["verified"]["files_skipped"]) == (3, 1)
    unhealthy = client_command(sandbox, web, ["healthcheck"])
    assert unhealthy.returncode == 1
    assert unhealthy.stdout.startswith("the last restore drill failed: restore drill of ")

    # A byte flipped in the middle of the repository's largest segment (c.bin's data): the data check finds it.
    # c.bin is touched, so the spot check skips it and the data check is the step that reads the damaged chunk.
    fill_volume(sandbox, web.data, "touch /data/docs/c.bin")
    flip = (
        "import pathlib; s = max(pathlib.Path('/srv/borg/web').glob('*/data/*/*'), key=lambda p: p.stat().st_size); "
        "b = bytearray(s.read_bytes()); b[len(b) // 2] ^= 0xFF; s.write_bytes(bytes(b)); print(s)"
    )
    server.exec("python3", "-c", flip)
    drilled = client_command(sandbox, web, ["verify"], env=DRILL)
    assert drilled.returncode == 2
    report = status(sandbox, web)["last_runs"][-1]
    assert report["status"] == "failure"
    assert report["message"].startswith(f"restore drill of {report['archive']} failed: the spot check found 1 file(s)")
    assert "; the data check found damage in the repository (" in report["message"]
    assert report["verified"]["checked"] == ["metadata", "spot check", "data"]


def test_a_drill_due_with_a_backup_runs_right_after_it(sandbox, tmp_path):
    server = start_server(sandbox, ["web"])
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, FILES)
    same = "0 0 1 1 *"  # both due at the same minute, far away: SIGUSR1 brings the backup, the drill follows
    sandbox.run("sidecar", CLIENT_IMAGE, web.options({"BACKUP_CRON": same, "VERIFY_CRON": same}))
    sidecar = sandbox.name("sidecar")

    def runs() -> list[dict]:
        shown = docker("exec", sidecar, "borg-client", "status", "--json", "--runs", "50", check=False)
        return json.loads(shown.stdout)["last_runs"] if shown.returncode == 0 else []

    wait_until(lambda: [r for r in runs() if r["kind"] == "backup" and r["status"] == "success"], 90, "the catch-up")
    docker("kill", "--signal", "USR1", sidecar)
    wait_until(lambda: [r for r in runs() if r["kind"] == "verify"], 120, "the drill after the backup")
    history = runs()
    backups = [r for r in history if r["kind"] == "backup"]
    drills = [r for r in history if r["kind"] == "verify"]
    assert [r["status"] for r in backups] == ["success", "success"]
    assert [r["status"] for r in drills] == ["success"], drills
    assert backups[1]["finished_at"] <= drills[0]["started_at"]  # one after the other, the backup first
    assert drills[0]["archive"] == backups[1]["archive"]
