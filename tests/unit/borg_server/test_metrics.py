"""Tests for the Prometheus metrics: the exact text exposition of the clients' figures and the monitor's own.

The HTTP server (metrics.serve) is left to the integration tests: unit tests use no network.
"""

import pytest

from borg_common import outbox
from borg_server.config.reader import load
from borg_server.status.facts import ClientStatus
from borg_server.status.metrics import Exposition, publish, render
from borg_server.status.prometheus import number

WEB = ClientStatus(
    client="web",
    last_backup="2024-05-06T03:00:00+00:00",  # 1714964400
    age_s=3600,
    repository_bytes=1_234_567,
    quota_bytes=20_000_000,
    quota_used=0.0617,
    append_only=True,
    unacknowledged_deletes=2,
    tampered_segments=0,
    last_check_at="2024-05-05T00:00:00+00:00",  # 1714867200
    last_check="ok",
    alerts=["deletes"],
    auto_compact="admin",
    pending_admin_deletes=2,
    next_compaction_at="2024-05-07T03:00:00+00:00",  # 1715050800
    last_compaction_at="2024-05-05T00:00:00+00:00",  # 1714867200
    last_compaction_freed_bytes=5_000_000,
)
NOTHING_KNOWN = ClientStatus("db", None, None, 0, None, None, False, None, None, None, None, [])

WEB_TEXT = """\
# HELP borg_appliance_client_last_backup_timestamp_seconds End of the client's last backup session (Unix time).
# TYPE borg_appliance_client_last_backup_timestamp_seconds gauge
borg_appliance_client_last_backup_timestamp_seconds{client="web"} 1714964400
# HELP borg_appliance_client_backup_age_seconds Seconds since the client's last backup session ended.
# TYPE borg_appliance_client_backup_age_seconds gauge
borg_appliance_client_backup_age_seconds{client="web"} 3600
# HELP borg_appliance_client_repository_bytes Bytes on disk in the client's directory.
# TYPE borg_appliance_client_repository_bytes gauge
borg_appliance_client_repository_bytes{client="web"} 1234567
# HELP borg_appliance_client_quota_bytes The client's storage quota in bytes.
# TYPE borg_appliance_client_quota_bytes gauge
borg_appliance_client_quota_bytes{client="web"} 20000000
# HELP borg_appliance_client_quota_used_ratio Repository bytes divided by the quota.
# TYPE borg_appliance_client_quota_used_ratio gauge
borg_appliance_client_quota_used_ratio{client="web"} 0.0617
# HELP borg_appliance_client_append_only 1 if the client's key can only append.
# TYPE borg_appliance_client_append_only gauge
borg_appliance_client_append_only{client="web"} 1
# HELP borg_appliance_client_unacknowledged_deletes Deletes by the client not yet acknowledged with borg-server audit.
# TYPE borg_appliance_client_unacknowledged_deletes gauge
borg_appliance_client_unacknowledged_deletes{client="web"} 2
# HELP borg_appliance_client_tampered_segments Committed segments changed, truncated, removed or unreadable.
# TYPE borg_appliance_client_tampered_segments gauge
borg_appliance_client_tampered_segments{client="web"} 0
# HELP borg_appliance_client_last_check_timestamp_seconds When borg check --repository-only last ran (Unix time).
# TYPE borg_appliance_client_last_check_timestamp_seconds gauge
borg_appliance_client_last_check_timestamp_seconds{client="web"} 1714867200
# HELP borg_appliance_client_check_ok 1 if the last repository check found no problem, 0 if it failed.
# TYPE borg_appliance_client_check_ok gauge
borg_appliance_client_check_ok{client="web"} 1
# HELP borg_appliance_client_auto_compact 1 if the client's admin deletes compact by themselves (AUTO_COMPACT=admin).
# TYPE borg_appliance_client_auto_compact gauge
borg_appliance_client_auto_compact{client="web"} 1
# HELP borg_appliance_client_pending_admin_deletes Unacknowledged deletes written by the client's admin sessions.
# TYPE borg_appliance_client_pending_admin_deletes gauge
borg_appliance_client_pending_admin_deletes{client="web"} 2
# HELP borg_appliance_client_next_compaction_timestamp_seconds Earliest time the next automatic compaction may run.
# TYPE borg_appliance_client_next_compaction_timestamp_seconds gauge
borg_appliance_client_next_compaction_timestamp_seconds{client="web"} 1715050800
# HELP borg_appliance_client_compaction_blocked 1 if something holds the automatic compaction back.
# TYPE borg_appliance_client_compaction_blocked gauge
borg_appliance_client_compaction_blocked{client="web"} 0
# HELP borg_appliance_client_last_compaction_timestamp_seconds When the last compaction ended (Unix time).
# TYPE borg_appliance_client_last_compaction_timestamp_seconds gauge
borg_appliance_client_last_compaction_timestamp_seconds{client="web"} 1714867200
# HELP borg_appliance_client_last_compaction_freed_bytes Bytes the last compaction freed.
# TYPE borg_appliance_client_last_compaction_freed_bytes gauge
borg_appliance_client_last_compaction_freed_bytes{client="web"} 5000000
# HELP borg_appliance_client_alert 1 while the alert is raised for the client.
# TYPE borg_appliance_client_alert gauge
borg_appliance_client_alert{client="web",alert="stale"} 0
borg_appliance_client_alert{client="web",alert="deletes"} 1
borg_appliance_client_alert{client="web",alert="client_deletes"} 0
borg_appliance_client_alert{client="web",alert="compaction_held"} 0
borg_appliance_client_alert{client="web",alert="tampering"} 0
borg_appliance_client_alert{client="web",alert="manifest_shrank"} 0
borg_appliance_client_alert{client="web",alert="check_failed"} 0
borg_appliance_client_alert{client="web",alert="quota"} 0
borg_appliance_client_alert{client="web",alert="sessions_refused"} 0
# HELP borg_appliance_monitor_last_scan_timestamp_seconds When the monitor last finished a scan.
# TYPE borg_appliance_monitor_last_scan_timestamp_seconds gauge
borg_appliance_monitor_last_scan_timestamp_seconds 1714964400.5
# HELP borg_appliance_monitor_scan_duration_seconds How long the last scan of every client took.
# TYPE borg_appliance_monitor_scan_duration_seconds gauge
borg_appliance_monitor_scan_duration_seconds 1.25
# HELP borg_appliance_monitor_outbox_reports Alert reports waiting in the outbox for delivery.
# TYPE borg_appliance_monitor_outbox_reports gauge
borg_appliance_monitor_outbox_reports 3
"""


def samples(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_a_client_figures_and_the_monitor_own_are_rendered_as_prometheus_gauges():
    assert render([WEB], 1714964400.5, 1.25, 3) == WEB_TEXT


def test_a_client_with_nothing_known_has_only_the_samples_that_have_a_value():
    assert samples(render([NOTHING_KNOWN], None, None, 0)) == [
        'borg_appliance_client_repository_bytes{client="db"} 0',
        'borg_appliance_client_append_only{client="db"} 0',
        'borg_appliance_client_alert{client="db",alert="stale"} 0',
        'borg_appliance_client_alert{client="db",alert="deletes"} 0',
        'borg_appliance_client_alert{client="db",alert="client_deletes"} 0',
        'borg_appliance_client_alert{client="db",alert="compaction_held"} 0',
        'borg_appliance_client_alert{client="db",alert="tampering"} 0',
        'borg_appliance_client_alert{client="db",alert="manifest_shrank"} 0',
        'borg_appliance_client_alert{client="db",alert="check_failed"} 0',
        'borg_appliance_client_alert{client="db",alert="quota"} 0',
        'borg_appliance_client_alert{client="db",alert="sessions_refused"} 0',
        "borg_appliance_monitor_outbox_reports 0",
    ]


def test_every_family_keeps_its_help_and_type_even_without_samples():
    text = render([], None, None, 0)

    assert [line for line in text.splitlines() if line.startswith("# TYPE")] == [
        f"# TYPE borg_appliance_{name} gauge"
        for name in (
            "client_last_backup_timestamp_seconds",
            "client_backup_age_seconds",
            "client_repository_bytes",
            "client_quota_bytes",
            "client_quota_used_ratio",
            "client_append_only",
            "client_unacknowledged_deletes",
            "client_tampered_segments",
            "client_last_check_timestamp_seconds",
            "client_check_ok",
            "client_auto_compact",
            "client_pending_admin_deletes",
            "client_next_compaction_timestamp_seconds",
            "client_compaction_blocked",
            "client_last_compaction_timestamp_seconds",
            "client_last_compaction_freed_bytes",
            "client_alert",
            "monitor_outbox_reports",
        )
    ]
    assert samples(text) == ["borg_appliance_monitor_outbox_reports 0"]


def test_a_failed_check_is_check_ok_zero():
    failed = ClientStatus("web", None, None, 0, None, None, True, 0, 0, "2024-05-05T00:00:00+00:00", "failed", [])

    assert 'borg_appliance_client_check_ok{client="web"} 0' in samples(render([failed], None, None, 0))


def test_the_samples_of_several_clients_are_grouped_by_family_in_the_order_given():
    lines = samples(render([WEB, NOTHING_KNOWN], None, None, 0))

    assert [line for line in lines if line.startswith("borg_appliance_client_append_only")] == [
        'borg_appliance_client_append_only{client="web"} 1',
        'borg_appliance_client_append_only{client="db"} 0',
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (3, "3"), (3.0, "3"), (True, "1"), (1714964400.0, "1714964400"), (0.0617, "0.0617"), (1.5, "1.5"),
     (-2, "-2"), (50_000_000_000, "50000000000")],
)  # fmt: skip
def test_whole_numbers_are_written_without_a_decimal_point(value, text):
    assert number(value) == text


def test_the_exposition_hands_out_the_last_text_it_was_given_and_is_empty_before():
    exposition = Exposition()
    assert exposition.read() == ""

    exposition.update("first\n")
    exposition.update(WEB_TEXT)

    assert exposition.read() == WEB_TEXT


# publish


def test_publish_renders_every_client_and_the_outbox_into_the_exposition(paths):
    outbox.put(paths.monitor_outbox, {"id": "a"}, ["https://hooks.example.org/borg"])
    exposition = Exposition()

    publish(exposition, paths, load({"BORG_CLIENTS": "web db", "METRICS_PORT": "9100"}, "backup"), 1.5)

    lines = exposition.read().splitlines()
    assert 'borg_appliance_client_append_only{client="db"} 1' in lines
    assert 'borg_appliance_client_append_only{client="web"} 1' in lines
    assert "borg_appliance_monitor_scan_duration_seconds 1.5" in lines
    assert "borg_appliance_monitor_outbox_reports 1" in lines


def test_publish_without_a_metrics_port_leaves_the_exposition_as_it_was(paths):
    exposition = Exposition()
    exposition.update("before\n")

    publish(exposition, paths, load({"BORG_CLIENTS": "web"}, "backup"), 1.5)

    assert exposition.read() == "before\n"
