"""Alerts: which conditions hold for a client, and the documents sent when one is raised or clears.

Each alert is sent once when its condition starts to hold and once when it clears: as a JSON line
on the monitor's output and, with REPORT_URLS, as a report through the outbox shared with the
sidecar (borg_common.reports), so an alert survives a receiver that is down and a restart; with
NOTIFY_URLS, also as a notification for a person (notice(), borg_common.notify).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import uuid
from datetime import datetime

from borg_common import notify, outbox
from borg_common.values import human_duration
from borg_server.compaction.policy import Group
from borg_server.records import state_file
from borg_server.records.client_state import ClientState, RaisedAlert, Refusals
from borg_server.records.configuration import ClientSpec, ServerConfig
from borg_server.repository import baseline
from borg_server.system.paths import Paths

QUOTA_ALERT_RATIO = 0.9
WRITER_WAIT = 900  # seconds a delete no session is logged for waits for its session's record while one writes
REPLICA_ALERTS = ("replica_mismatch", "replica_lag")  # a replica's own (replica/copy.py)
GROWING = (
    "deletes",
    "client_deletes",
    "tampering",
    "manifest_shrank",
    "replica_mismatch",
    "sessions_refused",
)  # conditions that are sent again when more is found
LABELS = {
    "stale": "no recent backup",
    "deletes": "deletes by the admin key",
    "client_deletes": "deletes by the client's own key",
    "compaction_held": "automatic compaction waits for a person",
    "tampering": "segments changed on disk",
    "manifest_shrank": "archives dropped from the manifest",
    "check_failed": "repository check failed",
    "quota": "repository near its quota",
    "replica_mismatch": "committed segments differ on the primary",
    "replica_lag": "the replica's copy is behind",
    "sessions_refused": "sessions refused (too many open at once)",
}
REFUSED_QUIET = 3600  # seconds without a refused session before sessions_refused clears


def conditions(
    client: ClientSpec,
    found: ClientState,
    size: int,
    now: datetime,
    check_interval: int,
    has_repository: bool = False,
    written: list[Group] | None = None,
    waiting: frozenset[int] = frozenset(),
) -> dict[str, tuple[str, dict]]:
    """Given a client, its state, repository size, the check interval and who wrote its pending deletes (written:
    auto_compact.groups; waiting: segments left out until their session's record is written), return the
    conditions that hold.

    Each is kind → (message, details).
    """
    name = client.name
    active = {}
    reference = found.last_backup or found.first_seen
    age = (now - datetime.fromisoformat(reference)).total_seconds()
    if age > client.max_age:
        since = f"its last backup ended {found.last_backup}" if found.last_backup else "it never backed up"
        active["stale"] = (
            f"client {name}: no backup for {human_duration(age)} (MAX_AGE {human_duration(client.max_age)}); {since}",
            {"last_backup": found.last_backup, "age_s": int(age), "max_age_s": client.max_age},
        )
    if client.append_only:
        active |= deletes_conditions(name, found, written or [], waiting)
        if found.tampering:
            active["tampering"] = (
                f"client {name}: {baseline.describe_tampering(found.tampering)} "
                "(borg never rewrites committed files of an append-only repository)",
                state_file.tampering_json(found.tampering),
            )
        if found.manifest_shrinks:
            active["manifest_shrank"] = manifest_condition(name, found)
    if found.retention.held and found.retention.blocked:
        active["compaction_held"] = (
            f"client {name}: the automatic compaction waits for a person: {found.retention.blocked}",
            {"pending_admin_deletes": found.retention.pending_admin},
        )
    check = found.check
    if check and not check.ok:
        active["check_failed"] = (
            f"client {name}: borg check --repository-only failed at {check.at}: {check.message}",
            dataclasses.asdict(check),
        )
    elif has_repository or found.segments or check:  # a repository exists: its checks must keep happening
        checked = check.at if check else found.first_seen
        overdue = (now - datetime.fromisoformat(checked)).total_seconds()
        if overdue > 2 * check_interval:
            active["check_failed"] = (
                f"client {name}: no repository check could run for {human_duration(overdue)} "
                "(the repository was always busy?)",
                {"last_check_at": check.at if check else None, "overdue_s": int(overdue)},
            )
    if found.refused and (now - datetime.fromisoformat(found.refused.last_at)).total_seconds() < REFUSED_QUIET:
        active["sessions_refused"] = refused_condition(client, found.refused)
    if client.quota and size > QUOTA_ALERT_RATIO * client.quota:
        active["quota"] = (
            f"client {name}: repository uses {size / client.quota:.0%} of its quota ({size} of {client.quota} bytes)",
            {"bytes": size, "quota_bytes": client.quota, "ratio": round(size / client.quota, 4)},
        )
    return active


def still_being_written(written: list[Group], busy: bool, now: datetime) -> frozenset[int]:
    """Given the pending delete groups with their writers, whether a session holds the repository's lock now, and
    the time, return the segments no session is logged for yet that wait for it: the session that wrote them
    is still running (its record is written when it ends), for at most WRITER_WAIT after their commit."""
    if not busy:
        return frozenset()
    recent = [g for g in written if (now - datetime.fromisoformat(g.committed_at)).total_seconds() < WRITER_WAIT]
    return frozenset(g.segment for g in recent if not g.writers)


def deletes_conditions(
    name: str, found: ClientState, written: list[Group], waiting: frozenset[int] = frozenset()
) -> dict[str, tuple[str, dict]]:
    """Given an append-only client's state and who wrote its pending deletes, return the deletes conditions: `deletes`
    for those of its admin key (a prune), `client_deletes` for every other (its own key, or a session not known,
    except the segments waiting for their session's record).
    """
    groups = [group for group in found.deletes if group.alerting and group.segment not in waiting]
    by_segment = {group.segment: group for group in written}
    admin = [g for g in groups if g.segment in by_segment and by_segment[g.segment].by_admin]
    others = [g for g in groups if g not in admin]
    active = {}
    if admin:
        keys = sorted({key for g in admin for _, key in by_segment[g.segment].writers})
        message, details = deletes_found(admin)
        active["deletes"] = (
            f"client {name}: {message} by the admin key {', '.join(keys)} (a prune); "
            f"see borg-server audit {name} before any compaction",
            details | {"keys": keys},
        )
    if others:
        writers = sorted(
            {writer for g in others if g.segment in by_segment for writer in by_segment[g.segment].writers}
        )
        who = ", ".join(f"{WRITERS.get(role, f'the {role} key')} {key}" for role, key in writers)
        message, details = deletes_found(others)
        active["client_deletes"] = (
            f"client {name}: {message} by {who or 'a session the audit log does not name'}, not by the admin key: "
            "the client's own key only ever adds backups, so the client may be compromised. Nothing is lost yet "
            "(append-only: the data stays until a compaction, and nothing compacts by itself). Next: see what "
            f"was deleted with borg-server audit {name}; if nobody meant to, roll back as "
            "docs/how-to/roll-back-a-compromised-client.md says and replace the client's key; "
            "if someone did, acknowledge it as the audit says",
            details | {"keys": [key for _, key in writers]},
        )
    return active


WRITERS = {"append": "the client's own append-only key", "full": "the client's own key"}


def deletes_found(groups: list) -> tuple[str, dict]:
    """Given delete groups (DeleteGroup), return "N object(s) deleted in segments a..b" and the alert's details."""
    count = sum(group.alerting for group in groups)
    overwrites = sum(group.kinds.get("overwrite", 0) for group in groups)
    first, last = groups[0].segment, groups[-1].segment
    what = f" ({overwrites} of them overwrites of stored objects)" if overwrites else ""
    details = {"count": count, "overwrites": overwrites, "first_segment": first, "last_segment": last}
    return f"{count} object(s) deleted in segments {first}..{last}{what}", details


def transitions(
    found: ClientState, active: dict[str, tuple[str, dict]], client: str, server: str, now: str
) -> list[dict]:
    """Given the conditions that hold now, update the client's raised alerts; return a document per change.

    A condition is sent once when it starts ("raised") and once when it stops ("cleared"). Deletes
    and tampering are sent again ("updated") when more is found while they are raised: a client
    deleting more after the admin's own prune must not go unnoticed.
    """
    documents = []
    for kind, (message, details) in active.items():
        raised = found.alerts.get(kind)
        if raised is None:
            found.alerts[kind] = RaisedAlert(now, message, extent(kind, details))
            documents.append(document(kind, "raised", client, server, message, details, now, now))
        elif kind in GROWING and extent(kind, details) > raised.extent:
            found.alerts[kind] = RaisedAlert(raised.since, message, extent(kind, details))
            documents.append(document(kind, "updated", client, server, message, details, raised.since, now))
    for kind in [kind for kind in found.alerts if kind not in active]:
        since = found.alerts.pop(kind).since
        message = f"client {client}: cleared: {LABELS.get(kind, kind)}"
        documents.append(document(kind, "cleared", client, server, message, {}, since, now))
    return documents


def extent(kind: str, details: dict) -> int:
    """Return how much a growing condition covers: deletes counted, or committed files changed."""
    if kind in ("deletes", "client_deletes"):
        return details.get("count", 0)
    if kind == "tampering":
        return state_file.tampering_from_json(details).files
    if kind in ("manifest_shrank", "replica_mismatch", "sessions_refused"):
        return details.get("count", 0)
    return 0


def refusals(known: Refusals | None, refused: list[dict], now: datetime) -> Refusals | None:
    """Given the refusals known, the client's refused session records found since (oldest first) and the time,
    return the refusals to keep: counted on, or afresh once REFUSED_QUIET passed without one."""
    if known and (now - datetime.fromisoformat(known.last_at)).total_seconds() >= REFUSED_QUIET:
        known = None
    if not refused:
        return known
    first = known.first_at if known else str(refused[0].get("finished_at"))
    count = (known.count if known else 0) + len(refused)
    return Refusals(first, str(refused[-1].get("finished_at")), count, str(refused[-1].get("source") or "unknown"))


def refused_condition(client: ClientSpec, refused: Refusals) -> tuple[str, dict]:
    """Given a client and its refused sessions, return the sessions_refused condition."""
    message = (
        f"client {client.name}: {refused.count} session(s) refused since {refused.first_at} (the last at "
        f"{refused.last_at}, from {refused.source}): {client.max_sessions} sessions of the client were open at "
        f"once, as many as MAX_SESSIONS allows. A broken or compromised client is opening sessions in a loop: "
        f"look at the host {refused.source}; its backups fail while this lasts, other clients' do not"
    )
    details = dataclasses.asdict(refused) | {"max_sessions": client.max_sessions}
    return message, details


def manifest_condition(name: str, found: ClientState) -> tuple[str, dict]:
    """Given a client with unacknowledged manifest shrinks, return the manifest_shrank condition."""
    shrinks = found.manifest_shrinks
    segments = ", ".join(str(shrink.segment) for shrink in shrinks)
    message = (
        f"client {name}: the manifest shrank without any archive deleted (segments {segments}): archives were "
        f"probably dropped from the list while their data stays; see borg-server audit {name} and "
        "docs/how-to/recover-dropped-archives.md (borg check --repair on a copy finds them again)"
    )
    details = {"count": len(shrinks), "shrinks": [dataclasses.asdict(shrink) for shrink in shrinks]}
    return message, details


def document(
    kind: str, change: str, client: str, server: str, message: str, details: dict, since: str, at: str
) -> dict:
    """Return one alert document; id lets a receiver drop a duplicate delivery."""
    return {
        "id": uuid.uuid4().hex,
        "event": "borg-appliance-alert",
        "alert": kind,
        "state": change,
        "client": client,
        "server": server,
        "message": message,
        "details": details,
        "since": since,
        "at": at,
    }


CHANGES = {"raised": "", "updated": "more: ", "cleared": "cleared: ", "event": "", "failed": "failed: "}
ANSWER_PAGE = "docs/how-to/answer-an-alert.md"
NOTICE_LABELS = LABELS | {"disk": "the disk of the repositories is filling", "compacted": "automatic compaction",
                          "replica_unreachable": "the replica cannot reach its primary"}  # fmt: skip


def emit(documents: list[dict], server: ServerConfig, paths: Paths) -> None:
    """Print each document as one JSON line; with REPORT_URLS store it in the reports' outbox, and with NOTIFY_URLS
    its notification in the notifications' outbox (NOTIFY_ON: alert), for delivery."""
    for alert in documents:
        print(json.dumps(alert, sort_keys=True), file=sys.stdout, flush=True)
        if server.report_urls:
            outbox.put(paths.monitor_outbox, alert, list(server.report_urls))
        if server.notify.wants("alert"):
            notify.queue(paths.notify_outbox, notice(alert), server.notify)


def notice(alert: dict) -> notify.Message:
    """Given an alert document, return the notification a person reads: the title says what and where, the body
    is the alert's message (why, the figures, what to do next), when it started, and the page that answers it."""
    kind, change = alert["alert"], alert["state"]
    what = NOTICE_LABELS.get(kind, kind.replace("_", " "))
    where = f"client {alert['client']} on {alert['server']}" if alert.get("client") else alert["server"]
    title = f"{CHANGES.get(change, '')}{what}: {where}"
    message = alert["message"]
    for prefix in (f"client {alert.get('client')}: ", "server: "):
        message = message.removeprefix(prefix)
    lines = [message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")]
    if change == "cleared":
        lines.append(f"It had held since {alert['since']}; it cleared at {alert['at']}.")
    elif change == "updated":
        lines.append(f"Raised at {alert['since']}; more found at {alert['at']}.")
    else:
        lines.append(f"At {alert['at']}.")
    if change != "cleared":
        lines.append(f"How to answer it: {ANSWER_PAGE}")
    return notify.Message("alert", title, "\n".join(lines), alert["id"])
