"""What a person reads about a run (backup, prune, restore drill): the notification's title and body, sent through
borg_common.notify (NOTIFY_URLS, NOTIFY_ON).

The title says what and where ("backup of web failed on app-host"), the body why in one sentence, the
figures that matter (the last good backup's age, sizes, what a prune deleted) and what to do next.
"""

from __future__ import annotations

import socket
from datetime import datetime

from borg_common.notify import Message
from borg_common.values import human_duration, human_size

EVENTS = {"success": "success", "warning": "warning", "skipped": "warning", "failure": "failure",
          "interrupted": "failure"}  # fmt: skip
OUTCOMES = {"success": "succeeded", "warning": "finished with warnings", "skipped": "was skipped",
            "failure": "failed", "interrupted": "was interrupted"}  # fmt: skip
NEXT = {
    "backup": "Next: read the run's log (docker logs of the sidecar, or its day log under /var/lib/borg-client/logs), "
    "fix the cause, then run borg-client run to back up now; see docs/explanation/backup-run.md.",
    "prune": "Next: read the sidecar's log, fix the cause, then run borg-client prune; "
    "see docs/how-to/prune-safely.md.",
    "verify": "Next: a file that differs: restore it from an older archive too (borg-client restore ARCHIVE PATH "
    "--target /tmp/drill) and compare, to tell whether the live file or the backup is damaged; damage found by a "
    "check: run borg-client check --verify-data and read the server's log; then borg-client verify to drill again; "
    "see docs/how-to/restore-drills.md.",
}
NAMES = {"verify": "restore drill"}  # how a title names a kind of run
LISTED = 10  # archive names a prune's notification lists


def message(report: dict, last_good_age: float | None, host: str | None = None) -> Message:
    """Given a finished run's report (RunReport.to_dict()) and how many seconds ago the last good backup finished
    (None: never), return the notification a person reads."""
    kind, status = report.get("kind", "backup"), report["status"]
    where = host or socket.gethostname()
    title = f"{NAMES.get(kind, kind)} of {report['client']} {OUTCOMES.get(status, status)} on {where}"
    lines = [_sentence(report.get("message") or OUTCOMES.get(status, status))]
    lines += _figures(report, last_good_age)
    if status != "success":
        lines.append(NEXT.get(kind, NEXT["backup"]))
    return Message(EVENTS.get(status, "failure"), title, "\n".join(lines), report["run_id"])


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".") if text else text


def _figures(report: dict, last_good_age: float | None) -> list[str]:
    """Return the lines with the figures that matter for this run."""
    lines = []
    if report.get("kind") == "verify":
        lines += _drilled(report.get("verified") or {})
    elif report.get("kind") == "prune":
        pruned, kept = report.get("pruned") or [], report.get("kept") or []
        if pruned:
            names = ", ".join(pruned[:LISTED]) + (f" and {len(pruned) - LISTED} more" if len(pruned) > LISTED else "")
            lines.append(f"Deleted {len(pruned)} archive(s): {names}; kept {len(kept)}.")
        elif report["status"] == "success":
            lines.append(f"Deleted no archive; kept {len(kept)}.")
    else:
        stats = report.get("stats") or {}
        if report.get("archive") and stats.get("original_size") is not None:
            lines.append(
                f"Archive {report['archive']}: {human_size(stats['original_size'])} read, "
                f"{human_size(stats.get('deduplicated_size') or 0)} new in the repository, "
                f"{stats.get('nfiles', 0)} file(s)."
            )
        if report["status"] != "success":
            lines.append(_last_good(last_good_age))
    if report.get("duration_s") is not None:
        lines.append(f"Started {_at(report['started_at'])}, took {human_duration(int(report['duration_s']))}.")
    return lines


def _drilled(verified: dict) -> list[str]:
    """Return the lines with a drill's figures: what it checked, files compared and skipped."""
    if "files_compared" not in verified:
        return []
    steps = ", ".join(verified.get("checked") or ()) or "nothing"
    return [
        f"Checked: {steps}; {verified['files_compared']} file(s) compared byte for byte "
        f"({human_size(verified.get('bytes_compared') or 0)}), {verified.get('files_skipped', 0)} skipped "
        f"(changed since the backup)."
    ]


def _last_good(age: float | None) -> str:
    if age is None:
        return "There is no good backup of this client yet."
    return f"The last good backup finished {human_duration(max(int(age), 0))} ago."


def _at(moment: str) -> str:
    return datetime.fromisoformat(moment).strftime("%Y-%m-%d %H:%M:%S %Z").strip()


COVERAGE_PAGE = "docs/how-to/adding-a-service.md"
COVERAGE_TITLES = {"not_covered": "is not backed up", "unsafe": "is backed up unsafely"}
COVERAGE_NEXT = {
    "not_covered": "Next: mount it under /backup of a sidecar, dump it with the label borg-appliance.dump if it is "
    "a database, or label the container borg-appliance.skip=<why> if it needs no backup; see {page}.",
    "unsafe": "Next: label the container borg-appliance.dump=<kind> so it is dumped, or stop it during the backup "
    "with BACKUP_STOP_LABEL; see {page}.",
}


def coverage_message(item, host: str | None = None) -> Message:
    """Given a coverage finding (borg_client.coverage.Item, unsafe or not covered), return the notification a person
    reads: "volume app_uploads is not backed up on app-host", which container, why, and how to cover or label it."""
    where = host or socket.gethostname()
    title = f"{item.what} {COVERAGE_TITLES[item.state]} on {where}"
    lines = [
        f"Container {item.container} uses it at {item.destination}.",
        _sentence(item.why),
        COVERAGE_NEXT[item.state].format(page=COVERAGE_PAGE),
    ]
    return Message("alert", title, "\n".join(lines), f"coverage:{item.key}")
