"""Tests for `borg-server status`: sessions read from the audit log, the last backup, sizes and the table."""

import json

import pytest

from borg_server.config import load
from borg_server.keys import parse_public_key
from borg_server.paths import Paths
from borg_server.status import ClientStatus, collect, human_size, read_sessions, render, show_client

WEB_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID26CUVU/8m/Dk6cyWmnuBbX1SpdBW8FFXYWWvdh1+ST web@example"


@pytest.fixture
def paths(tmp_path):
    paths = Paths(repositories=tmp_path / "srv", state=tmp_path / "state", runtime=tmp_path / "run")
    paths.audit_log.parent.mkdir(parents=True)
    return paths


def session(client: str, role: str, exit_code: int, finished_at: str) -> str:
    """Return one audit log line as serve.append_record writes it."""
    record = {"event": "borg-session", "client": client, "role": role, "exit_code": exit_code}
    return json.dumps(record | {"finished_at": finished_at}, sort_keys=True) + "\n"


def config(**environ: str):
    return load({"BORG_CLIENTS": "web db"} | environ, "backup")


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (None, "-"),
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (1_234_567, "1.2 MB"),
        (50 * 1000**3, "50.0 GB"),
        (3 * 1000**4, "3.0 TB"),
        (2 * 1000**5, "2000.0 TB"),
    ],
)
def test_human_size_uses_decimal_units_up_to_terabytes(size, text):
    assert human_size(size) == text


def test_read_sessions_of_a_missing_audit_log_is_empty(paths):
    assert read_sessions(paths.audit_log) == []


def test_read_sessions_skips_lines_that_are_not_json(paths):
    paths.audit_log.write_bytes(
        b'{"client": "web", "exit_code": 0}\n'
        b"\n"
        b"not json at all\n"
        b'{"client": "db", "exit_co\n'
        b"\xff\xfe garbage\n"
        b'{"client": "db", "exit_code": 2}\n'
    )

    assert read_sessions(paths.audit_log) == [{"client": "web", "exit_code": 0}, {"client": "db", "exit_code": 2}]


def test_collect_takes_the_last_successful_append_or_full_session_as_last_backup(paths):
    paths.audit_log.write_text(
        session("web", "append", 0, "2024-05-01T03:00:00+00:00")
        + session("web", "full", 0, "2024-05-02T03:00:00+00:00")
        + session("web", "append", 2, "2024-05-03T03:00:00+00:00")
        + session("web", "admin", 0, "2024-05-04T03:00:00+00:00")
        + session("db", "append", 0, "2024-05-05T03:00:00+00:00")
    )

    web = next(status for status in collect(config(), paths) if status.client == "web")

    assert web.last_backup == "2024-05-02T03:00:00+00:00"
    assert web.sessions == 4


def test_collect_reports_every_client_in_name_order_with_its_facts(paths):
    paths.audit_log.write_text(
        session("web", "append", 0, "2024-05-01T03:00:00+00:00")
        + session("db", "admin", 0, "2024-05-02T03:00:00+00:00")
        + session("db", "append", 1, "2024-05-03T03:00:00+00:00")
        + session("gone", "append", 0, "2024-05-04T03:00:00+00:00")
    )
    paths.client_repository("web").mkdir(parents=True)
    (paths.client_repository("web") / "data").write_bytes(b"x" * 1500)
    (paths.client_directory("web") / "nonce").write_bytes(b"y" * 16)

    statuses = collect(config(BORG_CLIENT_WEB_QUOTA="2G", BORG_CLIENT_DB_APPEND_ONLY="no"), paths)

    assert statuses == [
        ClientStatus("db", None, 0, None, False, 2),
        ClientStatus("web", "2024-05-01T03:00:00+00:00", 1516, 2_000_000_000, True, 1),
    ]


def test_collect_without_an_audit_log_reports_no_backup_and_no_session(paths):
    assert collect(config(), paths) == [
        ClientStatus("db", None, 0, None, True, 0),
        ClientStatus("web", None, 0, None, True, 0),
    ]


def test_collect_ignores_audit_lines_that_are_json_but_not_objects(paths):
    paths.audit_log.write_text("42\nnull\n" + session("web", "append", 0, "2024-05-01T03:00:00+00:00"))

    web = next(status for status in collect(config(), paths) if status.client == "web")

    assert (web.last_backup, web.sessions) == ("2024-05-01T03:00:00+00:00", 1)


STATUSES = [
    ClientStatus("web", "2024-05-06T03:01:23+00:00", 1_234_567, 50_000_000_000, True, 3),
    ClientStatus("database", None, 0, None, False, 0),
]


def test_render_prints_an_aligned_table_with_never_and_dashes_for_missing_facts():
    assert render(STATUSES) == (
        "CLIENT    LAST BACKUP                SIZE    QUOTA    APPEND-ONLY  SESSIONS\n"
        "web       2024-05-06T03:01:23+00:00  1.2 MB  50.0 GB  yes          3\n"
        "database  never                      0 B     -        no           0"
    )


def test_render_as_json_lists_every_field_of_every_client():
    assert json.loads(render(STATUSES, as_json=True)) == [
        {
            "client": "web",
            "last_backup": "2024-05-06T03:01:23+00:00",
            "repository_bytes": 1234567,
            "quota_bytes": 50000000000,
            "append_only": True,
            "sessions": 3,
        },
        {
            "client": "database",
            "last_backup": None,
            "repository_bytes": 0,
            "quota_bytes": None,
            "append_only": False,
            "sessions": 0,
        },
    ]


def test_show_client_of_an_unknown_client_is_none(paths):
    assert show_client(config(), paths, "mail") is None


def test_show_client_prints_a_configured_key_and_where_the_client_connects(paths):
    text = show_client(config(BORG_CLIENT_WEB_KEY=WEB_KEY, BORG_SERVER_NAME="backup.example:2222"), paths, "web")

    assert text.splitlines() == [
        "client:         web",
        f"public key:     {WEB_KEY}",
        f"fingerprint:    {parse_public_key(WEB_KEY).fingerprint}  (configured)",
        "admin key:      -",
        "repository URL: ssh://borg@backup.example:2222/./main",
        "known_hosts:    (no host key yet: start the server once)",
        f"directory:      {paths.client_directory('web')}",
        "append-only:    yes",
        "quota:          -",
    ]


def test_show_client_says_a_generated_key_does_not_exist_yet(paths):
    lines = show_client(config(), paths, "db").splitlines()

    assert lines[1:3] == [
        "public key:     (not generated yet: start the server once)",
        f"fingerprint:    -  (generated, exported to {paths.client_export('db')})",
    ]
