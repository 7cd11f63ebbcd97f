"""Tests for the audit around the classification: this sidecar's own container, a notification per new finding
(once; again after it went away and came back), the digest's open findings, the table, and no socket."""

import dataclasses
import json
from types import SimpleNamespace

from borg_client import coverage_audit, journal
from borg_client.coverage import Item
from borg_client.coverage_audit import Audit, own_id, table
from borg_common import notify

MINE = "d" * 64
MOUNTINFO = (
    "612 590 0:52 / / rw,relatime - overlay overlay rw\n"
    f"630 612 8:1 /var/lib/docker/containers/{MINE}/hostname /etc/hostname rw,relatime - ext4 /dev/sda1 rw\n"
)
UPLOADS = Item("app", "volume", "shop_uploads", "/srv/uploads", "not_covered", "no sidecar mounts it under /backup")
UNSAFE = (
    "PostgreSQL data copied by sidecar backup while the database runs: neither dumped (borg-appliance.dump) nor "
    "stopped (BACKUP_STOP_LABEL)"
)
DB = Item("db", "volume", "pg", "/var/lib/postgresql/data", "unsafe", UNSAFE, "postgres")


def test_the_own_container_is_found_in_mountinfo_or_by_the_default_hostname():
    assert own_id(MOUNTINFO, "app-host", {MINE, "e" * 64}) == MINE
    assert own_id("", MINE[:12], {MINE}) == MINE
    assert own_id("", "app-host", {MINE}) is None


def notified(config, monkeypatch, found: list[Item]) -> list[dict]:
    config = dataclasses.replace(config, notify=notify.Notify(urls=("ntfy://ntfy/coverage",)))
    queued = []
    monkeypatch.setattr(notify, "queue", lambda directory, message, settings: queued.append(message.document()))
    coverage_audit.notify_new(config, found, "app-host")
    return queued


def test_each_new_finding_is_notified_once_and_again_after_it_went_away_and_came_back(config, monkeypatch):
    first = notified(config, monkeypatch, [UPLOADS, DB])
    again = notified(config, monkeypatch, [UPLOADS, DB])
    gone = notified(config, monkeypatch, [DB])
    back = notified(config, monkeypatch, [UPLOADS, DB])

    assert [d["title"] for d in first] == ["volume shop_uploads is not backed up on app-host",
                                           "volume pg is backed up unsafely on app-host"]  # fmt: skip
    assert first[0]["body"] == (
        "Container app uses it at /srv/uploads.\nNo sidecar mounts it under /backup.\n"
        "Next: mount it under /backup of a sidecar, dump it with the label borg-appliance.dump if it is a database, "
        "or label the container borg-appliance.skip=<why> if it needs no backup; see docs/how-to/adding-a-service.md."
    )
    assert first[0]["kind"] == "alert"
    assert again == [] and gone == []
    assert [d["title"] for d in back] == ["volume shop_uploads is not backed up on app-host"]
    assert json.loads(config.paths.coverage_notified.read_text()) == sorted([UPLOADS.key, DB.key])


def test_a_finding_that_becomes_unsafe_from_not_covered_is_new(config, monkeypatch):
    notified(config, monkeypatch, [dataclasses.replace(DB, state="not_covered")])

    assert [d["title"] for d in notified(config, monkeypatch, [DB])] == ["volume pg is backed up unsafely on app-host"]


def test_the_digest_reads_the_open_findings_of_the_last_audited_run(config):
    audit = Audit("audited", (UPLOADS, DB, dataclasses.replace(UPLOADS, mount="ok", state="covered")))
    journal.record_run(config.paths, {"kind": "backup", "coverage": audit.to_dict()})
    journal.record_run(config.paths, {"kind": "backup", "coverage": Audit("unknown", reason="no socket").to_dict()})

    assert [item["mount"] for item in coverage_audit.open_findings(config.paths)] == ["pg", "shop_uploads"]


def test_the_report_object_has_the_counts_and_the_findings_first():
    document = Audit("audited", (dataclasses.replace(UPLOADS, mount="a", state="covered"), UPLOADS, DB),
                     scope="project").to_dict()  # fmt: skip

    assert document["counts"] == {"covered": 1, "unsafe": 1, "left_out": 0, "not_covered": 1}
    assert [item["state"] for item in document["items"]] == ["unsafe", "not_covered", "covered"]
    assert (document["status"], document["reason"], document["scope"]) == ("audited", None, "project")


def test_the_table_is_one_line_per_mount_and_the_counts():
    lines = table(Audit("audited", (UPLOADS, dataclasses.replace(DB, size=2048)), scope="host")).splitlines()

    assert lines[0].split() == ["CONTAINER", "MOUNT", "SIZE", "STATE", "WHY"]
    assert lines[1].startswith("db         pg -> /var/lib/postgresql/data  2.0 kB  UNSAFE       PostgreSQL data copied")
    assert (
        lines[2] == "app        shop_uploads -> /srv/uploads    -       NOT COVERED  no sidecar mounts it under /backup"
    )
    assert lines[-1] == (
        "2 mount(s) in scope host: 0 covered, 1 unsafe, 0 left out, 1 not covered; see docs/how-to/adding-a-service.md"
    )


def test_without_the_socket_coverage_says_it_cannot_see_the_host_and_exits_2(config, capsys):
    code = coverage_audit.command_coverage(config, SimpleNamespace(json=False, sizes=False))

    assert code == 2
    assert capsys.readouterr().err == (
        "borg-client coverage: cannot see the host: the Docker socket /var/run/docker.sock is not mounted into the "
        "sidecar: mount it to audit the host\n"
    )


def test_a_run_never_fails_for_the_audit(config, monkeypatch):
    def broken(*_):
        raise OSError("state volume read-only")

    monkeypatch.setattr(coverage_audit, "read_host", broken)

    audit = coverage_audit.audit_run(config)

    assert (audit.status, audit.reason) == ("unknown", "the audit failed: OSError: state volume read-only")


def test_without_notifications_for_alerts_nothing_is_remembered_so_turning_them_on_tells_every_open_finding(
    config, monkeypatch
):
    coverage_audit.notify_new(config, [UPLOADS], "app-host")  # no NOTIFY_URLS

    assert not config.paths.coverage_notified.exists()
    assert [d["title"] for d in notified(config, monkeypatch, [UPLOADS])] == [
        "volume shop_uploads is not backed up on app-host"
    ]
