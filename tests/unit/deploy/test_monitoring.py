"""deploy/monitoring: the Prometheus rules cover every alert and pass promtool; rules and dashboard query only
metrics the exporters write (tests/integration/test_monitoring.py checks the same against a live /metrics)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from borg_server.monitor.alerts import LABELS, REPLICA_ALERTS
from borg_server.replica import alerts as replica_alerts
from borg_server.replica import status as replica_status
from borg_server.status import metrics
from borg_server.status.facts import ServerStatus
from borg_server.system.paths import Paths
from tests.harness import promql
from tests.unit.deploy import images

ANSWER = images.ROOT / "docs" / "how-to" / "answer-an-alert.md"
PROMTOOL = shutil.which("promtool") or shutil.which("promtool", path=str(images.ROOT / ".build" / "bin"))
# Skipped on a developer's machine without it (make unit and make test install it); never in CI, which installs it.
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None and not os.environ.get("CI"), reason="promtool is missing: make unit installs it (prometheus)"
)


def primary_exposition() -> str:
    server = ServerStatus("/srv/borg", 100, 50, 0.5, 10, [])
    return metrics.render([], scanned_at=1.0, scan_seconds=1.0, pending=0, server=server)


def replica_exposition(tmp_path) -> str:
    paths = Paths(repositories=tmp_path / "srv", state=tmp_path / "state", runtime=tmp_path / "run",
                  volatile=tmp_path / "shm")  # fmt: skip
    return replica_status.metrics(paths)


def anchors(markdown: str) -> set[str]:
    """Return the anchors mkdocs gives the page's headings (lower case, punctuation dropped, spaces as dashes)."""
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", heading).strip().lower()) for heading in headings}


def test_every_metric_the_rules_and_dashboard_use_is_one_an_exporter_writes(tmp_path):
    exported = promql.exported_names(primary_exposition()) | promql.exported_names(replica_exposition(tmp_path))
    used = promql.used_names()
    assert used - exported == set()
    assert "borg_appliance_client_backup_age_seconds" in used and "borg_appliance_replica_lag_seconds" in used


def test_the_name_reader_finds_metrics_but_not_functions_labels_or_groupings():
    expression = 'sum by (instance) (rate(a_total{job="x",b="y"}[5m])) / on(instance) c and time() - d'
    assert promql.metric_names(expression) == {"a_total", "c", "d"}
    assert promql.metric_names('label_values(e{f=~"$f"}, client)') == {"e"}


def test_every_alert_the_monitor_and_replica_raise_has_a_rule():
    ruled = {re.search(r'alert="(\w+)"', expression).group(1) for expression in promql.rule_expressions()
             if "_alert{" in expression}  # fmt: skip
    known = set(LABELS) | set(REPLICA_ALERTS) | set(metrics.SERVER_ALERTS) | {replica_alerts.UNREACHABLE}
    assert ruled == known
    assert any(expression.startswith("up{") for expression in promql.rule_expressions())


def test_every_rule_says_what_where_and_links_to_a_section_of_answer_an_alert():
    rules = yaml.safe_load(promql.RULES.read_text())["groups"][0]["rules"]
    sections = anchors(ANSWER.read_text())
    for rule in rules:
        notes = rule["annotations"]
        assert set(notes) == {"summary", "description", "runbook"}, rule["alert"]
        assert "{{ $labels.instance }}" in notes["summary"], rule["alert"]
        page, anchor = notes["runbook"].split("#")
        assert page == "docs/how-to/answer-an-alert.md" and anchor in sections, rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")


@needs_promtool
def test_promtool_accepts_the_rules():
    assert PROMTOOL, "promtool is missing: .ci/run installs it with make promtool"
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(promql.RULES)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(re.findall(r'- alert:', promql.RULES.read_text()))} rules found" in checked.stdout


@needs_promtool
def test_the_rules_fire_with_the_text_their_tests_expect():
    tested = subprocess.run([PROMTOOL, "test", "rules", "borg-appliance.rules.test.yml"], cwd=promql.MONITORING,
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
