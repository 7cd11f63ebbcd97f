"""The quick start: compose.yaml as shipped brings up a server, an app and a sidecar that back up."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.harness.containers import HEALTH_INTERVAL, IMAGE_TAG, docker, health, logs, wait_until

ROOT = Path(__file__).resolve().parents[2]
# compose.yaml as shipped, but probed as often as the other scenarios probe (HEALTH_INTERVAL): the sidecar
# waits for a healthy server (depends_on), and the image's 15 s interval would be waited out at every start.
PROBES = f"""
services:
  borg-server:
    healthcheck:
      interval: {HEALTH_INTERVAL}
  backup-app:
    healthcheck:
      interval: {HEALTH_INTERVAL}
"""


def compose_command() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor docker-compose is installed")


def archives_of(project) -> list[dict]:
    """The sample app's archives; none while its first run has not made the repository yet (the sidecar is
    healthy from its start, and its first run may come a few seconds later)."""
    listed = project("exec", "-T", "backup-app", "borg-client", "list", "--json", check=False)
    if listed.returncode != 0:
        assert "does not exist" in listed.stdout + listed.stderr, listed.stdout + listed.stderr
        return []
    return json.loads(listed.stdout)["archives"]


@pytest.fixture
def project(tmp_path):
    """compose.yaml in a directory of its own, with a fresh passphrase secret and a unique project name."""
    shutil.copy(ROOT / "compose.yaml", tmp_path / "compose.yaml")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "borg_passphrase").write_text(uuid.uuid4().hex + "\n")
    (tmp_path / "compose.probes.yaml").write_text(PROBES)
    name = f"bat{uuid.uuid4().hex[:8]}"
    base = [
        *compose_command(),
        "-p",
        name,
        "-f",
        str(tmp_path / "compose.yaml"),
        "-f",
        str(tmp_path / "compose.probes.yaml"),
    ]
    env = {"BASE_IMAGE": "borg-appliance-base:trixie", "IMAGE_TAG": IMAGE_TAG, "PATH": "/usr/local/bin:/usr/bin:/bin"}

    def compose(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([*base, *args], capture_output=True, text=True, env=env, check=False, timeout=600)
        if check and result.returncode != 0:
            raise AssertionError(f"compose {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    compose.env = env  # a scenario may add settings, as `make up PROFILES=admin` does; down sees them too
    yield compose
    compose("down", "--volumes", "--remove-orphans", check=False)


def test_quick_start_backs_up_the_sample_app_without_manual_steps(project):
    project("up", "-d")
    server = project("ps", "-q", "borg-server").stdout.strip()
    sidecar = project("ps", "-q", "backup-app").stdout.strip()
    for container in (server, sidecar):
        wait_until(lambda c=container: health(c) == "healthy", 120, f"{container} to become healthy")

    archives = wait_until(lambda: archives_of(project), 120, "the first archive", interval=3)
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


def test_the_admin_profile_pairs_an_admin_service_that_prunes_with_a_key_only_it_holds(project):
    project.env.update({"COMPOSE_PROFILES": "admin", "APP_ADMIN_KEY": "generate"})  # what `make up PROFILES=admin` sets
    project("up", "-d")
    server, sidecar, admin = (project("ps", "-q", name).stdout.strip() for name in ("borg-server", "backup-app",
                                                                                    "backup-admin"))  # fmt: skip
    for container in (server, sidecar):
        wait_until(lambda c=container: health(c) == "healthy", 120, f"{container} to become healthy")
    wait_until(lambda: "next prune at " in logs(admin), 60, "the admin service's schedule")
    wait_until(lambda: archives_of(project), 120, "the first archive", interval=3)

    # Only the admin service mounts the admin key; the server knows it as app's admin key.
    mounts = {
        c: {m["Destination"] for m in json.loads(docker("inspect", c).stdout)[0]["Mounts"]} for c in (sidecar, admin)
    }
    assert "/admin-pairing" in mounts[admin] and "/admin-pairing" not in mounts[sidecar], mounts
    shown = project("exec", "-T", "borg-server", "borg-server", "show-client", "app").stdout
    assert "(generated, exported to /var/lib/borg-server/export-admin/app)" in shown, shown

    # A prune now, with the admin key and the service's own borg cache, never the shared state volume's.
    pruned = project("exec", "-T", "backup-admin", "borg-client", "prune", check=False)
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert re.search(r"prune success: kept [1-9]\d* archives, pruned 0", pruned.stdout + pruned.stderr), pruned
    assert docker("exec", admin, "ls", "/var/cache/borg-admin").stdout.strip()
    host_config = json.loads(docker("inspect", admin).stdout)[0]["HostConfig"]
    assert (host_config["SecurityOpt"], host_config["CapDrop"]) == (["no-new-privileges:true"], ["ALL"])
    assert {name.removeprefix("CAP_") for name in host_config["CapAdd"]} == {"DAC_OVERRIDE"}
