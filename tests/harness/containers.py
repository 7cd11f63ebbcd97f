"""A thin, explicit layer over the docker CLI for scenarios and the bench: unique names, polling, cleanup."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

# IMAGE_TAG lets several work trees test their own builds side by side (make images IMAGE_TAG=…).
IMAGE_TAG = os.environ.get("IMAGE_TAG", "latest")
SERVER_IMAGE = f"borg-appliance-server:{IMAGE_TAG}"
CLIENT_IMAGE = f"borg-appliance-client:{IMAGE_TAG}"
POSTGRES_IMAGE = f"borg-appliance-test-postgres:{IMAGE_TAG}"  # tests/images, made by make test-images
MARIADB_IMAGE = f"borg-appliance-test-mariadb:{IMAGE_TAG}"
CHROMIUM_IMAGE = f"borg-appliance-test-chromium:{IMAGE_TAG}"  # tests/images/chromium, made by make browser-image
NTFY_IMAGE = f"borg-appliance-test-ntfy:{IMAGE_TAG}"  # the notification scenarios' receivers (tests/images)
SMTP_IMAGE = f"borg-appliance-test-smtp:{IMAGE_TAG}"
BASE_IMAGE = "borg-appliance-base:trixie"
LABEL = "borg-appliance-test"
# Docker 20.10 probes first one interval after the start (no --health-start-interval): the images' own
# intervals (15 s, 30 s) suit production; scenarios probe every 2 s (a probe: ~0.04 s of CPU plus docker exec).
# The bench keeps the images' own (Sandbox.health_interval None; why: bench.modes.bench_sandbox).
HEALTH_INTERVAL = "2s"


def docker(
    *args: str, check: bool = True, input: str | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run `docker args…`; return the finished process (text), raising on failure when check is set."""
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, input=input, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def wait_until(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.5) -> object:
    """Poll condition until it returns something truthy; return that, or fail naming what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Sandbox:
    """Names every container, network and volume of one test uniquely, and removes them all."""

    prefix: str = field(default_factory=lambda: f"bat-{uuid.uuid4().hex[:8]}")
    memory: bool = False  # volumes in memory, tmpfs (the benchmark: the software measured, not the disk)
    health_interval: str | None = HEALTH_INTERVAL  # None: the images' own, as in production (the benchmark)

    def name(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def network(self, role: str = "net") -> str:
        name = self.name(role)
        docker("network", "create", "--label", f"{LABEL}={self.prefix}", name)
        return name

    def volume(self, role: str, memory: bool | None = None) -> str:
        """Create a volume for role; in memory (default: the sandbox's), it lasts only while a container uses it."""
        name = self.name(role)
        memory = self.memory if memory is None else memory
        tmpfs = ["--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=8g"] if memory else []
        docker("volume", "create", "--label", f"{LABEL}={self.prefix}", *tmpfs, name)
        return name

    def run(
        self,
        role: str,
        image: str,
        options: list[str],
        command: list[str] = (),
        *,
        detach: bool = True,
        check: bool = True,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess:
        """docker run image as a container named for role, labelled for cleanup; --rm unless detached.

        A detached container of the appliance's images is probed every health_interval (unless options say
        otherwise), so a scenario sees it healthy within seconds, not after the image's production interval."""
        mode = ["-d"] if detach else ["--rm"]
        told = any(option.startswith(("--health", "--no-healthcheck")) for option in options)
        if detach and self.health_interval and image in (SERVER_IMAGE, CLIENT_IMAGE) and not told:
            mode.append(f"--health-interval={self.health_interval}")
        argv = ["run", *mode, "--name", self.name(role), "--label", f"{LABEL}={self.prefix}", *options, image, *command]
        return docker(*argv, check=check, timeout=timeout)

    def log_tails(self, lines: int) -> list[tuple[str, str]]:
        """Return (name, the last lines of its log) for each of the sandbox's containers that still exists."""
        found = docker("ps", "-a", "--format", "{{.Names}}", "--filter", f"label={LABEL}={self.prefix}", check=False)
        tails = []
        for name in sorted(found.stdout.split()):
            result = docker("logs", "--tail", str(lines), name, check=False)
            tails.append((name, result.stdout + result.stderr))
        return tails

    def cleanup(self) -> None:
        label = f"label={LABEL}={self.prefix}"
        containers = docker("ps", "-aq", "--filter", label, check=False).stdout.split()
        if containers:
            docker("rm", "-f", "-v", *containers, check=False)
        for kind in ("network", "volume"):
            names = docker(kind, "ls", "-q", "--filter", label, check=False).stdout.split()
            if names:
                docker(kind, "rm", *names, check=False)


def health(container: str) -> str:
    result = docker("inspect", "-f", "{{json .State}}", container, check=False)
    if result.returncode != 0:
        return "gone"
    state = json.loads(result.stdout)
    if not state.get("Running"):
        return "exited"
    return state.get("Health", {}).get("Status", "none")


def logs(container: str) -> str:
    result = docker("logs", container, check=False)
    return result.stdout + result.stderr


def exec_(container: str, *command: str, check: bool = True, user: str | None = None, timeout: float = 600):
    options = ["-u", user] if user else []
    return docker("exec", *options, container, *command, check=check, timeout=timeout)
