"""The quick start: compose.yaml as shipped brings up a server, an app and a sidecar that back up."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.integration.docker_helpers import IMAGE_TAG, docker, health, wait_until

ROOT = Path(__file__).resolve().parents[2]


def compose_command() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor docker-compose is installed")


@pytest.fixture
def project(tmp_path):
    """compose.yaml in a directory of its own, with a fresh passphrase secret and a unique project name."""
    shutil.copy(ROOT / "compose.yaml", tmp_path / "compose.yaml")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "borg_passphrase").write_text(uuid.uuid4().hex + "\n")
    name = f"bat{uuid.uuid4().hex[:8]}"
    base = [*compose_command(), "-p", name, "-f", str(tmp_path / "compose.yaml")]
    env = {"BASE_IMAGE": "borg-appliance-base:trixie", "IMAGE_TAG": IMAGE_TAG, "PATH": "/usr/local/bin:/usr/bin:/bin"}

    def compose(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([*base, *args], capture_output=True, text=True, env=env, check=False, timeout=600)
        if check and result.returncode != 0:
            raise AssertionError(f"compose {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    yield compose
    compose("down", "--volumes", "--remove-orphans", check=False)


def test_quick_start_backs_up_the_sample_app_without_manual_steps(project):
    project("up", "-d")
    server = project("ps", "-q", "borg-server").stdout.strip()
    sidecar = project("ps", "-q", "backup-app").stdout.strip()
    for container in (server, sidecar):
        wait_until(lambda c=container: health(c) == "healthy", 120, f"{container} to become healthy")

    archives = wait_until(
        lambda: json.loads(project("exec", "-T", "backup-app", "borg-client", "list", "--json").stdout or "{}").get(
            "archives"
        ),
        120,
        "the first archive",
        interval=3,
    )
    assert archives[0]["name"].startswith("app-")

    listing = project("exec", "-T", "backup-app", "borg-client", "list", archives[0]["name"]).stdout
    assert "backup/app-data/journal.txt" in listing
    pinned = docker("exec", sidecar, "cat", "/pairing/known_hosts").stdout
    assert pinned.startswith("borg-server ssh-ed25519 ")

    # Least privilege as shipped: no process gains privileges, and each service keeps only the
    # capabilities compose.yaml names; a restore (owners, modes) still works with them.
    for container, kept in (
        (server, {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETGID",
                  "CAP_SETUID", "CAP_SYS_CHROOT"}),
        (sidecar, {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID"}),
    ):  # fmt: skip
        host_config = json.loads(docker("inspect", container).stdout)[0]["HostConfig"]
        assert host_config["SecurityOpt"] == ["no-new-privileges:true"]
        assert host_config["CapDrop"] == ["ALL"]
        assert {f"CAP_{name}" if not name.startswith("CAP_") else name for name in host_config["CapAdd"]} == kept
        status = docker("exec", container, "cat", "/proc/1/status").stdout
        assert "NoNewPrivs:\t1" in status
    restored = project("exec", "-T", "backup-app", "sh", "-c",
                       f"borg-client restore {archives[0]['name']} --target /tmp/restore && "
                       "stat -c '%u %a' /tmp/restore/backup/app-data/journal.txt", check=False)  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.strip().splitlines()[-1] == "0 644"
