"""Many clients on one server, a server with 1000 clients, an idle sidecar, and image sizes."""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
from pathlib import Path

from tests.integration.docker_helpers import CLIENT_IMAGE, SERVER_IMAGE, Sandbox, docker, wait_until
from tests.integration.stack import make_client, start_server

UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "kB": 1e3, "MB": 1e6, "GB": 1e9}


def memory_bytes(container: str) -> float:
    """Return the container's memory use as `docker stats` reports it."""
    usage = docker("stats", "--no-stream", "--format", "{{.MemUsage}}", container, check=False).stdout.split("/")[0]
    match = re.match(r"\s*([0-9.]+)\s*([A-Za-z]+)", usage)
    return float(match[1]) * UNITS.get(match[2], 1) if match else 0.0


def concurrent_clients(sandbox: Sandbox, count: int, data: Path, data_bytes: int, tmp: Path) -> dict:
    """Back up count sidecars at once to one server; return successes, aggregate MB/s, server memory peak."""
    names = [f"c{number:02d}" for number in range(count)]
    server = start_server(sandbox, names, role=f"server{count}")
    clients = [make_client(sandbox, server, name, tmp) for name in names]
    for client in clients:  # initialised beforehand: the measurement is the concurrent backup itself
        sandbox.run(f"init-{client.name}", CLIENT_IMAGE, client.options(data=str(data)),
                    ["borg-client", "borg", "init", "--encryption", "keyfile-blake2"], detach=False)  # fmt: skip
    peak, stop = [0.0], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], memory_bytes(server.container))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.monotonic()
    for client in clients:
        sandbox.run(f"run-{count}-{client.name}", CLIENT_IMAGE, client.options(data=str(data)), ["run"])
    codes = [int(docker("wait", sandbox.name(f"run-{count}-{client.name}")).stdout) for client in clients]
    elapsed = time.monotonic() - started
    stop.set()
    watcher.join()
    return {
        "clients": count,
        "succeeded": codes.count(0),
        "seconds": round(elapsed, 2),
        "aggregate_mb_s": round(count * data_bytes / elapsed / 1e6, 1),
        "server_memory_peak_mib": round(peak[0] / 2**20, 1),
    }


def many_clients_start(sandbox: Sandbox, count: int = 1000) -> dict:
    """Return seconds from `borg-server start` to supervisord running with count clients (first and second
    start), and of `borg-server reload`."""
    state = sandbox.volume("thousand-state")
    names = " ".join(f"c{number:04d}" for number in range(count))
    timed = ("ms() { echo $(( $(date +%s%N) / 1000000 )); }; s=$(ms); borg-server start >/dev/null 2>&1 & "
             "while [ ! -s /run/supervisord.pid ]; do sleep 0.02; done; echo $(( $(ms) - s ))")  # fmt: skip
    options = ["-e", f"BORG_CLIENTS={names}", "-v", f"{state}:/var/lib/borg-server", "--entrypoint", "sh"]
    first = sandbox.run("thousand-1", SERVER_IMAGE, options, ["-c", timed + "; sleep 1"], detach=False).stdout
    sandbox.run("thousand-2", SERVER_IMAGE, options, ["-c", timed + "; sleep 3600"])
    container = sandbox.name("thousand-2")
    wait_until(lambda: docker("logs", container).stdout.strip(), 60, "the second start")
    restart = docker("logs", container).stdout.strip()
    reload = docker("exec", container, "sh", "-c", "ms() { echo $(( $(date +%s%N) / 1000000 )); }; s=$(ms); "
                    "borg-server reload >/dev/null 2>&1; echo $(( $(ms) - s ))").stdout  # fmt: skip
    return {"clients": count, "first_start_s": int(first) / 1000, "restart_s": int(restart) / 1000,
            "reload_s": int(reload) / 1000}  # fmt: skip


def idle_sidecar(sandbox: Sandbox, data: Path, tmp: Path, seconds: int = 60) -> dict:
    """Return the resident memory and CPU of a sidecar waiting for its next run, over seconds."""
    server = start_server(sandbox, ["idle"], role="idle-server")
    client = make_client(sandbox, server, "idle", tmp)
    sandbox.run("idle", CLIENT_IMAGE, client.options({"BACKUP_CRON": "0 0 1 1 *"}, data=str(data)))
    container = sandbox.name("idle")
    wait_until(lambda: "next backup at" in docker("logs", container).stderr, 600, "the sidecar to go idle")

    def ticks() -> dict[str, int]:
        """Return user+system clock ticks per process in the container."""
        lines = docker("exec", container, "sh", "-c", "cat /proc/[0-9]*/stat", check=False).stdout.splitlines()
        fields = {line.split()[0]: line.rsplit(")", 1)[1].split() for line in lines if ")" in line}
        return {pid: int(rest[11]) + int(rest[12]) for pid, rest in fields.items()}

    before, started = ticks(), time.monotonic()
    samples = []
    while time.monotonic() - started < seconds:
        samples.append(memory_bytes(container))
        time.sleep(5)
    after = ticks()
    used = sum(after[pid] - before[pid] for pid in before.keys() & after.keys())  # the processes that stay
    cpu = used / 100 / (time.monotonic() - started)
    rss = docker("exec", container, "sh", "-c", "cat /proc/[0-9]*/status | grep VmRSS").stdout
    rss_kib = sum(int(line.split()[1]) for line in rss.splitlines())
    return {"rss_mib": round(rss_kib / 1024, 1), "cgroup_memory_mib": round(statistics.median(samples) / 2**20, 1),
            "cpu_percent_of_a_core": round(cpu * 100, 3)}  # fmt: skip


def image_sizes() -> dict:
    sizes = {}
    for image in (SERVER_IMAGE, CLIENT_IMAGE, "borg-appliance-base:trixie"):
        inspected = json.loads(docker("image", "inspect", image).stdout)[0]
        sizes[image] = round(inspected["Size"] / 1e6, 1)
    return sizes
