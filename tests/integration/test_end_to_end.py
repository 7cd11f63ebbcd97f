"""The foundation scenario: a server and a sidecar on their own network back up, list and restore."""

from __future__ import annotations

from tests.harness.containers import CLIENT_IMAGE
from tests.harness.stack import client_command
from tests.harness.worlds import BACKED_UP


def test_backup_is_listed_and_restores_byte_for_byte(world, sandbox):
    client, backup = world.web, world.first_run
    assert "backup success" in backup.stderr
    # the container log has a summary, not the files; the day log has every one
    files = len(BACKED_UP)
    assert f"borg create listed {files} files (A {files}): every one is in the day log" in backup.stderr
    assert "many/f0001" not in backup.stderr and len(backup.stderr.splitlines()) < 30

    listing = client_command(sandbox, client, ["list", "--short"])
    assert listing.returncode == 0, listing.stderr
    archives = listing.stdout.split()
    assert len(archives) == 1 and archives[0].startswith("web-")

    script = (
        f"borg-client restore {archives[0]} --target /tmp/r >&2"
        " && cmp /tmp/r/backup/data/blob.bin /backup/data/blob.bin"
        " && cat /tmp/r/backup/data/note.txt /tmp/r/backup/data/many/f2999"
    )
    options = [*client.options(), "--entrypoint", "sh"]
    restore = sandbox.run("restore", CLIENT_IMAGE, options, ["-c", script], detach=False, check=False)
    assert restore.returncode == 0, restore.stderr
    assert restore.stdout == "hello\n2999\n"  # cmp printed nothing: the 3 MB of random bytes are identical
    assert "restored web-" in restore.stderr and "many/f0001" not in restore.stderr

    day_log = client_command(sandbox, client, ["-c", "cat /var/lib/borg-client/logs/web-*.log"],
                             extra=["--entrypoint", "sh"]).stdout  # fmt: skip
    listed = [line.split(" borg.files: ", 1)[1] for line in day_log.splitlines() if " borg.files: " in line]
    created = [line for line in listed if line.startswith("A ")]
    assert sorted(created) == sorted(f"A /backup/data/{path}" for path in BACKED_UP)
    assert "restored web-" in day_log  # a restore is in the day log too
