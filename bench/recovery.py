"""Recovery time: the run after a server or sidecar died in the middle of a backup, against a normal run.

Each repetition, in a fresh sandbox: a server and a sidecar, a data set of incompressible data and
a few thousand small files. A first backup is started and, once about a third of it has reached
the server, one case happens to it: the server is restarted (`docker restart`), the server is
killed (`docker kill`, then started again) or the sidecar is killed (SIGKILL). Then 5 MB change
and the next run is timed ("after crash"); then 5 MB change again and the run after that is timed
("normal": the run after a completed one). The after-crash run also sends what the crashed run had
not committed (no checkpoint was written), so its deduplicated size is printed beside it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.harness.containers import CLIENT_IMAGE, Sandbox, docker, health, wait_until
from tests.harness.stack import Client, client_command, fill_volume, make_client, repository_bytes, start_server

CASES = ("server-restart", "server-kill", "sidecar-kill")
CHANGE = "head -c 5000000 /dev/urandom > /data/change-$(date +%s%N).bin"


def data_script(size_mb: int, small_files: int) -> str:
    """Return the shell script that writes the data set: size_mb of random bytes and small_files of 2 kB."""
    return (
        f"head -c {size_mb * 1_000_000} /dev/urandom > /data/big.bin && mkdir -p /data/small && "
        f"for i in $(seq 1 {small_files}); do head -c 2000 /dev/urandom > /data/small/f$i; done"
    )


def crash(sandbox: Sandbox, case: str, server_container: str, victim: str) -> None:
    """Make case happen to the running backup: restart or kill the server, or kill the sidecar."""
    if case == "server-restart":
        docker("restart", server_container)
    elif case == "server-kill":
        docker("kill", server_container)
        docker("start", server_container)
    else:
        docker("kill", victim)


def timed_run(sandbox: Sandbox, client: Client, role: str) -> tuple[float, dict]:
    """Run one backup in a throw-away sidecar; return its wall-clock seconds and its report."""
    started = time.monotonic()
    result = client_command(sandbox, client, ["run"], role=role)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"{role} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    journal = sandbox.run("journal", CLIENT_IMAGE, ["-v", f"{client.state}:/state:ro", "--entrypoint", "cat"],
                          ["/state/runs.json"], detach=False)  # fmt: skip
    return seconds, json.loads(journal.stdout)[-1]


def one_case(sandbox: Sandbox, case: str, size_mb: int, small_files: int, tmp: Path) -> dict:
    """Return the seconds of the run after case happened mid-backup and of a normal run after it."""
    server = start_server(sandbox, ["rec"])
    client = make_client(sandbox, server, "rec", tmp)
    fill_volume(sandbox, client.data, data_script(size_mb, small_files))
    client_command(sandbox, client, ["borg-client", "borg", "init", "--encryption", "keyfile-blake2"], check=True)
    empty = repository_bytes(server, "rec")
    sandbox.run("victim", CLIENT_IMAGE, client.options(), ["run"])
    wait_until(lambda: repository_bytes(server, "rec") > empty + size_mb * 1e6 / 3, 600, "a third of the backup", 0.2)
    crash(sandbox, case, server.container, sandbox.name("victim"))
    wait_until(lambda: health(sandbox.name("victim")) in ("exited", "gone"), 900, "the crashed run to end")
    wait_until(lambda: health(server.container) == "healthy", 120, "the server to be healthy again")
    exit_code = int(docker("inspect", "-f", "{{.State.ExitCode}}", sandbox.name("victim")).stdout)
    fill_volume(sandbox, client.data, CHANGE)
    after, after_report = timed_run(sandbox, client, "after-crash")
    fill_volume(sandbox, client.data, CHANGE)
    normal, _report = timed_run(sandbox, client, "normal")
    return {
        "after_crash_s": round(after, 2),
        "normal_s": round(normal, 2),
        "crashed_run_exit": exit_code,  # 0: the crash came too late, the run had finished
        "after_crash_sent_mb": round((after_report.get("stats") or {}).get("deduplicated_size", 0) / 1e6, 1),
    }


def measure(size_mb: int, small_files: int, repetitions: int, tmp: Path) -> dict:
    """Run every case repetitions times (interleaved, each in a fresh sandbox); return the seconds per case."""
    runs: dict[str, list[dict]] = {case: [] for case in CASES}
    for repetition in range(repetitions):
        for case in CASES:
            sandbox = Sandbox()
            try:
                result = one_case(sandbox, case, size_mb, small_files, tmp)
            finally:
                sandbox.cleanup()
            print(f"  repetition {repetition + 1}, {case}: {result}")
            runs[case].append(result)
    return runs


def report(runs: dict[str, list[dict]], summary) -> list[str]:
    """Given the runs per case and a summary function (median, min, max), return Markdown lines."""
    lines = ["| case | normal run s | run after the crash s | MB the run after the crash sent |", "|---|---|---|---|"]
    for case, results in runs.items():
        cells = []
        for key in ("normal_s", "after_crash_s", "after_crash_sent_mb"):
            figures = summary([result[key] for result in results])
            cells.append(f"{figures['median']} ({figures['min']}–{figures['max']})")
        lines.append(f"| {case} | {' | '.join(cells)} |")
    return lines
