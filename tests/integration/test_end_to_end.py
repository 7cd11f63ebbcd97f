"""The foundation scenario: a server and a sidecar on their own network back up, list and restore."""

from __future__ import annotations

from tests.integration.docker_helpers import CLIENT_IMAGE
from tests.integration.stack import client_command, fill_volume, make_client, start_server


def test_backup_is_listed_and_restores_byte_for_byte(sandbox, tmp_path):
    server = start_server(sandbox, ["web"])
    client = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, client.data, "head -c 3000000 /dev/urandom > /data/blob.bin && echo hello > /data/note.txt")

    backup = client_command(sandbox, client, ["run"])
    assert backup.returncode == 0, backup.stderr
    assert "backup success" in backup.stderr

    listing = client_command(sandbox, client, ["list", "--short"])
    assert listing.returncode == 0, listing.stderr
    archives = listing.stdout.split()
    assert len(archives) == 1 and archives[0].startswith("web-")

    script = (
        f"borg-client restore {archives[0]} --target /tmp/r >&2"
        " && cmp /tmp/r/backup/data/blob.bin /backup/data/blob.bin"
        " && cat /tmp/r/backup/data/note.txt"
    )
    options = [*client.options(), "--entrypoint", "sh"]
    restore = sandbox.run("restore", CLIENT_IMAGE, options, ["-c", script], detach=False, check=False)
    assert restore.returncode == 0, restore.stderr
    assert restore.stdout == "hello\n"  # cmp printed nothing: the 3 MB of random bytes are identical
