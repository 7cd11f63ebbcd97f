"""`borg-client prune`: a month of archives pruned by KEEP_* with the admin key; refused with the append-only key
and after a backup that shrank."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from tests.integration.docker_helpers import CLIENT_IMAGE
from tests.integration.stack import client_command, fill_volume, make_client, start_server

KEEP = {"KEEP_DAILY": "7", "KEEP_WEEKLY": "2"}
PATTERNS = {"daily": "%Y-%m-%d", "weekly": "%G-%V"}  # borg's periods (UTC: the sidecar's TZ is unset)


def expected_kept(times: dict[str, datetime], rules: list[tuple[str, int]]) -> set[str]:
    """Given archive names and times and (rule, count) in borg's order, return the names borg's rules keep.

    Written from borg's documentation: each rule walks the archives newest first and keeps the newest of
    each period not already kept, until it has its count; one short of it, it keeps the oldest archive.
    """
    kept: set[str] = set()
    newest_first = sorted(times, key=times.get, reverse=True)
    for rule, count in rules:
        last, mine = None, 0
        for name in newest_first:
            period = times[name].strftime(PATTERNS[rule])
            if period == last:
                continue
            last = period
            if name not in kept:
                kept.add(name)
                mine += 1
                if mine == count:
                    break
        if mine < count and newest_first[-1] not in kept:
            kept.add(newest_first[-1])
    return kept


def archives(sandbox, web) -> set[str]:
    return set(client_command(sandbox, web, ["list", "--short"], check=True).stdout.split())


def last_run(sandbox, web) -> dict:
    options = [*web.options(), "--entrypoint", "cat"]
    shown = sandbox.run("journal", CLIENT_IMAGE, options, ["/var/lib/borg-client/runs.json"], detach=False)
    return json.loads(shown.stdout)[-1]


def test_a_month_of_archives_is_pruned_by_the_keep_rules_only_with_the_admin_key_and_only_when_sane(sandbox, tmp_path):
    keys = sandbox.volume("admin-key")
    sandbox.run("keygen", CLIENT_IMAGE, ["-v", f"{keys}:/admin", "--entrypoint", "ssh-keygen"],
                ["-q", "-t", "ed25519", "-N", "", "-C", "admin", "-f", "/admin/id_ed25519"], detach=False)  # fmt: skip
    admin_public = sandbox.run("cat", CLIENT_IMAGE, ["-v", f"{keys}:/admin", "--entrypoint", "cat"],
                               ["/admin/id_ed25519.pub"], detach=False).stdout.strip()  # fmt: skip
    server = start_server(sandbox, ["web"], env={"BORG_CLIENT_WEB_ADMIN_KEY": admin_public})
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "head -c 200000 /dev/urandom > /data/random.bin")

    # Thirty days of backups, one a day and three days with a second one, made now with past timestamps.
    now = datetime.now(UTC).replace(microsecond=0)
    stamps = [now - timedelta(days=day, minutes=5) for day in range(30)]
    stamps += [now - timedelta(days=day, minutes=5, hours=2) for day in (0, 3, 12)]
    times = {f"web-{stamp:%Y-%m-%dT%H:%M:%S}": stamp for stamp in stamps}
    script = " && ".join(
        f"ARCHIVE_NAME='{{client}}-{stamp:%Y-%m-%dT%H:%M:%S}' borg-client run --timestamp {stamp:%Y-%m-%dT%H:%M:%S}"
        for stamp in sorted(stamps)
    )
    made = sandbox.run("backfill", CLIENT_IMAGE, [*web.options(), "--entrypoint", "sh"], ["-c", script],
                       detach=False, check=False)  # fmt: skip
    assert made.returncode == 0, made.stderr[-3000:]
    assert archives(sandbox, web) == set(times)

    # With only the append-only key the sidecar refuses, says why, and deletes nothing.
    refused = client_command(sandbox, web, ["prune"], env=KEEP)
    assert refused.returncode == 2
    assert "borg-client prune: refused: BORG_ADMIN_SSH_KEY_FILE is not set: the append-only key can only write " \
           "deletes down" in refused.stderr  # fmt: skip
    assert archives(sandbox, web) == set(times)

    # With the admin key, exactly the archives borg's rules keep are left, and the report says which.
    admin = {**KEEP, "BORG_ADMIN_SSH_KEY_FILE": "/admin/id_ed25519"}
    pruned = client_command(sandbox, web, ["prune"], env=admin, extra=["-v", f"{keys}:/admin:ro"])
    assert pruned.returncode == 0, pruned.stderr[-3000:]
    kept = expected_kept(times, [("daily", 7), ("weekly", 2)])
    assert len(kept) == 9
    assert archives(sandbox, web) == kept
    report = last_run(sandbox, web)
    assert (report["kind"], report["status"]) == ("prune", "success")
    assert (set(report["kept"]), set(report["pruned"])) == (kept, set(times) - kept)
    assert report["message"] == f"kept 9 archives, pruned {len(times) - 9}"

    # A backup that shrank to 1% of the one before: prune refuses and deletes nothing.
    fill_volume(sandbox, web.data, "head -c 2000 /dev/urandom > /data/random.bin")
    assert client_command(sandbox, web, ["run"]).returncode == 0
    before = archives(sandbox, web)
    shrunk = client_command(sandbox, web, ["prune"], env=admin, extra=["-v", f"{keys}:/admin:ro"])
    assert shrunk.returncode == 2
    assert archives(sandbox, web) == before and len(before) == 10
    report = last_run(sandbox, web)
    assert (report["kind"], report["status"], report["pruned"]) == ("prune", "failure", [])
    assert report["message"].startswith("nothing pruned: the newest archive web-")
    assert "under PRUNE_MIN_SIZE_RATIO=0.5 of the" in report["message"]
    assert "prune failure: nothing pruned: the newest archive" in shrunk.stderr
