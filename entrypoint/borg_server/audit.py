"""`borg-server audit CLIENT`: the deletes and segment changes found since the last acknowledgement.

It scans the repository first, so the list is current. Acknowledging names the last segment the
listing covered (`--acknowledge N`), so a delete written after the admin read the list is never
acknowledged by accident; `borg-server compact` refuses while any delete is unacknowledged.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta

from borg_server import findings, monitor, sessions
from borg_server.config import ClientSpec
from borg_server.paths import Paths

SLACK = timedelta(seconds=2)  # a segment's mtime and the session's end are taken apart


def session_of(records: list[dict], client: str, committed_at: str | None) -> dict | None:
    """Return the client's session that was running when a segment was committed (None if unknown)."""
    if committed_at is None:
        return None
    moment = datetime.fromisoformat(committed_at)
    for record in reversed(records):
        if record.get("event") != "borg-session" or record.get("client") != client:
            continue  # the log also holds the server's own records (server-compact): not a client session
        if "started_at" not in record or "finished_at" not in record:
            continue
        started, finished = (datetime.fromisoformat(record[key]) for key in ("started_at", "finished_at"))
        if started - SLACK <= moment <= finished + SLACK:
            return record
    return None


def review(client: ClientSpec, paths: Paths, acknowledge: int | None) -> dict:
    """Scan the client's repository, acknowledge through segment acknowledge if given; return the findings."""
    now = findings.now_text()
    with findings.locked(paths.monitor_state(client.name)) as state:
        monitor.watch_repository(client, state, paths, admin_session=False, now=now)
        listed = list(state["deletes"])
        tampering = state["tampering"]
        done = []
        if acknowledge is not None:
            done = findings.acknowledge(state, acknowledge, now)
            if tampering:
                findings.rebaseline(state, paths.client_repository(client.name))
        result = {
            "client": client.name,
            "scanned_through": state["scanned"],
            "deletes": listed,
            "tampering": tampering,
            "acknowledged_now": len(done) if acknowledge is not None else None,
            "unacknowledged": len(state["deletes"]),
            "history": state["acknowledged"],
        }
    records, _ = sessions.read_sessions(paths.audit_log)
    for delete in result["deletes"]:
        record = session_of(records, client.name, delete["committed_at"])
        delete["session"] = (
            {key: record.get(key) for key in ("role", "fingerprint", "source", "started_at", "finished_at")}
            if record
            else None
        )
    return result


def render(result: dict, as_json: bool) -> str:
    """Return the findings as JSON or as text an admin reads before compacting."""
    if as_json:
        return json.dumps(result, indent=2)
    name, deletes = result["client"], result["deletes"]
    lines = []
    if result["acknowledged_now"] is not None:
        lines.append(f"client {name}: acknowledged {result['acknowledged_now']} delete(s)"
                     f"{' and the segment changes' if result['tampering'] else ''}; "
                     f"{result['unacknowledged']} remain unacknowledged.")  # fmt: skip
        return "\n".join(lines)
    if not deletes and not result["tampering"]:
        through = result["scanned_through"]
        return f"client {name}: no unacknowledged deletes or segment changes (scanned through segment {through})."
    if deletes:
        lines.append(f"client {name}: {len(deletes)} delete(s) not acknowledged; compaction would apply them:")
        lines.append(f"  {'SEGMENT':>8}  {'COMMITTED':25}  {'OBJECTS':>7}  {'KIND':10}  SESSION")
        for segment, group in itertools.groupby(deletes, key=lambda delete: delete["segment"]):
            group = list(group)
            kinds = sorted({"checkpoint" if delete["checkpoint"] else "delete" for delete in group})
            session = group[0].get("session")
            who = f"{session['role']} key {session['fingerprint']} from {session['source']}" if session else "unknown"
            lines.append(
                f"  {segment:>8}  {group[0]['committed_at'] or '?':25}  {len(group):>7}  {'+'.join(kinds):10}  {who}"
            )
        lines.append(
            "  (checkpoint: borg's own clean-up of a checkpoint archive after a long backup; usually harmless;"
            " --json lists every object)"
        )
    if result["tampering"]:
        tampering = result["tampering"]
        lines.append(
            f"client {name}: committed {findings.describe_tampering(tampering)} since {tampering['seen_at']}; "
            "borg never rewrites them in an append-only repository."
        )
    lines.append(
        f"If these are expected (your own prune with the admin key), accept them with:\n"
        f"  borg-server audit {name} --acknowledge {result['scanned_through'] or 0}\n"
        "If not: do not compact; restore the archives as the README's rollback procedure says."
    )
    return "\n".join(lines)
