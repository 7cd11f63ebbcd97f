"""The foundation scenario: a server and a sidecar on their own network back up, list and restore."""

from __future__ import annotations

from tests.harness.containers import CLIENT_IMAGE
from tests.harness.stack import client_command, fill_volume, make_client, start_server

MANY = 3000  # tiny files: enough that a per-file container log would show, cheap to back up
FILL = (
    "head -c 3000000 /dev/urandom > /data/blob.bin && echo hello > /data/note.txt && mkdir /data/many && "
    f"cd /data/many && seq -w {MANY} | while read n; do echo $n > f$n; done"
)


def test_backup_is_listed_and_restores_byte_for_byte(sandbox, tmp_path):
    server = start_server(sandbox, ["web"])
    client = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, client.data, FILL)

    backup = client_command(sandbox, client, ["run"])
    assert backup.returncode == 0, backup.stderr
    assert "backup success" in backup.stderr
    # the container log has a summary, not the files; the day log has every one
    assert f"borg create listed {MANY + 2} files (A {MANY + 2}): every one is in the day log" in backup.stderr
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
    assert sorted(created) == sorted(
        [
            "A /backup/data/blob.bin",
            "A /backup/data/note.txt",
            *[f"A /backup/data/many/f{n:04d}" for n in range(1, MANY + 1)],
        ]
    )
    assert "restored web-" in day_log  # a restore is in the day log too
