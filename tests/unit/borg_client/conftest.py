"""Fixtures for the sidecar's tests: a pairing export, a passphrase file, a config; a fake borg, clock and pings."""

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from borg_client import container_exec, preflight, quiesce, report, swarm
from borg_client.config import load
from borg_common import delivery, private_key, process, reports
from tests.unit.borg_client.samples import REPO_URL


@pytest.fixture(autouse=True)
def no_docker_socket(monkeypatch, tmp_path):
    """The host's Docker socket is never seen: a run finds no containers to dump."""
    monkeypatch.setattr(container_exec, "SOCKET", tmp_path / "no-docker.sock")


@pytest.fixture(autouse=True)
def tmpfs(monkeypatch, tmp_path):
    """Private copies of a key (borg_common.private_key) go to a temporary directory, not the host's /dev/shm."""
    directory = tmp_path / "shm"
    directory.mkdir()
    monkeypatch.setattr(private_key, "TMPFS", directory)
    return directory


@pytest.fixture
def pairing(tmp_path):
    """A pairing directory with the files the server exports for client web."""
    directory = tmp_path / "pairing"
    directory.mkdir()
    (directory / "id_ed25519").write_text("key")
    (directory / "id_ed25519").chmod(0o600)  # as the server exports it
    (directory / "known_hosts").write_text("srv ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID26CUVU\n")
    (directory / "repo_url").write_text(REPO_URL + "\n")
    (directory / "client_name").write_text("web\n")
    return directory


@pytest.fixture
def passphrase_file(tmp_path):
    path = tmp_path / "passphrase"
    path.write_text("correct horse battery staple\n")
    return path


@pytest.fixture
def repo_url():
    return REPO_URL


@pytest.fixture
def config(pairing, passphrase_file, tmp_path):
    """Client web paired with the server, its state and sources in a temporary directory."""
    state = tmp_path / "state"
    state.mkdir()
    loaded = load({"BORG_PASSPHRASE_FILE": str(passphrase_file)}, pairing=pairing)
    return dataclasses.replace(loaded, state=state, sources=tmp_path / "backup")


START = datetime(2024, 5, 6, 3, 0, 0, tzinfo=UTC)
END = START + timedelta(seconds=42.5)


@pytest.fixture
def clock(monkeypatch):
    """Reports start at START and finish at END (42.5 s later)."""
    times = iter([START])
    monkeypatch.setattr(report, "now", lambda: next(times, END))
    return START, END


@dataclass
class FakeBorg:
    """Stands in for the borg process: answers each subcommand from a script, records every argv.

    Each answer is (exit code, --json stdout, --log-json lines); an unscripted command exits 0
    silently. `key export` writes its target file, as borg does. With raises set, starting borg
    raises it (as process.run raises OSError when borg cannot be started).
    """

    answers: dict[str, list[tuple[int, str, list[str]]]] = field(default_factory=dict)
    commands: list[list[str]] = field(default_factory=list)
    environments: list[dict[str, str]] = field(default_factory=list)  # borg's environment, one per command
    raises: BaseException | None = None
    during: Callable[[], None] | None = None

    def answer(self, subcommand: str, returncode: int = 0, stdout: str = "", lines: tuple[str, ...] = ()) -> None:
        self.answers.setdefault(subcommand, []).append((returncode, stdout, list(lines)))

    def run(self, argv, *, render_line=None, env=None, **_options) -> process.Result:
        self.commands.append(argv)
        self.environments.append(env or {})
        if self.raises is not None:
            raise self.raises
        if self.during is not None:
            self.during()
        subcommand = argv[4]
        scripted = self.answers.get(subcommand)
        returncode, stdout, lines = scripted.pop(0) if scripted else (0, "", [])
        if subcommand == "key":
            Path(argv[-1]).write_text("BORG_KEY\n")
        tail = [rendered for rendered in map(render_line or str, lines) if rendered is not None]
        return process.Result(returncode=returncode, stdout=stdout, tail=tail)


def log_line(level: str, message: str, msgid: str | None = None) -> str:
    """Return one line of borg's --log-json output for a log message."""
    entry = {"type": "log_message", "time": 1715000000.0, "levelname": level, "name": "borg.archiver"}
    return json.dumps(entry | {"message": message} | ({"msgid": msgid} if msgid else {}))


def file_line(status: str, path: str) -> str:
    """Return one line of borg's --log-json output for a file borg create saw."""
    return json.dumps({"type": "file_status", "status": status, "path": path})


@pytest.fixture
def fake_borg(monkeypatch):
    """Borg commands answered by a FakeBorg instead of running (no process, no network)."""
    fake = FakeBorg()
    monkeypatch.setattr(process, "run", fake.run)
    return fake


@pytest.fixture
def lines():
    """Makers of borg --log-json lines: lines.log(level, message, msgid), lines.file(status, path)."""
    return SimpleNamespace(log=log_line, file=file_line)


@pytest.fixture
def pings(monkeypatch):
    """Record Healthchecks pings (url, body) instead of sending them."""
    sent = []
    monkeypatch.setattr(delivery, "ping", lambda url, body="", timeout=10.0: sent.append((url, body)) or True)
    return sent


@pytest.fixture
def run_config(config, monkeypatch, fake_borg, pings, clock):
    """Client web ready for a run: pre-flight passes, reports wait in the outbox, pings and borg are fakes."""
    monkeypatch.setattr(preflight, "sources", lambda config: ["/backup/data"])
    monkeypatch.setattr(preflight, "check_host_key", lambda config: None)
    monkeypatch.setattr(reports, "flush", lambda *args, **kwargs: None)  # nothing leaves the outbox
    return dataclasses.replace(
        config, report_urls=("http://receiver:8080/report",), healthchecks_url="http://hc:8000/ping/abc"
    )


class FakeContainer:
    """A container as the docker library shows it: id, name, labels, stop and start (recorded as events)."""

    def __init__(self, name: str, daemon: "FakeDocker", labels: dict | None = None):
        self.id, self.name, self.daemon = f"id-{name}", name, daemon
        self.labels = labels or {"backup.stop": ""}

    def stop(self, timeout):
        self.daemon.events.append(f"stop {self.name}")

    def start(self):
        if self.name in self.daemon.broken:
            raise RuntimeError(f"{self.name} cannot start")
        self.daemon.events.append(f"start {self.name}")


class FakeService:
    """A swarm service as the docker library shows it: id, name, attrs (Spec), scale and tasks (one per replica)."""

    def __init__(self, name: str, daemon: "FakeDocker", replicas: int = 2, labels=None, container_labels=None):
        self.id, self.name, self.daemon = f"service-{name}", name, daemon
        mode = {"Global": {}} if replicas is None else {"Replicated": {"Replicas": replicas}}
        template = {"ContainerSpec": {"Labels": container_labels or {}}}
        self.attrs = {"Spec": {"Name": name, "Labels": labels or {}, "Mode": mode, "TaskTemplate": template}}
        self.stopping = 0  # looks at tasks() that still find a task running after scaling to 0

    def scale(self, replicas: int):
        if self.name in self.daemon.broken:
            raise RuntimeError(f"{self.name} cannot be scaled")
        self.daemon.events.append(f"scale {self.name} {replicas}")
        self.attrs["Spec"]["Mode"]["Replicated"]["Replicas"] = replicas
        self.stopping = 2 if replicas == 0 else 0

    def tasks(self):
        self.daemon.events.append(f"tasks {self.name}")
        running = self.attrs["Spec"]["Mode"]["Replicated"]["Replicas"] or (1 if self.stopping else 0)
        self.stopping = max(0, self.stopping - 1)
        return [{"Status": {"State": "running"}}] * running + [{"Status": {"State": "shutdown"}}]


class FakeServices:
    """The daemon's services (client.services)."""

    def __init__(self, daemon: "FakeDocker"):
        self.daemon, self.known = daemon, {}

    def add(self, name: str, **fields) -> FakeService:
        self.known[name] = FakeService(name, self.daemon, **fields)
        return self.known[name]

    def list(self):
        return list(self.known.values())

    def get(self, service_id):
        for service in self.known.values():
            if service.id == service_id:
                return service
        raise NotFound(f"404 Client Error: service {service_id} not found")


class FakeDocker:
    """A Docker daemon with containers app and db running, label backup.stop; broken ones fail to start.

    swarm: None (no swarm), "manager" or "worker"; services (FakeServices) are a manager's.
    """

    def __init__(self):
        self.events: list[str] = []
        self.broken: set[str] = set()
        self.running = {name: FakeContainer(name, self) for name in ("app", "db")}
        self.known = dict(self.running)
        self.containers = self
        self.swarm: str | None = None
        self.services = FakeServices(self)

    def info(self):
        state = "active" if self.swarm else "inactive"
        return {"Swarm": {"LocalNodeState": state, "ControlAvailable": self.swarm == "manager"}}

    def add_task(self, service: str, name: str) -> FakeContainer:
        """Run a container of a swarm service, labelled for the backup (as `labels` in a stack file puts it)."""
        labels = {"backup.stop": "", "com.docker.swarm.service.id": f"service-{service}",
                  "com.docker.swarm.service.name": service}  # fmt: skip
        self.running[name] = self.known[name] = FakeContainer(name, self, labels)
        return self.running[name]

    def list(self, filters):
        assert filters["status"] == "running"
        key, _, value = filters["label"].partition("=")
        return [c for c in self.running.values() if key in c.labels and c.labels[key] == (value or c.labels[key])]

    def get(self, container_id):
        for container in self.known.values():
            if container.id == container_id:
                return container
        raise NotFound(f"404 Client Error: No such container: {container_id}")


class NotFound(Exception):
    """What the docker library raises for a container that does not exist (docker.errors.NotFound)."""

    status_code = 404


@pytest.fixture
def docker_daemon(monkeypatch):
    """The sidecar's Docker client talks to a FakeDocker (no socket)."""
    daemon = FakeDocker()
    monkeypatch.setattr(quiesce, "docker_client", lambda: daemon)
    monkeypatch.setattr(swarm, "POLL", 0)  # a service's tasks stop at the fake's next look
    return daemon
