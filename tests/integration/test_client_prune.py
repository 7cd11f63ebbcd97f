"""`borg-client prune`: a month of archives pruned by KEEP_* with the admin key, only this client's, then compacted by
the server once a person approved a prune that large; refused with the append-only key, after backups stopped and
after a backup that shrank."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.harness.containers import CLIENT_IMAGE, wait_until
from tests.harness.stack import (
    client_command,
    fill_volume,
    make_client,
    monitor_documents,
    repository_bytes,
    start_receiver,
    start_server,
)

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


@pytest.mark.long
def test_a_month_of_archives_is_pruned_by_the_keep_rules_only_with_the_admin_key_and_only_when_sane(sandbox, tmp_path):
    keys = sandbox.volume("admin-key")
    sandbox.run("keygen", CLIENT_IMAGE, ["-v", f"{keys}:/admin", "--entrypoint", "ssh-keygen"],
                ["-q", "-t", "ed25519", "-N", "", "-C", "admin", "-f", "/admin/id_ed25519"], detach=False)  # fmt: skip
    admin_public = sandbox.run("cat", CLIENT_IMAGE, ["-v", f"{keys}:/admin", "--entrypoint", "cat"],
                               ["/admin/id_ed25519.pub"], detach=False).stdout.strip()  # fmt: skip
    network = sandbox.network()
    receiver = start_receiver(sandbox, network)
    env = {"BORG_CLIENT_WEB_ADMIN_KEY": admin_public, "MONITOR_INTERVAL": "10s", "COMPACT_DELAY": "10s",
           "SNAPSHOT_KEEP": "0"}  # fmt: skip
    server = start_server(sandbox, ["web"], env=env, network=network)
    web = make_client(sandbox, server, "web", tmp_path)

    # Thirty days of backups, one a day and three days with a second one, made now with past timestamps,
    # each of 200 kB of its own; and one archive by another name, which is not this client's to prune.
    now = datetime.now(UTC).replace(microsecond=0)
    stamps = [now - timedelta(days=day, minutes=5) for day in range(30)]
    stamps += [now - timedelta(days=day, minutes=5, hours=2) for day in (0, 3, 12)]
    times = {f"web-{stamp:%Y-%m-%dT%H:%M:%S}": stamp for stamp in stamps}
    other = now - timedelta(days=20, hours=1)
    foreign = f"manual-web-{other:%Y-%m-%dT%H:%M:%S}"
    named = [(stamp, f"{{client}}-{stamp:%Y-%m-%dT%H:%M:%S}") for stamp in stamps]
    named += [(other, f"manual-{{client}}-{other:%Y-%m-%dT%H:%M:%S}")]
    script = " && ".join(
        f"head -c 200000 /dev/urandom > /source/random.bin && "
        f"ARCHIVE_NAME='{name}' borg-client run --timestamp {stamp:%Y-%m-%dT%H:%M:%S}"
        for stamp, name in sorted(named)
    )
    made = sandbox.run("backfill", CLIENT_IMAGE, [*web.options(), "-v", f"{web.data}:/source", "--entrypoint", "sh"],
                       ["-c", script], detach=False, check=False)  # fmt: skip
    assert made.returncode == 0, made.stderr[-3000:]
    assert archives(sandbox, web) == set(times) | {foreign}

    # With only the append-only key the sidecar refuses, says why, and deletes nothing.
    refused = client_command(sandbox, web, ["prune"], env=KEEP)
    assert refused.returncode == 2
    assert "borg-client prune: refused: BORG_ADMIN_SSH_KEY_FILE is not set: the append-only key can only write " \
           "deletes down" in refused.stderr  # fmt: skip
    assert archives(sandbox, web) == set(times) | {foreign}

    # Backups every two minutes would have made a newer archive than one 5 minutes old: prune refuses.
    admin = {**KEEP, "BORG_ADMIN_SSH_KEY_FILE": "/admin/id_ed25519", "REPORT_URLS": receiver.url}
    mounted = ["-v", f"{keys}:/admin:ro"]
    stale = client_command(sandbox, web, ["prune"], env={**admin, "BACKUP_CRON": "*/2 * * * *"}, extra=mounted)
    assert stale.returncode == 2
    report = last_run(sandbox, web)
    assert (report["kind"], report["status"], report["pruned"]) == ("prune", "failure", [])
    assert report["message"].startswith(f"nothing pruned: the newest archive {max(times, key=times.get)} is ")
    assert "old, more than 1.5 periods of BACKUP_CRON (0:03): backups may be failing" in report["message"]
    assert archives(sandbox, web) == set(times) | {foreign}

    # With the admin key, exactly the archives borg's rules keep are left, and the report says which. It runs
    # as a prune-only service on another machine would: the admin key, known_hosts, the repository URL, the
    # passphrase and the repository key (in the state volume), and no backup key anywhere.
    before = repository_bytes(server, "web")
    elsewhere = ["--network", server.network, "-v", f"{server.exports['web']}:/copied:ro",
                 "-v", f"{web.state}:/var/lib/borg-client", "-e", "CLIENT_NAME=web",
                 "-v", f"{web.passphrase_file}:/run/secrets/borg_passphrase:ro",
                 "-e", "BORG_PASSPHRASE_FILE=/run/secrets/borg_passphrase",
                 "-e", "BORG_KNOWN_HOSTS_FILE=/copied/known_hosts",
                 "-e", f"BORG_REPO=ssh://borg@{server.container}:22/./main", *mounted]  # fmt: skip
    for name, value in admin.items():
        elsewhere += ["-e", f"{name}={value}"]
    pruned = sandbox.run("prune-only", CLIENT_IMAGE, elsewhere, ["prune"], detach=False, check=False)
    assert pruned.returncode == 0, pruned.stderr[-3000:]
    kept = expected_kept(times, [("daily", 7), ("weekly", 2)])
    assert len(kept) == 9
    assert archives(sandbox, web) == kept | {foreign}
    report = last_run(sandbox, web)
    assert (report["kind"], report["status"]) == ("prune", "success")
    assert (set(report["kept"]), set(report["pruned"])) == (kept, set(times) - kept)
    assert report["message"] == f"kept 9 archives, pruned {len(times) - 9}"
    shipped = wait_until(lambda: [e["body"] for e in receiver.accepted() if e["body"]["status"] == "success"], 30,
                         "the prune's report at the receiver")[0]  # fmt: skip
    assert (shipped["kind"], shipped["run_id"], shipped["pruned"]) == ("prune", report["run_id"], report["pruned"])

    # The server shows the admin's deletes first. This prune takes more archives than it leaves (a month pruned at
    # once), which no regular prune does: the automatic compaction waits for a person, who approves it; then it
    # compacts by itself and the disk use drops.
    held = wait_until(lambda: monitor_documents(server.container, "compaction_held", "raised"), 90, "the hold")[0]
    assert f"take {len(times) - 9} archives and leave " in held["message"], held
    assert monitor_documents(server.container, "deletes", "raised")
    assert monitor_documents(server.container, "compacted", "event") == []
    listing = server.exec("borg-server", "audit", "web").stdout
    acknowledge = next(line.split() for line in listing.splitlines() if "--acknowledge" in line)
    assert server.exec(*acknowledge).returncode == 0
    event = wait_until(lambda: monitor_documents(server.container, "compacted", "event"), 90, "the compaction")[0]
    after = repository_bytes(server, "web")
    assert after < before - 24 * 180_000, (before, after)
    assert event["details"]["bytes_freed"] > 24 * 180_000 and event["details"]["acknowledged_deletes"] >= 24, event
    assert server.exec("ls", "-A", "/srv/borg/.snapshots/web").stdout == ""  # SNAPSHOT_KEEP=0
    assert archives(sandbox, web) == kept | {foreign}

    # A backup that shrank to 1% of the one before: prune refuses and deletes nothing.
    fill_volume(sandbox, web.data, "head -c 2000 /dev/urandom > /data/random.bin")
    assert client_command(sandbox, web, ["run"]).returncode == 0
    before = archives(sandbox, web)
    shrunk = client_command(sandbox, web, ["prune"], env=admin, extra=mounted)
    assert shrunk.returncode == 2
    assert archives(sandbox, web) == before and len(before - {foreign}) == 10
    report = last_run(sandbox, web)
    assert (report["kind"], report["status"], report["pruned"]) == ("prune", "failure", [])
    assert report["message"].startswith("nothing pruned: the newest archive web-")
    assert "under PRUNE_MIN_SIZE_RATIO=0.5 of the" in report["message"]
    assert "prune failure: nothing pruned: the newest archive" in shrunk.stderr
