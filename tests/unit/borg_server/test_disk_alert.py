"""Tests for the server's disk alert, its settings, and the server's figures in status and metrics."""

import json

import pytest

from borg_common.settings import ConfigError
from borg_server.config import reader
from borg_server.monitor import disk_alert
from borg_server.repository.disk_space import DiskUsage
from borg_server.status import metrics
from borg_server.status import text as status
from borg_server.status.facts import ServerStatus
from tests.unit.borg_server.borg_files import commit, put, write_repository

KEY = b"k" * 32


def usage(free: int, total: int = 1_000_000_000) -> DiskUsage:
    return DiskUsage("/srv/borg", total, free, round(1 - free / total, 4), 20_000_000)


def test_the_disk_alert_holds_at_the_used_share_and_names_the_setting():
    active = disk_alert.conditions(usage(100_000_000), 0.9, {})

    assert active["disk"][0] == "server: /srv/borg is 90% full (100.0 MB free of 1.0 GB; DISK_ALERT_USED 90%)"
    assert disk_alert.conditions(usage(100_200_000), 0.9, {}) == {}


def test_the_disk_alert_holds_when_less_is_free_than_the_largest_last_backup_added():
    message, details = disk_alert.conditions(usage(300_000_000), 0.9, {"web": 400_000_000, "db": 5})["disk"]

    assert message == (
        "server: /srv/borg has 300.0 MB free of 1.0 GB, less than the last backup of client web added "
        "(400.0 MB); its next backup may not fit"
    )
    assert details["largest_client"] == "web" and details["largest_last_backup_bytes"] == 400_000_000
    assert disk_alert.conditions(usage(300_000_000), 0.9, {"web": 299_999_999}) == {}


def test_the_disk_alert_is_raised_once_and_cleared_once_through_the_server_state(paths):
    path = paths.monitor_server_state
    raised = disk_alert.watch(path, usage(50_000_000), 0.9, {"web": 10}, "backup")
    again = disk_alert.watch(path, usage(40_000_000), 0.9, {"web": None}, "backup")
    cleared = disk_alert.watch(path, usage(500_000_000), 0.9, {}, "backup")

    assert [(d["alert"], d["state"], d["client"]) for d in raised] == [("disk", "raised", None)]
    assert again == []
    assert [(d["state"], d["message"]) for d in cleared] == [("cleared", "server: cleared: " + disk_alert.LABEL)]
    assert disk_alert.load(path).added == {"web": 10}  # a client with no new backup keeps its last size


def test_a_damaged_server_state_starts_afresh(paths):
    paths.monitor.mkdir(parents=True)
    paths.monitor_server_state.write_text("[1, 2")

    assert disk_alert.load(paths.monitor_server_state) == disk_alert.ServerState()


def test_last_added_measures_the_segments_the_last_writing_session_committed(paths):
    repository = paths.client_repository("web")
    write_repository(repository, [[put(KEY), commit()], [put(KEY, b"x" * 100)], [commit()]])
    records = [
        {"client": "web", "role": "append", "exit_code": 0, "finished_at": "2024-05-06T01:00:00+00:00",
         "committed_before": None, "committed_after": 0},
        {"client": "web", "role": "append", "exit_code": 0, "finished_at": "2024-05-06T02:00:00+00:00",
         "committed_before": 0, "committed_after": 2},
        {"client": "web", "role": "append", "exit_code": 2, "finished_at": "2024-05-06T03:00:00+00:00",
         "committed_before": 2, "committed_after": 2},
    ]  # fmt: skip

    assert disk_alert.last_added(records, "web", repository) == (8 + 141) + (8 + 9)
    assert disk_alert.last_added(records, "db", repository) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("95", None),
        ("80%", None),
        ("100%", "DISK_ALERT_USED: 100% is out of range 10%..99%"),
        ("lots", "DISK_ALERT_USED: 'lots' is not a percentage (e.g. 90%)"),
    ],
)
def test_disk_alert_used_is_a_bounded_percentage(value, problem):
    environ = {"BORG_CLIENTS": "web", "DISK_ALERT_USED": value}
    if problem is None:
        assert reader.load(environ, "backup").disk_alert_used == int(value.rstrip("%")) / 100
        return
    with pytest.raises(ConfigError) as error:
        reader.load(environ, "backup")
    assert error.value.problems == [problem]


def test_disk_reserve_is_a_size_and_defaults_to_the_automatic_one():
    assert reader.load({"BORG_CLIENTS": "web"}, "backup").disk_reserve is None
    assert reader.load({"BORG_CLIENTS": "web", "DISK_RESERVE": "2G"}, "backup").disk_reserve == 2 * 1000**3
    with pytest.raises(ConfigError):
        reader.load({"BORG_CLIENTS": "web", "DISK_RESERVE": "-1"}, "backup")


SERVER = ServerStatus("/srv/borg", 120_000_000, 30_000_000, 0.75, 2_400_000, ["disk"], notifications_waiting=2)


def test_status_prints_the_server_line_after_the_table_and_json_keeps_the_client_list_unless_asked():
    assert status.render([], server=SERVER).splitlines()[-1] == (
        "SERVER DISK /srv/borg: 30.0 MB free of 120.0 MB (75% used), 2.4 MB kept for clean-up; alerts: disk; "
        "notifications waiting: 2"
    )
    assert json.loads(status.render([], as_json=True)) == []
    assert json.loads(status.render([], as_json=True, server=SERVER)) == {
        "server": {"path": "/srv/borg", "total_bytes": 120_000_000, "free_bytes": 30_000_000, "used_ratio": 0.75,
                   "reserve_bytes": 2_400_000, "alerts": ["disk"],
                   "alert_messages": {}, "notifications_waiting": 2},
        "clients": [],
    }  # fmt: skip


def test_metrics_export_the_servers_disk_and_its_alert():
    text = metrics.render([], None, None, 0, SERVER)

    lines = text.splitlines()
    assert "borg_appliance_server_disk_free_bytes 30000000" in lines
    assert "borg_appliance_server_disk_total_bytes 120000000" in lines
    assert "borg_appliance_server_disk_used_ratio 0.75" in lines
    assert 'borg_appliance_server_alert{alert="disk"} 1' in lines
    assert lines[-3:] == [
        "# HELP borg_appliance_monitor_outbox_notifications Notifications waiting in the outbox for delivery to "
        "NOTIFY_URLS.",
        "# TYPE borg_appliance_monitor_outbox_notifications gauge",
        "borg_appliance_monitor_outbox_notifications 2",
    ]
