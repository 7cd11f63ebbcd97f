"""Plain-text tables, as `borg-server status` prints them on a primary and on a replica."""

from __future__ import annotations


def render(rows: list[tuple[str, ...]]) -> str:
    """Given a header row and data rows of strings, return them in columns two spaces apart."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )
