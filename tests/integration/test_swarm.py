"""Beyond one host: deploy/swarm/stack.yaml on a single-node swarm, paired by secrets made before the server starts.

The machine joins a swarm only if it is in none (listening on the loopback alone), and leaves it again
afterwards; secrets, volumes and the stack are this test's own and removed at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

from tests.harness.containers import BASE_IMAGE, IMAGE_TAG, LABEL, SERVER_IMAGE, docker, health, wait_until
from tests.harness.stack import fill_volume

STACK_FILE = Path(__file__).resolve().parents[2] / "deploy" / "swarm" / "stack.yaml"
SECRETS = ("borg_host_key", "borg_app_ssh_key", "borg_app_ssh_key_pub", "borg_app_known_hosts", "borg_app_passphrase")
# The sidecar is scaled up once the server is healthy: started with it, it would wait a minute for it.
LATER_SIDECAR = 'version: "3.9"\nservices:\n  backup-app:\n    deploy:\n      replicas: 0\n'


@pytest.fixture
def swarm():
    """A swarm this daemon manages: the one it is in, or a new single-node one on the loopback, left afterwards."""
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()
    assert state in ("inactive", "active"), f"the daemon's swarm is {state}"
    if state == "inactive":
        docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377")
    try:
        yield
    finally:
        if state == "inactive":
            docker("swarm", "leave", "--force", check=False)


def task_container(stack: str, service: str) -> str:
    """Return the id of the running container of stack's service ("" if none yet)."""
    found = docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={stack}_{service}").stdout.split()
    return found[0] if found else ""


def replicas(stack: str, service: str) -> int:
    spec = docker("service", "inspect", "--format", "{{json .Spec.Mode}}", f"{stack}_{service}").stdout
    return json.loads(spec)["Replicated"]["Replicas"]


def runs(container: str) -> list[dict]:
    result = docker("exec", container, "cat", "/var/lib/borg-client/runs.json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else []


def update_state(stack: str, service: str) -> str:
    """Return the state of the service's last update (completed, updating, ...), "" if it was never updated."""
    state = docker("service", "inspect", "--format", "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
                   f"{stack}_{service}").stdout  # fmt: skip
    return state.strip()


def service_logs(stack: str, service: str) -> str:
    result = docker("service", "logs", "--raw", "--tail", "40", f"{stack}_{service}", check=False)
    return result.stdout + result.stderr


def stack_left(stack: str) -> list[str]:
    """Return what of the stack is still there: services, containers and networks."""
    namespace = f"label=com.docker.stack.namespace={stack}"
    return [
        *docker("service", "ls", "-q", "--filter", namespace).stdout.split(),
        *docker("ps", "-aq", "--filter", namespace).stdout.split(),
        *docker("network", "ls", "-q", "--filter", namespace).stdout.split(),
    ]


@pytest.mark.alone
def test_the_swarm_stack_pairs_by_secrets_backs_up_scales_the_app_to_0_meanwhile_and_restores(swarm, sandbox, tmp_path):
    stack = sandbox.prefix
    host_key = tmp_path / "host_key"
    try:
        # docs/how-to/swarm.md's steps: a host key and the client's secrets, all before the server ever starts.
        host_key.write_text(docker("run", "--rm", SERVER_IMAGE, "borg-server", "new-host-key").stdout)
        docker("secret", "create", "borg_host_key", str(host_key))
        script = docker("run", "--rm", "-v", f"{host_key}:/run/secrets/borg_host_key:ro",
                        "-e", "BORG_HOST_KEY_FILE=/run/secrets/borg_host_key", "-e", "BORG_SERVER_NAME=borg-server",
                        SERVER_IMAGE, "borg-server", "new-client", "app").stdout  # fmt: skip
        subprocess.run(["sh"], input=script, text=True, check=True, capture_output=True)
        docker("secret", "create", "borg_app_passphrase", "-", input="correct horse battery staple\n")
        data = f"{stack}_app-data"  # the stack's volume, made first so it holds something worth copying
        docker("volume", "create", "--label", f"{LABEL}={stack}", data)
        fill_volume(sandbox, data, "head -c 20000000 /dev/urandom > /data/blob.bin && echo hello > /data/note.txt")

        later = tmp_path / "later-sidecar.yaml"
        later.write_text(LATER_SIDECAR)
        deploy = ["docker", "stack", "deploy", "--resolve-image", "never", "-c", str(STACK_FILE), "-c", str(later)]
        environment = {**os.environ, "IMAGE_TAG": IMAGE_TAG, "BASE_IMAGE": BASE_IMAGE}
        subprocess.run([*deploy, stack], env=environment, check=True, capture_output=True, timeout=120)
        wait_until(lambda: health(task_container(stack, "borg-server")) == "healthy", 90, "the server to be healthy")
        assert replicas(stack, "app") == 1

        seen: list[int] = []  # the app's replicas, each change once, while the sidecar makes its first backup
        watching = threading.Event()

        def watch() -> None:
            while not watching.wait(0.3):
                count = replicas(stack, "app")
                if not seen or seen[-1] != count:
                    seen.append(count)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            docker("service", "scale", "--detach", f"{stack}_backup-app=1")
            sidecar = wait_until(lambda: task_container(stack, "backup-app"), 60, "the sidecar's task")
            first = wait_until(lambda: runs(sidecar), 120, "the sidecar's first backup")[0]
        except AssertionError as error:
            raise AssertionError(f"{error}\n{service_logs(stack, 'backup-app')}") from None
        finally:
            watching.set()
            watcher.join()
        if seen[-1] != replicas(stack, "app"):  # scaled back after the watcher's last look
            seen.append(replicas(stack, "app"))
        assert first["status"] == "success", first["message"]
        assert first["stopped_containers"] == [f"{stack}_app"]
        assert seen == [1, 0, 1]  # scaled to 0 for borg create, back to its one replica after
        wait_until(lambda: task_container(stack, "app"), 60, "the app to run again")

        restore = docker("exec", sidecar, "sh", "-c",
                         f"borg-client restore {first['archive']} --target /tmp/r >&2"
                         " && cmp /tmp/r/backup/app-data/blob.bin /backup/app-data/blob.bin"
                         " && cat /tmp/r/backup/app-data/note.txt", check=False)  # fmt: skip
        assert restore.returncode == 0, restore.stderr
        assert restore.stdout == "hello\n"  # cmp printed nothing: the 20 MB of random bytes are identical

        # The sidecar is killed while the app is scaled to 0 (the app now ignores its stop signal, so scaling
        # it down takes 10 s): the swarm restarts the sidecar, which scales the app back from its journal.
        docker("service", "update", "--detach", "--stop-signal", "SIGWINCH", "--stop-grace-period", "10s",
               f"{stack}_app")  # fmt: skip
        wait_until(lambda: update_state(stack, "app") == "completed", 60, "the app to run with its new stop signal")
        docker("exec", "-d", sidecar, "borg-client", "run")
        wait_until(lambda: replicas(stack, "app") == 0, 60, "the second backup to scale the app to 0")
        docker("kill", sidecar)
        wait_until(
            lambda: task_container(stack, "backup-app") not in ("", sidecar), 60, "the swarm to start a new sidecar"
        )
        wait_until(lambda: replicas(stack, "app") == 1, 60, "the new sidecar to scale the app back to 1")
        assert "a previous run stopped 1 container(s) or service(s) and did not finish" in service_logs(
            stack, "backup-app"
        )
        wait_until(lambda: task_container(stack, "app"), 60, "the app to run again")

        docker("stack", "rm", stack)
        wait_until(lambda: not stack_left(stack), 90, "docker stack rm to remove the services, tasks and networks")
    finally:
        docker("stack", "rm", stack, check=False)
        wait_until(lambda: not stack_left(stack), 90, "the stack to be gone")
        volumes = docker("volume", "ls", "-q", "--filter", f"name={stack}_").stdout.split()
        if volumes:
            docker("volume", "rm", *volumes, check=False)
        docker("secret", "rm", *SECRETS, check=False)
