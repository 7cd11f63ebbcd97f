"""Many clients on one server, a server with 1000 clients, an idle sidecar, the monitor's cost, and image sizes."""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
from pathlib import Path

from tests.harness.containers import CLIENT_IMAGE, SERVER_IMAGE, Sandbox, docker, wait_until
from tests.harness.stack import client_command, fill_volume, make_client, repository_bytes, start_server

UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "kB": 1e3, "MB": 1e6, "GB": 1e9}


def memory_bytes(container: str) -> float:
    """Return the container's memory use as `docker stats` reports it."""
    usage = docker("stats", "--no-stream", "--format", "{{.MemUsage}}", container, check=False).stdout.split("/")[0]
    match = re.match(r"\s*([0-9.]+)\s*([A-Za-z]+)", usage)
    return float(match[1]) * UNITS.get(match[2], 1) if match else 0.0


# Prints the container's CPU nanoseconds so far (cgroup v2 or v1, as seen from inside it).
CGROUP_CPU = (
    "if [ -r /sys/fs/cgroup/cpu.stat ]; then awk '/^usage_usec/ {print $2 * 1000}' /sys/fs/cgroup/cpu.stat; "
    "else cat /sys/fs/cgroup/cpuacct/cpuacct.usage; fi"
)
DAY = 86400


def cpu_seconds(container: str) -> float:
    """Return the CPU seconds (user + system) every process of the container used so far."""
    return int(float(docker("exec", container, "sh", "-c", CGROUP_CPU).stdout)) / 1e9


def concurrent_clients(sandbox: Sandbox, count: int, data: Path, data_bytes: int, tmp: Path) -> dict:
    """Back up count sidecars at once to one server, then again unchanged; return successes, aggregate MB/s,
    server memory peak, and the server's cost: CPU seconds per GB ingested and per session, memory per
    concurrent session, and the clients one core serves at a daily backup of 1 GB changed data each."""
    names = [f"c{number:02d}" for number in range(count)]
    server = start_server(sandbox, names, role=f"server{count}")
    clients = [make_client(sandbox, server, name, tmp) for name in names]
    for client in clients:  # initialised beforehand: the measurement is the concurrent backup itself
        sandbox.run(f"init-{client.name}", CLIENT_IMAGE, client.options(data=str(data)),
                    ["borg-client", "borg", "init", "--encryption", "keyfile-blake2"], detach=False)  # fmt: skip
    idle_memory = memory_bytes(server.container)

    def backups(round_name: str) -> tuple[list[int], float, float, float]:
        """Run every sidecar at once; return exit codes, seconds, server CPU seconds and memory peak."""
        peak, stop = [0.0], threading.Event()

        def watch() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], memory_bytes(server.container))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        cpu_before, started = cpu_seconds(server.container), time.monotonic()
        for client in clients:
            sandbox.run(f"{round_name}-{count}-{client.name}", CLIENT_IMAGE, client.options(data=str(data)), ["run"])
        codes = [int(docker("wait", sandbox.name(f"{round_name}-{count}-{client.name}")).stdout) for client in clients]
        elapsed = time.monotonic() - started
        stop.set()
        watcher.join()
        return codes, elapsed, cpu_seconds(server.container) - cpu_before, peak[0]

    codes, elapsed, first_cpu, peak = backups("run")
    rerun_codes, _, rerun_cpu, _ = backups("rerun")  # unchanged: what a session costs without data
    per_session = rerun_cpu / count
    ingested_gb = count * data_bytes / 1e9
    per_gb = max(first_cpu - per_session * count, 0.0) / ingested_gb
    return {
        "clients": count,
        "succeeded": codes.count(0),
        "rerun_succeeded": rerun_codes.count(0),
        "seconds": round(elapsed, 2),
        "aggregate_mb_s": round(count * data_bytes / elapsed / 1e6, 1),
        "server_memory_peak_mib": round(peak / 2**20, 1),
        "server_memory_per_session_mib": round((peak - idle_memory) / count / 2**20, 1),
        "server_cpu_s_per_gb": round(per_gb, 2),
        "server_cpu_s_per_session": round(per_session, 3),
        "clients_per_core_at_1gb_a_day": int(DAY / (per_session + per_gb * 1.0)),
    }


def many_clients_start(sandbox: Sandbox, count: int = 1000, name: str | None = "borg-server") -> dict:
    """Return seconds from `borg-server start` to supervisord running with count clients (first and second
    start), and of `borg-server reload`.

    name: BORG_SERVER_NAME, as compose.yaml sets it, so the second start finds the exports as they were;
    None: the container's hostname, new with each container, so the second start rewrites every export.
    """
    state = sandbox.volume("thousand-state")
    names = " ".join(f"c{number:04d}" for number in range(count))
    timed = ("ms() { echo $(( $(date +%s%N) / 1000000 )); }; s=$(ms); borg-server start >/dev/null 2>&1 & "
             "while [ ! -s /dev/shm/borg-server/supervisord.pid ]; do sleep 0.02; done; "
             "echo $(( $(ms) - s ))")  # fmt: skip
    options = ["-e", f"BORG_CLIENTS={names}", "-v", f"{state}:/var/lib/borg-server", "--entrypoint", "sh"]
    options += ["-e", f"BORG_SERVER_NAME={name}"] if name else []
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


MONITOR = "/var/lib/borg-server/monitor"
# Prints the clock ticks per second, then the monitor's /proc stat and status files.
MONITOR_PROCESS = (
    'pid=$(pgrep -f "^/usr/bin/python3 -IB /usr/local/bin/borg-server monitor$") && getconf CLK_TCK && '
    "cat /proc/$pid/stat /proc/$pid/status"
)
# Prints how many clients' state holds a segment baseline (sha256 of every committed segment).
BASELINED = (
    "import glob, json; "
    f"print(sum(bool(json.load(open(path))['segments']) for path in glob.glob('{MONITOR}/clients/*.json')))"
)
# Prints how many milliseconds one `borg check --repository-only` of the repository in $1 takes, as the monitor
# runs it: as the repository's own account.
REPOSITORY_CHECK = (
    "ms() { echo $(( $(date +%s%N) / 1000000 )); }; s=$(ms); HOME=/home/borg BORG_BASE_DIR=/home/borg "
    'setpriv --reuid=$(stat -c %u "$1") --regid=$(stat -c %g "$1") --clear-groups -- borg check --repository-only "$1" '
    ">&2 && echo $(( $(ms) - s ))"
)


def spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def last_scan(container: str) -> dict:
    """Return the monitor's record of its last scan (monitor.json: last_scan, scan_seconds), {} before the first."""
    return json.loads(docker("exec", container, "sh", "-c", f"cat {MONITOR}/monitor.json 2>/dev/null").stdout or "{}")


def monitor_process(container: str) -> dict:
    """Return the monitor's CPU seconds (user + system) so far, its resident and peak resident memory in MiB."""
    per_second, stat, *status = docker("exec", container, "sh", "-c", MONITOR_PROCESS).stdout.splitlines()
    fields = stat.rsplit(")", 1)[1].split()
    memory = {line.split(":")[0]: int(line.split()[1]) for line in status if line.startswith(("VmRSS", "VmHWM"))}
    return {"cpu_s": (int(fields[11]) + int(fields[12])) / int(per_second), "rss_mib": memory["VmRSS"] / 1024,
            "peak_mib": memory["VmHWM"] / 1024}  # fmt: skip


def monitor_cost(sandbox: Sandbox, tmp: Path, count: int = 50, data_mb: int = 20, idle_seconds: int = 60) -> dict:
    """Return what the server's monitor costs with count clients of data_mb MB (incompressible) each: its first
    scan (hashes every committed segment), the scans after it (stat only) over idle_seconds of scanning every
    10 s, its CPU and memory, and `borg check --repository-only` of one repository (3 times, timed inside the
    server container as the borg user, as the monitor's check thread runs it).

    One client backs up; its repository is copied to the others while the monitor is stopped, and the monitor's
    state is removed, so it starts as on a server with count repositories it has never seen. The copies are
    fresh in the page cache: the first scan is measured with a warm cache.
    """
    names = [f"c{number:02d}" for number in range(count)]
    env = {"MONITOR_INTERVAL": "10s", "MONITOR_CHECK_INTERVAL": "1w"}
    server = start_server(sandbox, names, env=env, role="monitor-server")
    first = make_client(sandbox, server, names[0], tmp)
    fill_volume(sandbox, first.data, f"head -c {data_mb * 1_000_000} /dev/urandom > /data/random.bin")
    backup = client_command(sandbox, first, ["run"])
    if backup.returncode != 0:
        raise RuntimeError(f"the backup of {first.name} failed:\n{backup.stderr[-2000:]}")
    server.exec("supervisorctl", "stop", "monitor")
    copies = (
        f"for name in {' '.join(names[1:])}; do cp -a /srv/borg/{names[0]}/main /srv/borg/$name/ && "
        "chown -R --reference=/srv/borg/$name /srv/borg/$name/main; done"
    )  # each copy its client's own
    server.exec("sh", "-c", f"{copies} && rm -f {MONITOR}/clients/*.json {MONITOR}/monitor.json")
    server.exec("supervisorctl", "start", "monitor")
    scans = [wait_until(lambda: last_scan(server.container), 600, "the monitor's first scan")]
    after_first, started = monitor_process(server.container), time.monotonic()
    baselined = int(server.exec("python3", "-c", BASELINED).stdout)
    while time.monotonic() - started < idle_seconds:  # the measurement: the monitor scanning, nothing else running
        time.sleep(1)
        scan = last_scan(server.container)
        if scan["last_scan"] != scans[-1]["last_scan"]:
            scans.append(scan)
    idle, elapsed = monitor_process(server.container), time.monotonic() - started
    repository = f"/srv/borg/{names[-1]}/main"
    checks = [int(server.exec("sh", "-c", REPOSITORY_CHECK, "check", repository).stdout) / 1000 for _ in range(3)]
    return {
        "clients": count,
        "repository_mb": round(repository_bytes(server, names[-1]) / 1e6, 1),
        "first_scan_s": scans[0]["scan_seconds"],
        "clients_hashed_in_first_scan": baselined,
        "start_and_first_scan_cpu_s": round(after_first["cpu_s"], 2),
        "later_scans": len(scans) - 1,
        "later_scan_s": spread([scan["scan_seconds"] for scan in scans[1:]]),
        "idle_seconds": round(elapsed),
        "idle_cpu_percent_of_a_core": round((idle["cpu_s"] - after_first["cpu_s"]) / elapsed * 100, 3),
        "rss_mib_after_first_scan": round(after_first["rss_mib"], 1),
        "rss_mib_after_idle": round(idle["rss_mib"], 1),
        "rss_peak_mib": round(idle["peak_mib"], 1),
        "repository_check_s": spread(checks),
    }


def image_sizes() -> dict:
    sizes = {}
    for image in (SERVER_IMAGE, CLIENT_IMAGE, "borg-appliance-base:trixie"):
        inspected = json.loads(docker("image", "inspect", image).stdout)[0]
        sizes[image] = round(inspected["Size"] / 1e6, 1)
    return sizes
