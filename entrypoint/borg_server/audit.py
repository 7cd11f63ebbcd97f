"""`borg-server audit CLIENT`: the deletes and segment changes found since the last acknowledgement.

It scans the repository first, so the list is current. Acknowledging names the last segment the
listing covered (`--acknowledge N`), so a delete written after the admin read the list is never
acknowledged by accident; `borg-server compact` refuses while any delete is unacknowledged.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from borg_server import findings, gate, sessions
from borg_server.config import ClientSpec
from borg_server.paths import Paths

SLACK = timedelta(seconds=2)  # a segment's mtime and the session's end are taken apart
SESSION_FIELDS = ("role", "fingerprint", "source", "started_at", "finished_at")


class AuditRefused(Exception):
    """The acknowledgement asked for cannot be given; the message says why."""


def sessions_of(records: list[dict], client: str, segment: int, committed_at: str | None) -> list[dict]:
    """Return the client's sessions that may have written segment: by the committed segments each one
    logged before and after it, or (records without them) by the segment's time."""
    found = []
    moment = datetime.fromisoformat(committed_at) if committed_at else None
    for record in records:
        if record.get("event") != "borg-session" or record.get("client") != client:
            continue  # the log also holds the server's own records (server-compact): not a client session
        if record.get("committed_after") is not None:
            before = record.get("committed_before")
            if (-1 if before is None else before) < segment <= record["committed_after"]:
                found.append(record)
        elif moment and "committed_after" not in record and "started_at" in record and "finished_at" in record:
            started, finished = (datetime.fromisoformat(record[key]) for key in ("started_at", "finished_at"))
            if started - SLACK <= moment <= finished + SLACK:
                found.append(record)
    return found


def same_findings(first: dict | None, second: dict | None) -> bool:
    """Return whether two tamper findings name the same changes (when they were seen aside)."""

    def strip(finding: dict | None) -> dict | None:
        return None if finding is None else {key: value for key, value in finding.items() if key != "seen_at"}

    return strip(first) == strip(second)


def review(client: ClientSpec, paths: Paths, acknowledge: int | None) -> dict:
    """Scan the client's repository, acknowledge through segment acknowledge if given; return the findings.

    Tampering is acknowledged only if this scan found exactly what an earlier one had (so the admin
    could have seen it). Raise AuditRefused if acknowledge lies beyond the scanned segments.
    """
    now = findings.now_text()
    if gate.compacting(paths, client.name):
        raise AuditRefused("a compaction of this client runs; audit again when it has finished")
    with findings.locked(paths.monitor_state(client.name)) as state:
        known_tampering = state["tampering"]
        findings.watch_repository(client.name, state, paths.client_repository(client.name), False, now)
        listed = [dict(group) for group in state["deletes"]]
        tampering = state["tampering"]
        count, tampering_accepted = None, False
        if acknowledge is not None:
            if state["scanned"] is None or acknowledge > state["scanned"]:
                raise AuditRefused(
                    f"segment {acknowledge} lies beyond what was scanned ({state['scanned']}); "
                    f"run borg-server audit {client.name} and use the segment it prints"
                )
            tampering_accepted = tampering is not None and same_findings(known_tampering, tampering)
            count = findings.acknowledge(state, acknowledge, tampering_accepted, now)
            if tampering_accepted:
                findings.rebaseline(state, paths.client_repository(client.name))
        result = {
            "client": client.name,
            "scanned_through": state["scanned"],
            "deletes": listed,
            "tampering": tampering,
            "acknowledged_now": count,
            "tampering_acknowledged": tampering_accepted,
            "unacknowledged": findings.pending_deletes(state),
            "history": state["acknowledged"],
        }
    records = sessions.read_all(paths.audit_log)
    for group in result["deletes"]:
        found = sessions_of(records, client.name, group["segment"], group["committed_at"])
        group["sessions"] = [{key: record.get(key) for key in SESSION_FIELDS} for record in found]
    return result


def render(result: dict, as_json: bool) -> str:
    """Return the findings as JSON or as text an admin reads before compacting."""
    if as_json:
        return json.dumps(result, indent=2)
    name, groups, tampering = result["client"], result["deletes"], result["tampering"]
    if result["acknowledged_now"] is not None:
        line = f"client {name}: acknowledged {result['acknowledged_now']} delete(s)"
        if result["tampering_acknowledged"]:
            line += " and the changes to committed files"
        elif tampering:
            line += "; the changes to committed files were found only now: review them, then acknowledge again"
        return f"{line}; {result['unacknowledged']} delete(s) remain unacknowledged."
    if not groups and not tampering:
        through = result["scanned_through"]
        return f"client {name}: no unacknowledged deletes or changes (scanned through segment {through})."
    lines = []
    if groups:
        total = sum(group["count"] for group in groups)
        lines.append(f"client {name}: {total} delete(s) not acknowledged; compaction would apply them:")
        lines.append(f"  {'SEGMENT':>8}  {'COMMITTED':25}  {'OBJECTS':>7}  {'KIND':22}  SESSION")
        for group in groups:
            kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(group["kinds"].items()))
            who = "; ".join(f"{s['role']} key {s['fingerprint']} from {s['source']}" for s in group["sessions"])
            lines.append(
                f"  {group['segment']:>8}  {group['committed_at'] or '?':25}  {group['count']:>7}  {kinds:22}  "
                f"{who or 'unknown'}"
            )
        lines.append(
            "  delete: an archive or chunk deleted; overwrite: a stored object replaced (normal backups never do"
            " this); checkpoint: borg's clean-up after a long backup's checkpoint. --json lists object ids."
        )
    if tampering:
        lines.append(
            f"client {name}: {findings.describe_tampering(tampering)}, first seen {tampering['seen_at']}; "
            "borg never rewrites committed files of an append-only repository."
        )
    lines.append(
        f"If these are expected (your own prune with the admin key), accept them with:\n"
        f"  borg-server audit {name} --acknowledge {result['scanned_through'] or 0}\n"
        "If not: do not compact; restore the archives as the README's rollback procedure says."
    )
    return "\n".join(lines)
