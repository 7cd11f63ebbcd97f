"""Table-driven scenarios: a whole table of cases run in one container of an image (settings_runner.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tests.harness.containers import Sandbox

HARNESS = Path(__file__).resolve().parent
RUNNER = "/tmp/harness/settings_runner.py"  # where HARNESS is mounted in the container


@dataclass(frozen=True)
class Table:
    """What one container made of a table: the digest before any case and each case's outcome by id.

    An outcome has "rc" (or "timeout"), "stderr" (its last 2000 characters), "length" (all of it),
    "seconds" and "digest" (of the directories right after the case ran)."""

    before: str
    outcomes: dict[str, dict]


def run_table(sandbox: Sandbox, image: str, options: list[str], cases: list[dict], directory: Path,
              directories: list[str], command: list[str]) -> Table:  # fmt: skip
    """Run cases ({"id", "set": {...}, "unset": [...]} or {"id", "setting", "value", …}) one after another in one
    container of image, each as command; return the digest of directories before them and every case's outcome."""
    table = directory / "cases.json"
    table.write_text(json.dumps(cases))
    options = [*options, "-v", f"{HARNESS}:/tmp/harness:ro", "-v", f"{table}:/tmp/cases.json:ro",
               "--entrypoint", "python3"]  # fmt: skip
    argv = [RUNNER, "/tmp/cases.json", *directories, "--", *command]
    result = sandbox.run("table", image, options, argv, detach=False, timeout=900)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["id"] for line in lines[1:]] == [case["id"] for case in cases], result.stdout[-2000:]
    return Table(lines[0]["digest"], {line["id"]: line for line in lines[1:]})
