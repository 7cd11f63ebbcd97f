"""A month of daily runs in fast time, with real borg against a real server and a receiver that never
comes back: every file the sidecar keeps stays under its limit, and so does what the server keeps."""

from __future__ import annotations

import json

import pytest

from tests.harness.stack import client_command, fill_volume, make_client, start_server

# Runs inside the sidecar's image: the sidecar's own run, with the clock that reports, day logs and the
# outbox read moved a day per run, and retry waits skipped (tenacity still makes every attempt).
MONTH = """
import json, os, sys
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
sys.path.insert(0, "/opt/borg-appliance")
from borg_client import config, daylog, journal, report, run
from borg_client.paths import Paths
from borg_common import delivery, outbox

current = {"now": datetime(2026, 10, 1, 3, 0, tzinfo=UTC)}
report.now = lambda: current["now"]
daylog.datetime = SimpleNamespace(now=lambda tz=None: current["now"])
outbox.time = SimpleNamespace(time_ns=lambda: int(current["now"].timestamp() * 1e9))
flush = delivery.flush
delivery.flush = lambda *arguments, **options: flush(*arguments, **{**options, "sleep": lambda seconds: None})

settings = config.load(os.environ)
statuses, failures = [], []
for day in range(31):
    for attempt in (1, 2):  # the second as a retry's report would come, five minutes later
        current["now"] += timedelta(days=1) if attempt == 1 else timedelta(minutes=5)
        finished = run.run_once(settings, attempt=attempt)
        statuses.append(finished.status)
        failures += [finished.message] if finished.status != "success" else []
paths = settings.paths
print(json.dumps({
    "statuses": sorted(set(statuses)),
    "failures": failures[:3],
    "runs": len(journal.last_runs(paths)),
    "runs_bytes": paths.runs.stat().st_size,
    "day_logs": len(list(paths.logs.iterdir())),
    "outbox": len(outbox.entries(paths.outbox)),
    "record_bytes": paths.repository_record.stat().st_size,
    "key_exports": sorted(path.name for path in paths.key_export.iterdir()),
}))
"""


@pytest.mark.long
def test_a_month_of_daily_runs_keeps_every_file_under_its_limit(sandbox, tmp_path):
    server = start_server(sandbox, ["web"])
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "head -c 100000 /dev/urandom > /data/file.bin")
    env = {"REPORT_URLS": "http://127.0.0.1:9/never", "REPORT_TIMEOUT": "1s",  # refused at once, every time
           "ARCHIVE_NAME": "{client}-{utcnow:%Y-%m-%dT%H:%M:%S.%f}"}  # two runs may share a second  # fmt: skip
    result = client_command(sandbox, web, ["-c", MONTH], env=env, extra=["--entrypoint", "python3"])
    assert result.returncode == 0, result.stdout + result.stderr
    kept = json.loads(result.stdout.strip().splitlines()[-1])

    assert kept["statuses"] == ["success"], kept["failures"]  # 62 real backups
    assert kept["runs"] == 50 and kept["runs_bytes"] < 50 * 4096  # the run journal: the last 50 runs
    assert kept["day_logs"] == 30  # the day logs: the last 30 days
    assert kept["outbox"] <= 61  # undelivered reports: at most 30 days' worth (2 a day)
    assert kept["record_bytes"] < 1024
    assert kept["key_exports"] == ["web.key", "web.key.txt"]  # exported once, never piled up

    # The server: one audit line per session, and the monitor's state stays small.
    lines = server.exec("wc", "-l", "/var/lib/borg-server/audit/sessions.jsonl").stdout.split()[0]
    assert 62 <= int(lines) <= 62 * 2  # a session per run (plus the first run's init)
    server.exec("borg-server", "scan")  # the monitor reads all 62 sessions now and writes its state
    size = server.exec("stat", "-c", "%s", "/var/lib/borg-server/monitor/clients/web.json")
    assert 0 < int(size.stdout) < 64 * 1024
