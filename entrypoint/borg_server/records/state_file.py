"""The monitor's state file of each client: its records (records/client_state.py) as JSON, loaded and saved
under a lock.

One JSON file per client (Paths.monitor_state), version 2, readable by root only; a damaged one is
moved aside and the monitor starts afresh.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from borg_common import files
from borg_common.files import atomic_write
from borg_server.records import compaction_state, replica_state
from borg_server.records.client_state import (
    Acknowledgement,
    CheckResult,
    ClientState,
    DeleteGroup,
    ManifestShrink,
    RaisedAlert,
    Refusals,
    SegmentPrint,
    Tampering,
)

logger = logging.getLogger(__name__)

VERSION = 2


def now_text() -> str:
    """Return the time now as the state writes times (ISO 8601, UTC, whole seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def to_json(state: ClientState) -> dict:
    """Given a client's state, return it as the version 2 JSON object."""
    return (
        {
            "version": VERSION,
            "first_seen": state.first_seen,
            "last_backup": state.last_backup,
            "scanned": state.scanned,
            "deletes": [group_json(group) for group in state.deletes],
            "acknowledged": [acknowledgement_json(done) for done in state.acknowledged],
            "segments": {str(number): list(vars(print_).values()) for number, print_ in state.segments.items()},
            "config": state.config_digest,
            "tampering": tampering_json(state.tampering),
            "check": vars(state.check).copy() if state.check else None,
            "manifest": list(state.manifest),
            "manifest_shrinks": [dict(sorted(vars(shrink).items())) for shrink in state.manifest_shrinks],
            "archives": state.archives,
            "alerts": {kind: vars(alert).copy() for kind, alert in state.alerts.items()},
            "retention": compaction_state.to_json(state.retention),
        }
        | ({"replica": replica_state.to_json(state.replica)} if state.replica else {})
        | ({"refused": vars(state.refused).copy()} if state.refused else {})
    )


def group_json(group: DeleteGroup) -> dict:
    """Given a group of deletes, return it as JSON (keys sorted, as the state file keeps them)."""
    return dict(sorted((vars(group) | {"kinds": dict(sorted(group.kinds.items())), "keys": list(group.keys)}).items()))


def acknowledgement_json(done: Acknowledgement) -> dict:
    return dict(sorted(vars(done).items()))


def tampering_json(tampering: Tampering | None) -> dict | None:
    """Given tampering, return it as JSON: lists of segment numbers; unreadable only when it is known."""
    if tampering is None:
        return None
    document = {"changed": list(tampering.changed), "truncated": list(tampering.truncated),
                "removed": list(tampering.removed), "config": tampering.config}  # fmt: skip
    unreadable = {} if tampering.unreadable is None else {"unreadable": tampering.unreadable}
    return document | unreadable | {"seen_at": tampering.seen_at}


def tampering_from_json(document: dict | None) -> Tampering | None:
    """Given tampering as JSON (see tampering_json), return it; raise TypeError if it holds other fields."""
    lists = {kind: tuple(document.get(kind, ())) for kind in ("changed", "truncated", "removed")} if document else {}
    return None if document is None else Tampering(**document | lists)


def from_json(document: object, now: str) -> ClientState:
    """Given a version 2 JSON object, return the state it holds (fields it lacks get their defaults).

    Raise ValueError if it is not one.
    """
    if not isinstance(document, dict):
        raise ValueError(f"a JSON {type(document).__name__}, not an object")
    if document.get("version") != VERSION:
        raise ValueError(f"version {document.get('version')}, not {VERSION}")
    try:
        return ClientState(
            first_seen=document.get("first_seen") or now,
            last_backup=document.get("last_backup"),
            scanned=document.get("scanned"),
            deletes=[
                DeleteGroup(**group | {"keys": tuple(group["keys"]), "kinds": dict(group["kinds"])})
                for group in document.get("deletes", [])
            ],
            acknowledged=[Acknowledgement(**done) for done in document.get("acknowledged", [])],
            segments={int(number): SegmentPrint(*values) for number, values in document.get("segments", {}).items()},
            config_digest=document.get("config"),
            tampering=tampering_from_json(document.get("tampering")),
            check=CheckResult(**document["check"]) if document.get("check") else None,
            manifest=tuple(document.get("manifest", (None, None))),
            manifest_shrinks=[ManifestShrink(**shrink) for shrink in document.get("manifest_shrinks", [])],
            archives=None if document.get("archives") is None else [str(key) for key in document["archives"]],
            alerts={kind: RaisedAlert(**alert) for kind, alert in document.get("alerts", {}).items()},
            retention=compaction_state.from_json(document.get("retention")),
            replica=replica_state.from_json(document.get("replica")),
            refused=Refusals(**document["refused"]) if document.get("refused") else None,
        )
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"unexpected contents: {error!r}") from None


def load(path: Path) -> ClientState:
    """Given a client's state file, return its state (a new one if the file does not exist or is damaged).

    A damaged file is moved aside to <name>.damaged, so the monitor starts afresh and nothing is lost.
    """
    try:
        return from_json(json.loads(files.read_regular(path).decode(errors="replace")), now_text())
    except FileNotFoundError:
        return ClientState(first_seen=now_text())
    except (OSError, ValueError) as error:  # damaged, or a directory, symlink or device in its place
        damaged = path.with_suffix(".damaged")
        with contextlib.suppress(OSError):
            path.replace(damaged)  # renames the entry itself, never what a symlink points at
        logger.error("monitor state %s is damaged (%s); moved to %s, starting afresh", path, error, damaged)
        return ClientState(first_seen=now_text())


def save(path: Path, state: ClientState) -> None:
    """Write the client's state file atomically, readable by root only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(to_json(state), indent=1, sort_keys=True), 0o600)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[ClientState]:
    """Hold the client's state lock; yield its state and save it afterwards (unless an exception escapes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with files.held_lock(path.with_suffix(".lock")):
        state = load(path)
        yield state
        save(path, state)
