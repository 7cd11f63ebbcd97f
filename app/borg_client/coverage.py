"""What no backup covers: every named volume, bind mount and database container on the host, classified.

Pure functions over the dicts the Docker API returns (GET /containers/json: Id, Names, Image, ImageID, Labels,
State, Mounts; GET /volumes: Name, Labels); reading them from the host is coverage_audit.py. Each mount of a
container in COVERAGE_SCOPE is one Item in one of four states:

- covered: mounted under /backup of this sidecar or of another sidecar running this image (read from that
  container's mounts; a bind mount when its host path or a parent of it is), or a database dumped by its label;
- unsafe: a database's data directory copied while it runs: mounted under /backup, neither dumped
  (borg-appliance.dump) nor stopped by a sidecar's BACKUP_STOP_LABEL;
- left_out: labelled borg-appliance.skip (the container or the volume; the label's value is the reason), or
  matched by COVERAGE_IGNORE;
- not_covered: everything else.

Never items: the appliance's own containers (sidecars, servers), tmpfs, the Docker socket, the host's time
zone, /run/secrets, /proc, /sys, /dev, and anonymous volumes of stopped or one-off containers (NOT_FINDINGS).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from borg_client.dumps import LABEL as DUMP_LABEL
from borg_client.dumps import project_of
from borg_client.swarm import matches

SKIP_LABEL = "borg-appliance.skip"
SOURCES = "/backup"
STATES = ("covered", "unsafe", "left_out", "not_covered")
FINDINGS = ("unsafe", "not_covered")
SHOWN_STATES = {"covered": "covered", "unsafe": "UNSAFE", "left_out": "left out", "not_covered": "NOT COVERED"}
APPLIANCE_IMAGES = ("borg-appliance-client", "borg-appliance-server")  # never audited: they are the backup
TITLE_LABEL = "org.opencontainers.image.title"  # the images' own label: still there when their tag has moved on
ONE_OFF_LABEL = "com.docker.compose.oneoff"  # docker compose run
DATABASES = {"postgres": "PostgreSQL", "mariadb": "MariaDB", "mysql": "MySQL", "mongodb": "MongoDB",
             "redis": "Redis", "sqlite": "SQLite"}  # fmt: skip
IMAGE_WORDS = (("postgis", "postgres"), ("timescale", "postgres"), ("postgres", "postgres"), ("mariadb", "mariadb"),
               ("mysql", "mysql"), ("percona", "mysql"), ("mongo", "mongodb"), ("redis", "redis"),
               ("valkey", "redis"))  # fmt: skip
DATA_PATHS = {"postgres": "/var/lib/postgresql", "mariadb": "/var/lib/mysql", "mysql": "/var/lib/mysql",
              "mongodb": "/data/db", "redis": "/data"}  # fmt: skip
FOUND_BY_PATH = ("postgres", "mariadb", "mongodb")  # a mount at their path says database whatever the image
SQLITE_FILE = re.compile(r"\.(sqlite3?|db3?)$")
NOT_FINDINGS = (  # destinations (and their insides) that are never data: docs/reference/coverage.md
    "/var/run/docker.sock", "/run/docker.sock", "/etc/localtime", "/etc/timezone", "/etc/hostname", "/etc/hosts",
    "/etc/resolv.conf", "/run/secrets", "/proc", "/sys", "/dev",
)  # fmt: skip
ANONYMOUS = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Item:
    """One mount of one container (or a database container's own layer) and whether a backup covers it."""

    container: str
    kind: str  # volume | bind | container (a database keeping its data in the container itself)
    mount: str  # the volume's name, the bind mount's host path, or "-"
    destination: str  # where the container sees it
    state: str  # one of STATES
    why: str
    database: str | None = None  # one of DATABASES when this is a database's data
    size: int | None = None  # bytes, when the audit could tell cheaply

    @property
    def key(self) -> str:
        """What stays the same while the finding does (a re-created container keeps its name and mount)."""
        return f"{self.state}|{self.container}|{self.kind}:{self.mount}"

    @property
    def what(self) -> str:
        """Return how a person names it: `volume app_uploads`, `bind mount /srv/app`, `container db`."""
        return {"volume": f"volume {self.mount}", "bind": f"bind mount {self.mount}"}.get(
            self.kind, f"container {self.container}"
        )

    def to_dict(self) -> dict:
        return {"container": self.container, "kind": self.kind, "mount": self.mount, "destination": self.destination,
                "state": self.state, "why": self.why, "database": self.database, "size": self.size}  # fmt: skip


@dataclass(frozen=True)
class Sidecars:
    """What the sidecars on the host back up: volumes and host paths under /backup, and the labels they stop."""

    volumes: Mapping[str, str]  # volume name -> the sidecar that mounts it under /backup
    paths: Mapping[str, str]  # host path -> the sidecar
    stop_labels: tuple[str, ...]


def name_of(container: Mapping) -> str:
    """Given a container as GET /containers/json lists it, return its name."""
    names = container.get("Names") or [container.get("Id", "")[:12]]
    return names[0].lstrip("/")


def runs(container: Mapping, images: tuple[str, ...], own_image: str | None) -> bool:
    """Return whether the container runs this sidecar's image, or one of images (by its title label or its name)."""
    image = (container.get("Image") or "").rpartition("/")[2]
    title = (container.get("Labels") or {}).get(TITLE_LABEL, "")
    same = own_image is not None and container.get("ImageID") == own_image
    return same or title in images or image.startswith(images)


def is_appliance(container: Mapping, own_image: str | None) -> bool:
    """Return whether the container runs this image (a sidecar) or another of the appliance's (a server)."""
    return runs(container, APPLIANCE_IMAGES, own_image)


def is_sidecar(container: Mapping, own_id: str | None, own_image: str | None) -> bool:
    """Return whether the container is this sidecar or another running this image (any version of it)."""
    return container.get("Id") == own_id or runs(container, APPLIANCE_IMAGES[:1], own_image)


def under(path: str, top: str) -> bool:
    """Return whether path is top or inside it."""
    return path == top or path.startswith(top.rstrip("/") + "/")


def sidecars(containers: Iterable[Mapping], own_id: str | None, stop_labels: Mapping[str, str]) -> Sidecars:
    """Given every container, this sidecar's id and the BACKUP_STOP_LABEL of each sidecar (by id), return what the
    running sidecars (and this one) mount under /backup and the labels they stop."""
    containers = list(containers)
    own_image = next((c.get("ImageID") for c in containers if c.get("Id") == own_id), None)
    volumes: dict[str, str] = {}
    paths: dict[str, str] = {}
    for container in sorted(containers, key=lambda c: (is_one_off(c), name_of(c))):  # a service before `compose run`
        running = container.get("State") == "running" or container.get("Id") == own_id
        if not running or not is_sidecar(container, own_id, own_image):
            continue
        for mount in container.get("Mounts") or ():
            if not under(mount.get("Destination", ""), SOURCES):
                continue
            if mount.get("Type") == "volume" and mount.get("Name"):
                volumes.setdefault(mount["Name"], name_of(container))
            elif mount.get("Type") == "bind" and mount.get("Source"):
                paths.setdefault(mount["Source"], name_of(container))
    return Sidecars(volumes, paths, tuple(sorted({label for label in stop_labels.values() if label})))


def in_scope(labels: Mapping[str, str], scope: str, own_project: str | None) -> bool:
    """Given a container's labels, COVERAGE_SCOPE (host, project or a label) and this sidecar's compose project or
    stack (`key=value`, or None), return whether the audit looks at it."""
    if scope == "host":
        return True
    if scope == "project":
        return project_of(labels) == own_project
    return matches(labels, scope)


def database_kind(image: str, destination: str | None = None) -> str | None:
    """Given a container's image (and a mount's destination), return the database it looks like, or None."""
    if destination is not None:
        if SQLITE_FILE.search(destination):
            return "sqlite"
        return next((kind for kind in FOUND_BY_PATH if under(destination, DATA_PATHS[kind])), None)
    name = image.rpartition("/")[2].partition("@")[0].partition(":")[0].lower()
    return next((kind for word, kind in IMAGE_WORDS if word in name), None)


def not_a_finding(container: Mapping, mount: Mapping) -> bool:
    """Return whether a mount is never reported: not a volume or bind mount, a socket, the time zone, a secret, the
    kernel's, or an anonymous volume of a stopped or one-off container."""
    if mount.get("Type") not in ("volume", "bind"):
        return True
    destination = mount.get("Destination", "")
    if any(under(destination, path) for path in NOT_FINDINGS):
        return True
    if mount.get("Type") == "bind" and any(under(mount.get("Source", ""), path) for path in ("/proc", "/sys", "/dev")):
        return True
    anonymous = mount.get("Type") == "volume" and bool(ANONYMOUS.fullmatch(mount.get("Name") or ""))
    return anonymous and (container.get("State") != "running" or is_one_off(container))


def is_one_off(container: Mapping) -> bool:
    """Return whether a container is a one-off run of a compose service (`docker compose run`)."""
    return (container.get("Labels") or {}).get(ONE_OFF_LABEL, "").lower() == "true"


def ignored(patterns: Iterable[str], *names: str) -> str | None:
    """Given COVERAGE_IGNORE's patterns and the names of a mount (volume or path, container), return the first pattern
    that matches one of them, or None."""
    return next((p for p in patterns for name in names if name and fnmatch.fnmatchcase(name, p)), None)


def covering(mount: Mapping, found: Sidecars) -> str | None:
    """Return the sidecar that mounts this volume or host path (or a parent of it) under /backup, or None."""
    if mount.get("Type") == "volume":
        return found.volumes.get(mount.get("Name") or "")
    source = mount.get("Source", "")
    return next((sidecar for path, sidecar in sorted(found.paths.items()) if under(source, path)), None)


def skip_reason(labels: Mapping[str, str] | None) -> str | None:
    """Given labels, return the reason borg-appliance.skip gives ("no reason given" when empty), or None."""
    if labels is None or SKIP_LABEL not in labels:
        return None
    return labels[SKIP_LABEL].strip() or "no reason given"


def classify(containers: Iterable[Mapping], volume_labels: Mapping[str, Mapping[str, str]], own_id: str | None,
             scope: str = "host", ignore: Iterable[str] = (), stop_labels: Mapping[str, str] | None = None,
             ) -> list[Item]:  # fmt: skip
    """Given every container and volume label on the host, this sidecar's container id, COVERAGE_SCOPE,
    COVERAGE_IGNORE's patterns and each sidecar's BACKUP_STOP_LABEL (by container id), return an Item per audited
    mount, by container and destination."""
    containers = list(containers)
    found = sidecars(containers, own_id, stop_labels or {})
    own = next((c for c in containers if c.get("Id") == own_id), {})
    own_project, own_image = project_of(own.get("Labels") or {}), own.get("ImageID")
    items = []
    for container in containers:
        labels = container.get("Labels") or {}
        if is_appliance(container, own_image) or container.get("Id") == own_id:
            continue
        if not in_scope(labels, scope, own_project):
            continue
        items += container_items(container, volume_labels, found, list(ignore))
    return sorted(items, key=lambda item: (item.container, item.destination))


def container_items(container: Mapping, volume_labels: Mapping[str, Mapping[str, str]], found: Sidecars,
                    ignore: list[str]) -> list[Item]:  # fmt: skip
    """Return the Items of one container in scope."""
    name, labels = name_of(container), container.get("Labels") or {}
    image_kind = database_kind(container.get("Image") or "")
    dumped = DUMP_LABEL in labels
    stopped = next((label for label in found.stop_labels if matches(labels, label)), None)
    skipped = skip_reason(labels)
    items, data_seen = [], False
    for mount in container.get("Mounts") or ():
        if not_a_finding(container, mount):
            continue
        kind, destination = mount["Type"], mount.get("Destination", "")
        identity = mount.get("Name") if kind == "volume" else mount.get("Source", "")
        database = database_kind("", destination)
        if database is None and image_kind and under(destination, DATA_PATHS[image_kind]):
            database = image_kind
        data_seen = data_seen or database is not None
        item = Item(name, kind, identity or "-", destination, "not_covered", "", database)
        items.append(judge(item, mount, volume_labels, found, ignore, skipped, dumped, stopped))
    if image_kind and not data_seen:  # a database whose data lives in the container's own layer
        item = Item(name, "container", "-", DATA_PATHS[image_kind], "not_covered", "", image_kind)
        items.append(judge(item, {}, volume_labels, found, ignore, skipped, dumped, stopped))
    return items


def judge(item: Item, mount: Mapping, volume_labels: Mapping[str, Mapping[str, str]], found: Sidecars,
          ignore: list[str], skipped: str | None, dumped: bool, stopped: str | None) -> Item:  # fmt: skip
    """Given an Item (state not decided) and what is known of its container, return it with its state and why."""
    from dataclasses import replace

    volume_skip = skip_reason(volume_labels.get(item.mount)) if item.kind == "volume" else None
    pattern = ignored(ignore, item.mount if item.kind != "container" else "", item.container)
    sidecar = covering(mount, found) if mount else None
    if skipped or volume_skip:
        on = "container" if skipped else "volume"
        return replace(item, state="left_out", why=f"{SKIP_LABEL} on the {on}: {skipped or volume_skip}")
    if pattern:
        return replace(item, state="left_out", why=f"COVERAGE_IGNORE matches {pattern}")
    if item.database is None:
        if sidecar:
            return replace(item, state="covered", why=f"under {SOURCES} of sidecar {sidecar}")
        return replace(item, state="not_covered", why=f"no sidecar mounts it under {SOURCES}")
    database = DATABASES[item.database]
    if dumped:
        return replace(item, state="covered", why=f"{database} dumped ({DUMP_LABEL} on the container)")
    if sidecar and stopped:
        return replace(item, state="covered", why=f"under {SOURCES} of sidecar {sidecar}, copied while stopped "
                                                  f"(label {stopped})")  # fmt: skip
    if sidecar:
        why = (f"{database} data copied by sidecar {sidecar} while the database runs: neither dumped ({DUMP_LABEL}) "
               "nor stopped (BACKUP_STOP_LABEL)")  # fmt: skip
        return replace(item, state="unsafe", why=why)
    if item.kind == "container":
        return replace(item, state="not_covered", why=f"{database} keeps its data in the container itself, not dumped "
                                                      f"({DUMP_LABEL})")  # fmt: skip
    return replace(item, state="not_covered", why=f"{database} data neither dumped ({DUMP_LABEL}) nor under {SOURCES} "
                                                  "of any sidecar")  # fmt: skip


def counts(items: Iterable[Item]) -> dict[str, int]:
    """Return how many items are in each state."""
    items = list(items)
    return {state: sum(item.state == state for item in items) for state in STATES}


def findings(items: Iterable[Item]) -> list[Item]:
    """Return the items that need a person: unsafe and not covered."""
    return [item for item in items if item.state in FINDINGS]
