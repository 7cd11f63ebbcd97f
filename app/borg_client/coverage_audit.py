"""The coverage audit on this host: read the containers and volumes (read-only, every call bounded), classify them
(coverage.py), put the outcome in the run report, notify each new finding once, and show the table.

The audit never fails a backup: no Docker socket, or a Docker API that does not answer within TIMEOUT seconds, is
an Audit with status `unknown` and the reason. Findings already notified are kept in Paths.coverage_notified; one
that goes away is dropped from it, so it notifies again if it comes back.
"""

from __future__ import annotations

import json
import logging
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from borg_client import container_exec, coverage, journal, notices
from borg_client.config import DOCKER_SOCKET, ClientConfig
from borg_client.coverage import Item
from borg_client.paths import Paths
from borg_common import notify
from borg_common.files import atomic_write
from borg_common.values import human_size

logger = logging.getLogger(__name__)

TIMEOUT = 5  # seconds every Docker API call of the audit may take
SIZES_TIMEOUT = 60  # seconds Docker's disk usage may take (coverage --sizes)
LISTED = 100  # items a report lists (the counts count them all)
OWN_ID = re.compile(r"/containers/([0-9a-f]{64})/")  # in /proc/self/mountinfo: Docker's /etc/hostname and kin


@dataclass(frozen=True)
class Audit:
    """The outcome: audited (items) or unknown (reason)."""

    status: str  # audited | unknown
    items: tuple[Item, ...] = ()
    reason: str | None = None
    scope: str = "host"
    host: str = field(default_factory=socket.gethostname)

    def to_dict(self) -> dict:
        """Return the report's `coverage` object (docs/reference/documents.md)."""
        listed = [item.to_dict() for item in sorted(self.items, key=order)[:LISTED]]
        return {"status": self.status, "reason": self.reason, "scope": self.scope,
                "counts": coverage.counts(self.items) if self.status == "audited" else None,
                "items": listed}  # fmt: skip


def order(item: Item) -> tuple:
    """Findings first, then by container and destination."""
    return (coverage.STATES.index(item.state) if item.state in coverage.FINDINGS else 9, item.container,
            item.destination)  # fmt: skip


def own_id(mountinfo: str, hostname: str, known: set[str]) -> str | None:
    """Given /proc/self/mountinfo, the hostname and the ids of the containers on the host, return this sidecar's id.

    Docker names a container's id in the host paths of its /etc/hostname, /etc/hosts and /etc/resolv.conf; a
    container's default hostname is its id's first 12 characters.
    """
    for found in OWN_ID.findall(mountinfo):
        if found in known:
            return found
    return next((full for full in known if hostname and full.startswith(hostname)), None)


def read_host(config: ClientConfig, with_sizes: bool = False) -> Audit:
    """Given the configuration, audit the host; return an Audit (unknown, and why, when Docker cannot be asked)."""
    scope = config.coverage_scope
    if not container_exec.SOCKET.exists():
        reason = f"the Docker socket {DOCKER_SOCKET} is not mounted into the sidecar: mount it to audit the host"
        return Audit("unknown", reason=reason, scope=scope)
    try:
        import docker

        api = docker.APIClient(base_url=f"unix://{container_exec.SOCKET}", timeout=TIMEOUT)
        containers = api.containers(all=True)
        volumes = api.volumes().get("Volumes") or []
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            mountinfo = ""
        mine = own_id(mountinfo, socket.gethostname(), {c["Id"] for c in containers})
        stop_labels = {mine: config.stop_label or ""} if mine else {}
        image = next((c.get("ImageID") for c in containers if c["Id"] == mine), None)
        for container in containers:  # other sidecars' BACKUP_STOP_LABEL: their environment
            running = container.get("State") == "running"
            if container["Id"] != mine and running and coverage.is_sidecar(container, mine, image):
                stop_labels[container["Id"]] = stop_label_of(api.inspect_container(container["Id"]))
        labels = {volume["Name"]: volume.get("Labels") or {} for volume in volumes}
        items = coverage.classify(containers, labels, mine, scope, config.coverage_ignore, stop_labels)
        if with_sizes:
            items = sized(items)
    except Exception as error:  # a Docker that does not answer, refuses, or says something unexpected
        reason = container_exec.not_answering(error)
        logger.debug("coverage audit failed", exc_info=True)
        return Audit("unknown", reason=reason, scope=scope)
    return Audit("audited", tuple(items), scope=scope)


def stop_label_of(inspected: dict) -> str:
    """Given a sidecar's inspected container, return its BACKUP_STOP_LABEL ("" without)."""
    for pair in (inspected.get("Config") or {}).get("Env") or ():
        if pair.startswith("BACKUP_STOP_LABEL="):
            return pair.partition("=")[2]
    return ""


def sized(items: list[Item]) -> list[Item]:
    """Return the items with the sizes of their volumes, as Docker's disk usage knows them (`docker system df -v`,
    which measures every volume: up to SIZES_TIMEOUT seconds); unchanged, with a warning, when Docker cannot say."""
    from dataclasses import replace

    import docker

    try:
        usage = docker.APIClient(base_url=f"unix://{container_exec.SOCKET}", timeout=SIZES_TIMEOUT).df().get("Volumes")
    except Exception as error:  # slow, or another disk usage operation is running
        logger.warning("coverage: no sizes: Docker's disk usage did not answer (%s)", type(error).__name__)
        return items
    usage = usage or []
    sizes = {volume["Name"]: (volume.get("UsageData") or {}).get("Size") for volume in usage}
    sizes = {name: size for name, size in sizes.items() if isinstance(size, int) and size >= 0}  # -1: not measured
    return [replace(item, size=sizes.get(item.mount)) if item.kind == "volume" else item for item in items]


def audit_run(config: ClientConfig) -> Audit:
    """Audit at a run: log the outcome, notify each new finding once; never raise."""
    try:
        audit = read_host(config)
        if audit.status != "audited":
            logger.warning("coverage unknown: %s", audit.reason)
            return audit
        found = coverage.findings(audit.items)
        for item in found:
            logger.warning("coverage: %s of container %s: %s (%s)", item.what, item.container,
                           coverage.SHOWN_STATES[item.state].lower(), item.why)  # fmt: skip
        logger.info("coverage: %s", ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in coverage.counts(audit.items)
                                               .items()))  # fmt: skip
        notify_new(config, found, audit.host)
        return audit
    except Exception as error:  # an OSError of the state volume, a bug: the backup goes on
        logger.exception("the coverage audit failed")
        return Audit(
            "unknown", reason=f"the audit failed: {type(error).__name__}: {error}", scope=config.coverage_scope
        )


def notify_new(config: ClientConfig, found: list[Item], host: str) -> None:
    """Queue a notification for each finding not notified before; remember the open ones. Without notifications
    for alerts (NOTIFY_URLS, NOTIFY_ON) nothing is remembered: turning them on later tells of every open finding."""
    if not config.notify.wants("alert"):
        return
    path = config.paths.coverage_notified
    try:
        before = set(json.loads(path.read_text()))
    except (OSError, ValueError):
        before = set()
    now = {item.key for item in found}
    for item in found:
        if item.key not in before:
            notify.queue(config.paths.notify_outbox, notices.coverage_message(item, host), config.notify)
    if now != before:
        atomic_write(path, json.dumps(sorted(now)), 0o600)


def open_findings(paths: Paths) -> list[dict]:
    """Given the state volume's paths, return the findings of the last run's audit (unsafe and not covered), for
    the digest: each as in the run report's `coverage.items` (empty when none, or never audited)."""
    for entry in reversed(journal.last_runs(paths)):
        audited = entry.get("coverage") or {}
        if audited.get("status") == "audited":
            return [item for item in audited.get("items") or () if item.get("state") in coverage.FINDINGS]
    return []


def table(audit: Audit) -> str:
    """Return the audit as a person reads it: one line per item, then the counts."""
    rows = [("CONTAINER", "MOUNT", "SIZE", "STATE", "WHY")]
    for item in sorted(audit.items, key=order):
        shown = (
            f"{item.mount} -> {item.destination}"
            if item.kind != "container"
            else f"(in the container) {item.destination}"
        )
        size = human_size(item.size) if item.size is not None else "-"
        rows.append((item.container, shown, size, coverage.SHOWN_STATES[item.state], item.why))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[4]
             for row in rows]  # fmt: skip
    total = coverage.counts(audit.items)
    lines.append("")
    lines.append(f"{len(audit.items)} mount(s) in scope {audit.scope}: {total['covered']} covered, {total['unsafe']} "
                 f"unsafe, {total['left_out']} left out, {total['not_covered']} not covered; see "
                 f"{notices.COVERAGE_PAGE}")  # fmt: skip
    return "\n".join(line.rstrip() for line in lines)


def command_coverage(config: ClientConfig, arguments) -> int:
    """`borg-client coverage`: audit the host now and print the table (or --json; --sizes: the volumes' sizes too, from
    Docker's disk usage, which may take long on a big host); exit 0 when nothing is unsafe or
    not covered, 1 when something is, 2 when the host cannot be seen. Read-only: notifies nothing."""
    import sys

    audit = read_host(config, with_sizes=arguments.sizes)
    if audit.status != "audited":
        print(f"borg-client coverage: cannot see the host: {audit.reason}", file=sys.stderr)
        return 2
    print(json.dumps(audit.to_dict() | {"items": [item.to_dict() for item in audit.items]}, indent=2)
          if arguments.json else table(audit))  # fmt: skip
    return 1 if coverage.findings(audit.items) else 0
