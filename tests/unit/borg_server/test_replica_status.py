"""What a replica shows (replica/status.py): per copy its lag, mismatches with their messages and last round, its
primary and the notifications waiting, in `borg-server status`, the metrics and the status page's section."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from borg_server.config.reader import load
from borg_server.records import state_file
from borg_server.records.client_state import RaisedAlert
from borg_server.records.replica_state import ReplicaState
from borg_server.replica import alerts
from borg_server.replica import status as replica_status
from borg_server.status.page import Snapshot, render_html, render_json
from tests.unit.borg_server.sample_keys import ED25519
from tests.unit.borg_server.test_page import read

NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
MISMATCH = ("client app: committed segments differ on the primary (7 changed); the replica keeps its copies and "
            "copies none of them (borg-server replicate --accept app takes the primary's)")  # fmt: skip


def replica_config(tmp_path):
    key = tmp_path / "id_replica"
    key.write_text("private\n")
    environ = {"REPLICATE_FROM": "ssh://replica@primary:2222", "REPLICATE_HOST_KEY": f"primary {ED25519}",
               "REPLICATE_SSH_KEY_FILE": str(key), "NOTIFY_URLS": "ntfy://ntfy/replica"}  # fmt: skip
    return load(environ, "replica")


def copies(paths) -> None:
    """app: copied to commit 9 an hour ago, segment 7 differs on the primary since; web: copied a minute ago."""
    with state_file.locked(paths.monitor_state("app")) as found:
        found.replica = ReplicaState(last_copy_at="2026-12-05T02:00:00+00:00", copied_commit=9, primary_commit=11,
                                     lag_segments=2, bytes=4000, mismatch={7: "changed"},
                                     last_round_at="2026-12-05T02:59:00+00:00",
                                     last_outcome="kept its own copy of segments that differ on the primary "
                                                  "(7 changed): replica_mismatch")  # fmt: skip
        found.alerts["replica_mismatch"] = RaisedAlert("2026-12-05T02:59:00+00:00", MISMATCH)
    with state_file.locked(paths.monitor_state("web")) as found:
        found.replica = ReplicaState(last_copy_at="2026-12-05T02:59:00+00:00", copied_commit=4, primary_commit=4,
                                     last_round_at="2026-12-05T02:59:00+00:00",
                                     last_outcome="copied 2 segment(s), 1500 bytes, up to commit 4")  # fmt: skip


def test_the_replica_section_shows_the_primary_each_copys_lag_mismatches_with_their_messages_and_last_round(
    paths, tmp_path
):
    server = replica_config(tmp_path)
    copies(paths)
    alerts.watch_primary(server, paths, None, datetime(2026, 12, 5, 2, 59, tzinfo=UTC))
    section = replica_status.section(replica_status.collect(paths, NOW), replica_status.primary_status(server, paths))
    snapshot = Snapshot("replica", NOW.timestamp() - 60, sections=(section,), source="the replicator's last look")

    page = read(render_html(snapshot, NOW))

    assert page.paragraphs[0] == "Needs attention: app (replica_mismatch)."
    assert page.paragraphs[2] == ("This server is a replica: it pulls every client's committed segments from "
                                  "primary:2222; the last round reached it at 2026-12-05T02:59:00+00:00.")  # fmt: skip
    assert page.rows == {
        "replica-app": ["app", "last complete copy 1h ago; 2 segment(s) of the primary not copied yet",
                        "9 (primary 11)", "1 segment(s)", f"replica_mismatch: {MISMATCH}",
                        "2026-12-05T02:59:00+00:00: kept its own copy of segments that differ on the primary "
                        "(7 changed): replica_mismatch"],
        "replica-web": ["web", "last complete copy 1m ago", "4 (primary 4)", "none", "none",
                        "2026-12-05T02:59:00+00:00: copied 2 segment(s), 1500 bytes, up to commit 4"],
    }  # fmt: skip
    document = json.loads(render_json(snapshot, NOW))["replica"]
    assert document["primary"]["primary"] == "primary:2222"
    assert document["primary"]["failed_rounds"] == 0
    [app, web] = document["copies"]
    assert (app["lag_s"], app["mismatched_segments"], app["alert_messages"]) == (
        3600,
        1,
        {"replica_mismatch": MISMATCH},
    )
    assert web["last_outcome"] == "copied 2 segment(s), 1500 bytes, up to commit 4"


def test_a_replica_that_cannot_reach_its_primary_says_so_in_its_section_and_its_status_line(paths, tmp_path, capsys):
    server = replica_config(tmp_path)
    error = "the primary closed the session: ssh: connect to host primary port 2222: Connection refused"
    for _ in range(3):
        alerts.watch_primary(server, paths, error, datetime(2026, 12, 5, 2, 0, tzinfo=UTC))
    capsys.readouterr()  # the raised alert's notification waits in the outbox (nothing was sent)
    primary = replica_status.primary_status(server, paths)

    line = replica_status.render([], primary=primary).splitlines()[-1]
    section = replica_status.section([], primary)

    assert line == (f"PRIMARY primary:2222: the last 3 round(s) could not reach it (since 2026-12-05T02:00:00+00:00): "
                    f"{error}; alerts: replica_unreachable; notifications waiting: 1")  # fmt: skip
    assert section.attention == ("the replica (replica_unreachable)",)
    assert section.lines[1].startswith("replica_unreachable: server: the replica could not reach its primary ")
    assert section.empty == "No copy yet: the replica has not reached its primary (borg-server replicate copies now)."
    shown = json.loads(replica_status.render([], as_json=True, primary=primary))
    assert (shown["clients"], shown["primary"]["notifications_waiting"]) == ([], 1)
    assert json.loads(replica_status.render([], as_json=True)) == []  # without --server: the list, as before
    assert "\nborg_appliance_replica_outbox_notifications 1\n" in replica_status.metrics(paths)


def test_a_copy_that_failed_midway_shows_why_as_its_last_round(paths, tmp_path):
    from borg_server.replica import copy

    copies(paths)
    copy.note_outcome(paths, "web", "not copied: [Errno 28] No space left on device")

    [_, web] = replica_status.collect(paths, NOW)
    section = replica_status.section([web], replica_status.primary_status(replica_config(tmp_path), paths))

    assert web.last_outcome == "not copied: [Errno 28] No space left on device"
    assert web.last_copy_at == "2026-12-05T02:59:00+00:00"  # the copy itself is as it was
    assert section.rows[0][1][-1].endswith(": not copied: [Errno 28] No space left on device")
