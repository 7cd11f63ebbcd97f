"""The shipped Prometheus rules and Grafana dashboard (deploy/monitoring/) query only metrics that a real
primary and a real replica serve on METRICS_PORT (tests/unit/deploy/test_monitoring.py checks the same against
the exporters' code, and runs promtool)."""

from __future__ import annotations

from tests.harness import promql
from tests.harness.containers import wait_until
from tests.harness.stack import client_command, fill_volume, make_client, scrape_metrics
from tests.integration.test_replica import replicate, start_pair

METRICS = {"METRICS_PORT": "9100"}


def published_copy(sandbox, replica) -> str | None:
    """Return the replica's metrics once they have app's copy (the replicator publishes between rounds), else None."""
    text = scrape_metrics(sandbox, replica, 9100)
    return text if '\nborg_appliance_replica_lag_seconds{client="app"} ' in text else None


def test_every_metric_the_rules_and_the_dashboard_query_is_served_by_a_primary_or_its_replica(sandbox, tmp_path):
    primary, replica, _export, _receiver = start_pair(sandbox, METRICS, {**METRICS, "BORG_CLIENT_APP_QUOTA": "1G"})
    app = make_client(sandbox, primary, "app", tmp_path)
    fill_volume(sandbox, app.data, "head -c 100000 /dev/urandom > /data/one.bin")
    assert client_command(sandbox, app, ["run"]).returncode == 0
    primary.exec("borg-server", "scan")  # renders the metrics after the backup
    assert "copied" in replicate(replica)

    served = scrape_metrics(sandbox, primary, 9100)
    copies = wait_until(lambda: published_copy(sandbox, replica), 120, "the replica to publish the copy's figures")
    used = promql.used_names()
    replica_names = {name for name in used if name.startswith("borg_appliance_replica_")}
    assert used - replica_names - promql.exported_names(served) == set(), served
    assert replica_names - promql.exported_names(copies) == set(), copies
    # Not only declared: the figures the dashboard's client panels and the rules' texts read have a sample for app.
    for name in ("backup_age_seconds", "repository_bytes", "quota_used_ratio", "unacknowledged_deletes"):
        assert f'\nborg_appliance_client_{name}{{client="app"}} ' in served, name
    assert '\nborg_appliance_client_alert{client="app",alert="stale"} 0\n' in served
    assert "\nborg_appliance_monitor_scan_duration_seconds " in served
