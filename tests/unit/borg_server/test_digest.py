"""The server's digest (status/digest.py): what a person reads for a healthy, a stale and an alerting client, no
client, many clients, and a replica's copies."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from borg_server.records import state_file
from borg_server.records.client_state import ClientState, RaisedAlert
from borg_server.records.replica_state import ReplicaState
from borg_server.replica import status as replica_status
from borg_server.status.digest import build
from borg_server.status.facts import ServerStatus
from tests.unit.borg_server.sample_status import client_status

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
T = NOW.timestamp()
DAY = 86400
WEEKLY = "0 8 * * 1"


status = functools.partial(client_status, auto_compact="off", max_age_s=26 * 3600)


HEALTHY = status("web", last_backup="2026-12-07T03:01:00+00:00", repository_bytes=1_234_000_000,
                 quota_bytes=5_000_000_000, quota_used=0.2468, last_check="ok",
                 last_check_at="2026-12-06T04:00:00+00:00")  # fmt: skip
STALE = status("db", last_backup="2026-12-03T03:00:00+00:00", repository_bytes=456_000_000, alerts=["stale"],
               alert_messages={"stale": "client db: no backup for 4d 5h (MAX_AGE 1d 2h)"}, last_check="ok",
               last_check_at="2026-12-06T04:00:00+00:00")  # fmt: skip
ALERTING = status("mail", last_backup="2026-12-07T02:00:00+00:00", repository_bytes=3_000_000,
                  alerts=["client_deletes", "quota"], auto_compact="admin",
                  alert_messages={"client_deletes": "client mail: 2 object(s) deleted in segments 4..5 by the "
                                  "client's own key; see borg-server audit mail",
                                  "quota": "client mail: repository uses 95% of its quota"},
                  compaction_blocked="deletes by the client's own key wait for borg-server audit")  # fmt: skip
SERVER = ServerStatus("/srv/borg", 100_000_000_000, 60_000_000_000, 0.4, 1_000_000_000, [])
HISTORY = {"web": [(T - 30 * DAY, 1_000_000_000), (T - 3600, 1_234_000_000)]}
CLOSING = (
    "Server disk /srv/borg: 60.0 GB free of 100.0 GB (40% used).\n"
    "Figures of 2026-12-07 08:00 UTC; borg-server status shows them now.\n"
    "The next digest comes 2026-12-14 08:00 UTC; if it does not, notifications from backup-host are not getting "
    "through."
)
WEB = (
    "web: last backup 4h 59m ago, limit 1d 2h\n"
    "Size 1.2 GB (+234.0 MB since 2026-11-07), 25% of its 5.0 GB quota\n"
    "Last check: ok, 2026-12-06 04:00 UTC. Compaction: by hand only"
)
DB = (
    "db: STALE, last backup 4d 5h ago, over the 1d 2h limit\n"
    "Size 456.0 MB (no trend yet), no quota\n"
    "Last check: ok, 2026-12-06 04:00 UTC. Compaction: by hand only"
)
MAIL = (
    "mail: CLIENT_DELETES, QUOTA, last backup 6h ago, limit 1d 2h\n"
    "Size 3.0 MB (no trend yet), no quota\n"
    "Alert client_deletes: 2 object(s) deleted in segments 4..5 by the client's own key; see borg-server audit mail\n"
    "Alert quota: repository uses 95% of its quota\n"
    "Last check: never. Compaction: held: deletes by the client's own key wait for borg-server audit"
)


def test_all_healthy_says_so_in_the_title():
    made = build("backup-host", [HEALTHY], SERVER, HISTORY, NOW, WEEKLY)

    assert made.title == "weekly digest: 1 client, all backed up, no alerts on backup-host"
    assert made.body() == f"{WEB}\n\n{CLOSING}"


def test_a_stale_and_an_alerting_client_come_first_worst_first_and_are_counted_in_the_title():
    made = build("backup-host", [HEALTHY, STALE, ALERTING], SERVER, HISTORY, NOW, WEEKLY)

    assert made.title == "weekly digest: 3 clients, 1 stale, 2 alerts open on backup-host"
    assert made.body() == f"{MAIL}\n\n{DB}\n\n{WEB}\n\n{CLOSING}"


def test_a_client_that_never_backed_up_is_stale_too():
    new = status("new", max_age_s=DAY)

    made = build("backup-host", [new], SERVER, {}, NOW, WEEKLY)

    assert made.title == "weekly digest: 1 client, 1 stale on backup-host"
    assert made.body().split("\n\n")[0] == (
        "new: NO BACKUP YET\nSize 0 B (no trend yet), no quota\nLast check: never. Compaction: by hand only"
    )


def test_a_server_without_clients_and_an_alert_of_its_own():
    full = ServerStatus("/srv/borg", 100, 5, 0.95, 1, ["disk"], {"disk": "server: the disk is 95% full"})

    made = build("backup-host", [], full, {}, NOW, None)

    assert made.title == "digest: 0 clients, 1 alert open on backup-host"
    assert made.body() == (
        "Server alert disk: the disk is 95% full\n\n"
        "Server disk /srv/borg: 5 B free of 100 B (95% used).\n"
        "Figures of 2026-12-07 08:00 UTC; borg-server status shows them now.\n"
        "DIGEST_CRON is off: no digest comes by itself."
    )
    assert build("backup-host", [], SERVER, {}, NOW, WEEKLY).title == "weekly digest: no clients on backup-host"


def test_many_clients_summarise_the_healthy_ones_in_one_line_and_keep_every_problem():
    healthy = [status(f"app{n:03}", last_backup="2026-12-07T03:00:00+00:00", last_check="ok",
                      last_check_at="2026-12-06T04:00:00+00:00") for n in range(60)]  # fmt: skip

    made = build("backup-host", [*healthy, STALE], SERVER, {}, NOW, WEEKLY)

    assert made.title == "weekly digest: 61 clients, 1 stale on backup-host"
    names = ", ".join(f"app{n:03}" for n in range(60))
    assert made.body() == f"{DB}\n\n60 clients backed up within their limits, no alerts: {names}\n\n{CLOSING}"


def test_a_replicas_copies_are_its_clients():
    copies = (["web (copy): REPLICA_LAG, last complete copy 3d ago"], ["db (copy): last complete copy 1h ago"])

    made = build("replica-host", [], SERVER, {}, NOW, WEEKLY, copies)

    assert made.title == "weekly digest: 2 clients, 1 alert open on replica-host"
    assert made.body().split("\n\n")[:2] == [copies[0][0], copies[1][0]]


def test_a_replicas_blocks_say_each_copys_lag_and_alerts_worst_first(paths):
    lag = (
        "client db: the replica's copy is 3d behind (REPLICA_MAX_LAG 1d); last complete copy 2026-12-04T08:00:00+00:00"
    )
    state_file.save(
        paths.monitor_state("web"),
        ClientState(
            "2026-11-01T00:00:00+00:00", replica=ReplicaState(last_copy_at="2026-12-07T07:00:00+00:00", bytes=2_000_000)
        ),
    )
    state_file.save(paths.monitor_state("db"), ClientState(
        "2026-11-01T00:00:00+00:00", replica=ReplicaState(last_copy_at="2026-12-04T08:00:00+00:00", lag_segments=4,
                                                          bytes=5_000_000, mismatch={7: "changed"}),
        alerts={"replica_lag": RaisedAlert("2026-12-05T08:00:00+00:00", lag)}))  # fmt: skip

    problems, healthy = replica_status.digest_blocks(paths, DAY, NOW)

    assert problems == [
        "db (copy): REPLICA_LAG, last complete copy 3d ago (REPLICA_MAX_LAG 1d), 4 segment(s) behind\n"
        "5.0 MB copied; 0 segment(s) held, 1 differ on the primary\n"
        "Alert replica_lag: the replica's copy is 3d behind (REPLICA_MAX_LAG 1d); last complete copy "
        "2026-12-04T08:00:00+00:00"
    ]
    assert healthy == [
        "web (copy): last complete copy 1h ago (REPLICA_MAX_LAG 1d), 0 segment(s) behind\n"
        "2.0 MB copied; 0 segment(s) held, 0 differ on the primary"
    ]
