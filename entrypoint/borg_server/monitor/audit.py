"""The delete review (`borg-server audit CLIENT`): the deletes and segment changes found since the last acknowledgement.

It scans the repository first, so the list is current. Acknowledging names the last segment the
listing covered (`--acknowledge N`), so a delete written after the admin read the list is never
acknowledged by accident; `borg-server compact` refuses while any delete is unacknowledged.
"""

from __future__ import annotations

import dataclasses
import json

from borg_server.records import state_file
from borg_server.records.client_state import Tampering
from borg_server.records.configuration import ClientSpec
from borg_server.repository import audit_log, baseline, deletes, gate, watch
from borg_server.repository.audit_log import sessions_of
from borg_server.system.paths import Paths

SESSION_FIELDS = ("role", "fingerprint", "source", "started_at", "finished_at")


class AuditRefused(Exception):
    """The acknowledgement asked for cannot be given; the message says why."""


def same_findings(first: Tampering | None, second: Tampering | None) -> bool:
    """Return whether two tamper findings name the same changes (when they were seen aside)."""
    if first is None or second is None:
        return first is second
    return dataclasses.replace(first, seen_at=second.seen_at) == second


def review(client: ClientSpec, paths: Paths, acknowledge: int | None) -> dict:
    """Scan the client's repository, acknowledge through segment acknowledge if given; return the findings.

    Tampering is acknowledged only if this scan found exactly what an earlier one had (so the admin
    could have seen it). Raise AuditRefused if acknowledge lies beyond the scanned segments.
    """
    now = state_file.now_text()
    if gate.compacting(paths, client.name):
        raise AuditRefused("a compaction of this client runs; audit again when it has finished")
    with state_file.locked(paths.monitor_state(client.name)) as found:
        known_tampering = found.tampering
        watch.watch_repository(client.name, found, paths.client_repository(client.name), False, now)
        listed = [state_file.group_json(group) for group in found.deletes]
        shrinks = [dataclasses.asdict(shrink) for shrink in found.manifest_shrinks]
        tampering = found.tampering
        count, tampering_accepted = None, False
        if acknowledge is not None:
            if found.scanned is None or acknowledge > found.scanned:
                raise AuditRefused(
                    f"segment {acknowledge} lies beyond what was scanned ({found.scanned}); "
                    f"run borg-server audit {client.name} and use the segment it prints"
                )
            tampering_accepted = tampering is not None and same_findings(known_tampering, tampering)
            count = deletes.acknowledge(found, acknowledge, tampering_accepted, now)
            if tampering_accepted:
                baseline.rebaseline(found, paths.client_repository(client.name))
        result = {
            "client": client.name,
            "scanned_through": found.scanned,
            "deletes": listed,
            "tampering": state_file.tampering_json(tampering),
            "manifest_shrinks": shrinks,
            "acknowledged_now": count,
            "tampering_acknowledged": tampering_accepted,
            "unacknowledged": found.pending_deletes(),
            "history": [state_file.acknowledgement_json(done) for done in found.acknowledged],
        }
    records = audit_log.read_all(paths.audit_log)
    for group in result["deletes"]:
        found_sessions = sessions_of(records, client.name, group["segment"], group["committed_at"])
        group["sessions"] = [{key: record.get(key) for key in SESSION_FIELDS} for record in found_sessions]
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
    shrinks = result.get("manifest_shrinks", [])
    if not groups and not tampering and not shrinks:
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
            " this); checkpoint: borg's clean-up after a long backup's checkpoint; rename: the old object of a renamed"
            " archive (the sidecar renames a failed dump's archive to a checkpoint). --json lists object ids."
        )
    for shrink in shrinks:
        lines.append(
            f"client {name}: the manifest shrank from {shrink['previous_size']} to {shrink['size']} bytes in segment "
            f"{shrink['segment']} with no archive deleted: archives dropped from the list "
            "(docs/how-to/recover-dropped-archives.md)."
        )
    if tampering:
        lines.append(
            f"client {name}: {baseline.describe_tampering(state_file.tampering_from_json(tampering))}, "
            f"first seen {tampering['seen_at']}; "
            "borg never rewrites committed files of an append-only repository."
        )
    lines.append(
        f"If these are expected (your own prune with the admin key), accept them with:\n"
        f"  borg-server audit {name} --acknowledge {result['scanned_through'] or 0}\n"
        "If not: do not compact; roll back as docs/how-to/roll-back-a-compromised-client.md says."
    )
    return "\n".join(lines)
