"""The metric names the shipped Prometheus rules and Grafana dashboard (deploy/monitoring/) query.

A unit test checks them against the families the exporters write, a scenario against a live /metrics.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
RULES = MONITORING / "borg-appliance.rules.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
PROMETHEUS_OWN = {"up"}  # series Prometheus itself writes for every target, not an exporter
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expression: str) -> set[str]:
    """Given a PromQL expression (or a Grafana label_values() query), return the metric names it selects.

    Label matchers, ranges, grouping lists, string literals, numbers and function names are left out.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expression)  # string literals
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)  # label matchers, ranges
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r",\s*[A-Za-z_]\w*\s*\)", ")", text)  # label_values(metric, label): the label
    names = set()
    for match in IDENTIFIER.finditer(text):
        after = text[match.end() :].lstrip()
        if after.startswith("(") or match.group() in KEYWORDS:
            continue  # a function or an operator
        names.add(match.group())
    return names


def rule_expressions() -> list[str]:
    """Return every rule's expression and every query its annotations run (printf "metric{…}" … | query)."""
    found = []
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            found.append(rule["expr"])
            for text in rule.get("annotations", {}).values():
                found += re.findall(r'printf "([^"]*)"', text)
    return found


def dashboard_expressions() -> list[str]:
    """Return every panel target's expression and every templating query of the dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())
    found = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found.append(variable["query"]["query"])
    return found


def used_names() -> set[str]:
    """Return the exporter's metric names that the rules and the dashboard use (not Prometheus' own)."""
    names = set()
    for expression in rule_expressions() + dashboard_expressions():
        names |= metric_names(expression)
    return names - PROMETHEUS_OWN


def exported_names(exposition: str) -> set[str]:
    """Given Prometheus text, return the metric families it declares (# TYPE lines) and the samples it has."""
    names = {line.split()[2] for line in exposition.splitlines() if line.startswith("# TYPE ")}
    names |= {IDENTIFIER.match(line).group() for line in exposition.splitlines() if line and not line.startswith("#")}
    return names
