"""Sessions that add no archive are no backup, and archives dropped from the manifest without any
DELETE are noticed: a client holding its repository key tries both against a real server."""

from __future__ import annotations

import json

from tests.harness.containers import CLIENT_IMAGE, wait_until
from tests.harness.stack import (
    alert_seen,
    client_command,
    fill_volume,
    make_client,
    received,
    start_receiver,
    start_server,
)

RECEIVER_URL = "http://receiver:8080/alerts"

# Run in the client image with the sidecar's settings: borg's own API loads the manifest with the
# client's key, forgets the oldest archive and commits the smaller manifest. No DELETE is written.
DROP_ARCHIVE = """
import os
from borg_client import borg as sidecar, config
os.environ.update(sidecar.borg_environment(config.load(os.environ), dict(os.environ)))
from borg.logger import setup_logging
setup_logging()
from borg.helpers.manifest import Manifest
from borg.helpers.parseformat import Location
from borg.remote import RemoteRepository
from argparse import Namespace
options = Namespace(remote_path=None, rsh=os.environ["BORG_RSH"], debug_topics=[], storage_quota=None,
                    upload_ratelimit=0, upload_buffer=0)
repository = RemoteRepository(Location(os.environ["BORG_REPO"]), exclusive=True, args=options)
with repository:
    manifest, key = Manifest.load(repository, (Manifest.Operation.WRITE,))
    dropped = sorted(manifest.archives)[0]
    del manifest.archives[dropped]
    manifest.write()
    repository.commit(compact=False)
print(dropped)
"""


def status_of(server) -> dict:
    return json.loads(server.exec("borg-server", "status", "--json").stdout)[0]


def test_lock_only_sessions_are_no_backup_and_a_manifest_without_an_archive_raises_manifest_shrank(sandbox, tmp_path):
    network = sandbox.network()
    receiver = start_receiver(sandbox, network)
    env = {"MONITOR_INTERVAL": "10s", "REPORT_URLS": RECEIVER_URL, "BORG_CLIENT_WEB_MAX_AGE": "1m"}
    server = start_server(sandbox, ["web"], env=env, network=network)
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "head -c 200000 /dev/urandom > /data/one.bin")
    for name in ("first", "second"):
        assert client_command(sandbox, web, ["run"], env={"ARCHIVE_NAME": f"{name}-{{utcnow}}"}).returncode == 0
    backed_up = wait_until(lambda: status_of(server)["last_backup"], 30, "the backup in status")

    # Sessions that commit without adding an archive (borgmatic's prune, a lock, a listing, an object put
    # with borg's debug command, listed in no manifest) are no backup.
    repo = "$(cat /pairing/repo_url)"
    script = (f'borg-client borg with-lock "{repo}" true && borg-client borg break-lock "{repo}" && '
              'borg-client borg list && borg-client borg prune --keep-last 5 && echo fake > /tmp/object && '
              f'borg-client borg debug put-obj "{repo}" {"1" * 64} /tmp/object')  # fmt: skip
    lock_only = sandbox.run("lock-only", CLIENT_IMAGE, [*web.options(), "--entrypoint", "sh"], ["-c", script],
                            detach=False, check=False)  # fmt: skip
    assert lock_only.returncode == 0, lock_only.stdout + lock_only.stderr
    sessions = server.exec("wc", "-l", "/var/lib/borg-server/audit/sessions.jsonl").stdout.split()[0]
    assert int(sessions) >= 6  # two backups (plus their inits/listings) and the four sessions above
    server.exec("borg-server", "scan")  # a scan after the sessions
    assert status_of(server)["last_backup"] == backed_up

    # The client's key writes a manifest without the first archive: no DELETE at all.
    options = [*web.options({"PYTHONPATH": "/opt/borg-appliance"}), "--entrypoint", "python3"]
    dropped = sandbox.run("dropper", CLIENT_IMAGE, options, ["-c", DROP_ARCHIVE], detach=False, check=False)
    assert dropped.returncode == 0, dropped.stderr
    assert dropped.stdout.strip().startswith("first-")
    server.exec("borg-server", "scan")
    alert = wait_until(lambda: received(receiver, "manifest_shrank", "raised"), 10, "manifest_shrank at the receiver")
    assert alert[0]["client"] == "web" and "borg check --repair" in alert[0]["message"]
    assert alert[0]["details"]["count"] == 1
    assert alert_seen(server.container, "deletes", "raised") is None
    assert alert_seen(server.container, "client_deletes", "raised") is None
    assert status_of(server)["last_backup"] == backed_up
    assert "manifest_shrank" in status_of(server)["alerts"]
    listing = server.exec("borg-server", "audit", "web").stdout
    assert "the manifest shrank from" in listing and "with no archive deleted" in listing, listing
    archives = client_command(sandbox, web, ["list", "--short"]).stdout.split()
    assert len(archives) == 1 and archives[0].startswith("second-")

    # Only sessions that add nothing came after the last backup: the client goes stale.
    stale = wait_until(lambda: received(receiver, "stale", "raised"), 90, "the stale alert")
    assert stale[0]["details"]["last_backup"] == backed_up
