"""The Prometheus text format as both servers write it: gauge families, one per figure, a sample per client.

status/metrics.py (a primary's figures) and replica/status.py (a replica's) lay out their text with these.
"""

from __future__ import annotations

PREFIX = "borg_appliance"


def family(lines: list[str], name: str, text: str, samples: list[tuple[str, float]]) -> None:
    """Append one gauge family (its HELP and TYPE lines, then a line per sample: labels and value) to lines."""
    lines.extend([f"# HELP {PREFIX}_{name} {text}", f"# TYPE {PREFIX}_{name} gauge"])
    lines.extend(f"{PREFIX}_{name}{labels} {number(value)}" for labels, value in samples)


def per_client(lines: list[str], prefix: str, table: tuple, statuses: list, kinds: tuple[str, ...]) -> None:
    """Append a family per (name, help, value) of table, a sample per client (None: none), then the alert family."""
    for name, text, value in table:
        samples = [(f'{{client="{s.client}"}}', value(s)) for s in statuses]
        family(lines, f"{prefix}_{name}", text, [(labels, v) for labels, v in samples if v is not None])
    samples = [(f'{{client="{s.client}",alert="{kind}"}}', int(kind in s.alerts)) for s in statuses for kind in kinds]
    family(lines, f"{prefix}_alert", "1 while the alert is raised for the client.", samples)


def number(value: float) -> str:
    """Return a sample's value as Prometheus reads it: an integer without a decimal point, else Python's repr."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
