"""Tests for `borg-server status` and `show-client`: the table, the JSON, sizes and ages, one client's pairing."""

import json

import pytest

from borg_server.config.reader import load
from borg_server.status.text import human_age, render, show_client
from borg_server.system import accounts
from borg_server.system.ssh_keys import parse_public_key
from tests.unit.borg_server.sample_status import client_status

WEB_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID26CUVU/8m/Dk6cyWmnuBbX1SpdBW8FFXYWWvdh1+ST web@example"


status = client_status


def config(**environ: str):
    return load({"BORG_CLIENTS": "web db"} | environ, "backup")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0, "0m 0s"), (59, "0m 59s"), (3599, "59m 59s"), (3600, "1h 0m"), (86399, "23h 59m"),
     (86400, "1d 0h"), (200_000, "2d 7h")],
)  # fmt: skip
def test_human_age_shows_the_two_largest_units(seconds, text):
    assert human_age(seconds) == text


STATUSES = [
    status(
        "web",
        last_backup="2024-05-06T03:01:23+00:00",
        age_s=93_784,
        repository_bytes=1_234_567,
        quota_bytes=50_000_000_000,
        quota_used=0.0247,
        unacknowledged_deletes=3,
        tampered_segments=0,
        last_check_at="2024-05-05T00:00:00+00:00",
        last_check="ok",
        alerts=["deletes", "stale"],
        auto_compact="admin",
        pending_admin_deletes=3,
        next_compaction_at="2024-05-07T03:01:23+00:00",
        last_compaction_at="2024-05-01T00:00:00+00:00",
        last_compaction_freed_bytes=2_500_000,
    ),
    status("database", append_only=False, unacknowledged_deletes=None, tampered_segments=None),
]


def test_render_prints_an_aligned_table_with_never_and_dashes_for_missing_facts():
    assert render(STATUSES).splitlines() == [
        "CLIENT    LAST BACKUP                AGE    SIZE    QUOTA         APPEND-ONLY  DELETES  CHECK"
        "                         ALERTS         AUTO-COMPACT  ADMIN DELETES  NEXT COMPACTION            LAST FREED",
        "web       2024-05-06T03:01:23+00:00  1d 2h  1.2 MB  50.0 GB (2%)  yes          3        ok"
        " 2024-05-05T00:00:00+00:00  deletes,stale  admin         3              2024-05-07T03:01:23+00:00  2.5 MB",
        "database  never                      -      0 B     -             no           -        never"
        "                         -              -             0              -                          -",
    ]


def test_a_client_whose_automatic_compaction_is_held_back_shows_blocked_and_one_with_it_off_a_dash():
    held = status("web", auto_compact="admin", compaction_blocked="committed files changed")
    off = status("db", auto_compact="off", pending_admin_deletes=2, next_compaction_at="2024-05-07T03:01:23+00:00")

    rows = [line.split("  ") for line in render([held, off]).splitlines()[1:]]

    assert [[cell.strip() for cell in row if cell.strip()][-4:] for row in rows] == [
        ["admin", "0", "blocked", "-"],
        ["off", "2", "-", "-"],
    ]


def test_render_as_json_lists_every_field_of_every_client():
    assert json.loads(render(STATUSES, as_json=True)) == [
        {
            "client": "web",
            "last_backup": "2024-05-06T03:01:23+00:00",
            "age_s": 93784,
            "repository_bytes": 1234567,
            "quota_bytes": 50000000000,
            "quota_used": 0.0247,
            "append_only": True,
            "unacknowledged_deletes": 3,
            "tampered_segments": 0,
            "last_check_at": "2024-05-05T00:00:00+00:00",
            "last_check": "ok",
            "alerts": ["deletes", "stale"],
            "auto_compact": "admin",
            "pending_admin_deletes": 3,
            "next_compaction_at": "2024-05-07T03:01:23+00:00",
            "compaction_blocked": None,
            "last_compaction_at": "2024-05-01T00:00:00+00:00",
            "last_compaction_freed_bytes": 2500000,
            "max_age_s": None,
            "alert_messages": {},
        },
        {
            "client": "database",
            "last_backup": None,
            "age_s": None,
            "repository_bytes": 0,
            "quota_bytes": None,
            "quota_used": None,
            "append_only": False,
            "unacknowledged_deletes": None,
            "tampered_segments": None,
            "last_check_at": None,
            "last_check": None,
            "alerts": [],
            "auto_compact": None,
            "pending_admin_deletes": 0,
            "next_compaction_at": None,
            "compaction_blocked": None,
            "last_compaction_at": None,
            "last_compaction_freed_bytes": None,
            "max_age_s": None,
            "alert_messages": {},
        },
    ]


def test_show_client_of_an_unknown_client_is_none(paths):
    assert show_client(config(), paths, "mail") is None


def test_show_client_prints_a_configured_key_and_where_the_client_connects(paths):
    accounts.save(paths.accounts, {"web": accounts.Account("web", 12345)})
    text = show_client(config(BORG_CLIENT_WEB_KEY=WEB_KEY, BORG_SERVER_NAME="backup.example:2222"), paths, "web")

    assert text.splitlines() == [
        "client:         web",
        f"public key:     {WEB_KEY}",
        f"fingerprint:    {parse_public_key(WEB_KEY).fingerprint}  (configured)",
        "admin key:      -",
        "repository URL: ssh://borg@backup.example:2222/./main",
        "known_hosts:    (no host key yet: start the server once)",
        f"directory:      {paths.client_directory('web')}",
        "account:        borg-web (uid 12345, gid 12345)",
        "append-only:    yes",
        "quota:          -",
    ]


def test_show_client_says_a_generated_key_does_not_exist_yet(paths):
    lines = show_client(config(), paths, "db").splitlines()

    assert lines[1:3] == [
        "public key:     (not generated yet: start the server once)",
        f"fingerprint:    -  (generated, exported to {paths.client_export('db')})",
    ]
