"""What `status` and `healthcheck` show: the last runs, the next one, the last restore drill, and whether backups
succeed and drills pass on schedule."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

from borg_client import config as client_config
from borg_client import journal, recovery_kit, verify, waiting
from borg_common import cron, outbox

FIRST_START_GRACE = timedelta(minutes=15)


def command_status(config, arguments) -> int:
    paths = config.paths
    runs = journal.last_runs(paths)
    current = datetime.now().astimezone()
    status = {
        "client": config.client,
        "repository": config.repository,
        "schedule": config.cron,
        "next_run": cron.next_times(config.cron, current, 1)[0].isoformat(timespec="seconds"),
        "reports_waiting": outbox.size(paths.outbox),
        "verify_schedule": config.drills.cron or "off",
        "last_verified": verify.recorded(paths).get("last_verified"),
        "recovery_kit": {"saved": recovery_kit.saved(paths), "confirmed_at": recovery_kit.confirmed_at(paths)},
        "notifications_waiting": outbox.size(paths.notify_outbox),
        "last_runs": [
            {
                key: entry.get(key)
                for key in ("started_at", "finished_at", "kind", "status", "archive", "duration_s", "message", "dumps")
            }
            | ({"verified": entry["verified"]} if "verified" in entry else {})  # a drill's figures
            for entry in runs[-arguments.runs :]
        ],
    }
    status["coverage"] = coverage_counts(runs)
    if arguments.json:
        print(json.dumps(status, indent=2))
        return 0
    drilled = status["last_verified"]
    shown = {key: status[key] for key in ("client", "repository", "schedule", "next_run", "reports_waiting",
                                          "notifications_waiting", "verify_schedule")}  # fmt: skip
    shown |= {
        "last_verified": f"{drilled['at']}  {drilled['status']}  {drilled['message']}" if drilled else "never",
        "coverage": coverage_line(status["coverage"]),
        "recovery kit": recovery_kit.status_line(paths),
    }
    label_width = max(len(label) for label in shown) + 2  # the values in one column
    for label, value in shown.items():
        print(f"{label + ':':{label_width}}{value}")
    print("last runs:")
    for entry in reversed(status["last_runs"]):
        what = entry["archive"] or {"prune": "prune", "verify": "restore drill"}.get(entry["kind"], "-")
        print(f"  {entry['started_at']}  {entry['status']:11}  {what}  {entry['message']}")
        for dump in entry.get("dumps") or ():
            print(f"      dump {dump['container']}/{dump['database']}: {dump['bytes']} bytes in {dump['seconds']} s"
                  f" ({dump['status']})")  # fmt: skip
    return 0


def coverage_counts(runs: list[dict]) -> dict | None:
    """Given the run journal, return the last backup's coverage: status, reason, counts (None before any)."""
    for entry in reversed(runs):
        if entry.get("coverage"):
            audit = entry["coverage"]
            return {"status": audit.get("status"), "reason": audit.get("reason"), "counts": audit.get("counts"),
                    "at": entry.get("started_at")}  # fmt: skip
    return None


def coverage_line(audit: dict | None) -> str:
    """Return the coverage counts as status shows them."""
    if not audit:
        return "not audited yet"
    if audit["status"] != "audited":
        return f"unknown: {audit['reason']}"
    counts = audit["counts"]
    return (
        f"{counts['covered']} covered, {counts['unsafe']} unsafe, {counts['left_out']} left out, "
        f"{counts['not_covered']} not covered (borg-client coverage lists them)"
    )


def allowed_age(config, current: datetime) -> timedelta:
    """Return how old the last good backup may be before the sidecar is unhealthy (and its digest says stale):
    1.5 periods of BACKUP_CRON."""
    return cron.period(config.cron, current) * 1.5


def command_healthcheck(config, _arguments) -> int:
    """Exit 1 when the last run failed, or no success within 1.5 periods (after a first-start grace), or when the
    last restore drill failed or none passed within two periods of VERIFY_CRON (borg_client.verify.health).

    Exit 0 while the scheduler waits for its pairing export or server, saying so ("starting: …").
    """
    if config is None:
        print(f"starting: waiting for the pairing export in {client_config.PAIRING}")
        return 0
    marker = waiting.waiting_for(config.paths.waiting)
    if marker:
        print(f"starting: waiting for {marker}")
        return 0
    runs = [
        entry
        for entry in journal.last_runs(config.paths)
        if entry.get("status") != "skipped" and entry.get("kind", "backup") == "backup"
    ]
    current = datetime.now().astimezone()
    if runs and runs[-1].get("status") in ("failure", "interrupted"):
        print(f"the last backup did not succeed: {runs[-1].get('message')}")
        return 1
    age = journal.last_success_age(runs, current)
    allowed = allowed_age(config, current)
    started = datetime.fromtimestamp(os.stat("/proc/1").st_mtime).astimezone()
    if age is None and current - started < FIRST_START_GRACE:
        return 0
    if age is None or age > allowed:
        print(f"no successful backup within {allowed} (last: {age or 'never'})")
        return 1
    drilled = verify.health(config, current)
    if drilled:
        print(drilled)
        return 1
    last = verify.recorded(config.paths).get("last_verified")
    if last:
        print(f"last_verified: {json.dumps(last)}")
    return 0
