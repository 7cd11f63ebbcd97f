"""`make bench BENCH_ARGS="--only overhead"`: what one `borg-client` command costs beside the borg it runs.

In one client container, repeated and interleaved, an unchanged re-run of the same data in each way, and the
parts of a sidecar command's start:

- python: `python3 -c pass`, the interpreter alone;
- imports: `borg-client`'s modules imported (the command line, before any command runs);
- check-config: `borg-client check-config`, imports, settings read and checked, printed;
- plain: `borg create` to a plain sshd (as (b));
- flags: the same with the appliance's create flags (output thrown away): what the flags cost borg;
- server: that, to the appliance's server instead: the forced command and the session broker are what it adds
  to flags;
- sidecar: `borg-client run`, as (c): what it adds to server is the sidecar's own work;
- scheduled: the same run started by the running scheduler (SIGUSR1), as a scheduled backup runs: the seconds
  its report gives (duration_s), without the command's start and imports, which the scheduler paid once;
- plain-session, server-session: one SSH session that starts borg serve and ends (nothing sent), to the plain
  sshd and to the appliance's server: what each session costs the server, without borg's client around it.

Each repetition runs every way once; the ratios below are each repetition's own (its plain over its sidecar).
`--profile` adds Python's profile of one `borg-client run` (cumulative, the sidecar's functions).
"""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.flags import ALL_COMMON, ALL_CREATE
from bench.modes import (
    COMPRESSION,
    PLAIN_ENV,
    RSH,
    TIMER,
    bench_sandbox,
    mounts,
    pairing_rsh,
    run_script,
    start_plain_sshd,
    steps,
)
from tests.harness.stack import make_client, start_server

WAYS = ("python", "imports", "check-config", "plain", "flags", "server", "sidecar", "scheduled", "plain-session",
        "server-session")  # fmt: skip
QUIET = ">/dev/null 2>&1"  # the flags' output thrown away, as bench/flags.py does
IMPORTS = 'PYTHONPATH=/opt/borg-appliance python3 -c "import borg_client.__main__"'
# The scheduler, idle (its backup due once a year, no drill, no digest) until SIGUSR1 starts a run; a run is
# over when the journal is written again (a new file: atomic_write), and its report says how long it took.
JOURNAL = "/var/lib/borg-client/runs.json"
SCHEDULER = f"""BACKUP_CRON='0 0 1 1 *' VERIFY_CRON=off DIGEST_CRON=off borg-client schedule >/tmp/schedule.log 2>&1 &
scheduler=$!
until grep -q "next backup at" /tmp/schedule.log; do kill -0 $scheduler || exit 1; sleep 0.1; done
scheduled() {{
  before=$(stat -c %i {JOURNAL}); kill -USR1 $scheduler
  while [ "$(stat -c %i {JOURNAL})" = "$before" ]; do kill -0 $scheduler || exit 1; sleep 0.1; done
  python3 -c "import json; print(round(json.load(open('{JOURNAL}'))[-1]['duration_s'] * 1000))"
}}"""
# One SSH session of borg serve that ends at once: session SSH_COMMAND REPOSITORY_URL (ssh takes the URL's
# ssh://user@host:port part as it is).
SESSION = """session() { $1 "$(echo "$2" | sed 's|\\(ssh://[^/]*\\).*|\\1|')" borg serve </dev/null; }"""
PROFILE_LINES = 30
PRINT_STATS = (
    "import pstats, sys; pstats.Stats(sys.argv[1], stream=sys.stdout).sort_stats('cumulative')"
    f".print_stats('borg_client|borg_common', {PROFILE_LINES})"
)


def script(sshd_pin: str, plain: str, server: str, repetitions: int, profile: bool) -> str:
    """Return the script: set up the three repositories (first backups, untimed) and start the scheduler, then
    time every way per repetition ("<way><n>_ms"), then, with profile, print the profile of one more
    `borg-client run`."""
    borg_env = f'{PLAIN_ENV} BORG_RSH="{RSH}"'
    raw_env = f'{PLAIN_ENV} BORG_BASE_DIR=/state/raw BORG_RSH="{pairing_rsh("/p/raw")}"'
    plain_create = f"borg create --compression {COMPRESSION} {plain}"
    flags_create = f"borg {ALL_COMMON} create --compression {COMPRESSION} {ALL_CREATE}"
    lines = [TIMER, sshd_pin,
             f"( {borg_env}; borg init -e keyfile-blake2 {plain} && {plain_create}::first /backup/data ) >&2 || exit 1",
             f"( {raw_env}; borg init -e keyfile-blake2 {server} && {flags_create} {server}::first /backup/data ) >&2 "
             "|| exit 1",
             "borg-client run >&2 || exit 1", SCHEDULER, SESSION]  # fmt: skip
    for number in range(repetitions):
        lines += [f"step python{number} python3 -c pass",
                  f"step imports{number} sh -c '{IMPORTS}'",
                  f"step check-config{number} sh -c 'borg-client check-config >/dev/null'",
                  f"step plain{number} sh -c '{borg_env}; {plain_create}::r{number} /backup/data'",
                  f"step flags{number} sh -c '{borg_env}; {flags_create} {plain}::f{number} /backup/data {QUIET}'",
                  f"step server{number} sh -c '{raw_env}; {flags_create} {server}::r{number} /backup/data {QUIET}'",
                  f"step sidecar{number} borg-client run",
                  f'took=$(scheduled) || exit 1; echo "scheduled{number}_ms $took"',
                  f'step plain-session{number} session "{RSH}" "{plain}"',
                  f'step server-session{number} session "{pairing_rsh("/p/raw")}" "{server}"']  # fmt: skip
    if profile:
        lines += ["PYTHONPATH=/opt/borg-appliance python3 -m cProfile -o /state/run.prof -m borg_client run >&2",
                  f'python3 -c "{PRINT_STATS}" /state/run.prof']  # fmt: skip
    return "\n".join(lines) + "\n"


def measure(data: Path, repetitions: int, profile: bool, tmp: Path) -> dict:
    """Return {"seconds": {way: [seconds per repetition]}} and, with profile, {"profile": text}."""
    sandbox = bench_sandbox()
    try:
        sshd = start_plain_sshd(sandbox)
        server = start_server(sandbox, ["overhead", "raw"], network=sshd.network)
        client = make_client(sandbox, server, "overhead", tmp)
        options = [*client.options({"BORG_COMPRESSION": COMPRESSION}, data=str(data)), "-v", f"{sshd.keys}:/keys:ro",
                   "-v", f"{server.exports['raw']}:/p/raw:ro", *mounts(sandbox, "overhead", data)[2:]]  # fmt: skip
        text = run_script(sandbox, "overhead", options,
                          script(sshd.pin(), f"ssh://borg@{sshd.host}:22/repos/r", "$(cat /p/raw/repo_url)",
                                 repetitions, profile))  # fmt: skip
    finally:
        sandbox.cleanup()
    timed = steps("\n".join(line for line in text.splitlines() if line.split(" ")[0].endswith("_ms")))
    result: dict = {"seconds": {way: [timed[f"{way}{n}"] for n in range(repetitions)] for way in WAYS}}
    if profile:
        result["profile"] = "\n".join(line for line in text.splitlines() if not line.split(" ")[0].endswith("_ms"))
    return result


def table(seconds: dict[str, list[float]]) -> list[str]:
    """Given {way: seconds per repetition}, return Markdown rows: each way's seconds, median (min–max), what it
    adds to the way before it (per repetition), and the re-run's speed against plain borg."""

    def spread(values: list[float]) -> str:
        return f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})"

    def added(way: str, base: str) -> str:
        return spread([w - b for w, b in zip(seconds[way], seconds[base], strict=True)])

    plain = seconds["plain"]
    return ["| way | seconds | adds, s | speed vs plain |", "|---|---|---|---|",
            f"| `python3 -c pass` | {spread(seconds['python'])} | | |",
            f"| borg-client's imports | {spread(seconds['imports'])} | {added('imports', 'python')} (to python) | |",
            f"| `borg-client check-config` | {spread(seconds['check-config'])} | {added('check-config', 'imports')} "
            "(to imports) | |",
            f"| plain borg re-run to a plain sshd | {spread(plain)} | | 1 |",
            f"| the same with the appliance's create flags | {spread(seconds['flags'])} | "
            f"{added('flags', 'plain')} (to plain) | {ratio(plain, seconds['flags'])} |",
            f"| that to the appliance's server | {spread(seconds['server'])} | "
            f"{added('server', 'flags')} (to flags) | {ratio(plain, seconds['server'])} |",
            f"| `borg-client run` | {spread(seconds['sidecar'])} | {added('sidecar', 'server')} (to server) | "
            f"{ratio(plain, seconds['sidecar'])} |",
            f"| the same run, scheduled (its report's duration) | {spread(seconds['scheduled'])} | "
            f"{added('scheduled', 'server')} (to server) | {ratio(plain, seconds['scheduled'])} |",
            f"| an SSH session of borg serve, plain sshd | {spread(seconds['plain-session'])} | | |",
            f"| the same to the appliance's server | {spread(seconds['server-session'])} | "
            f"{added('server-session', 'plain-session')} (to the plain session) | |"]  # fmt: skip


def ratio(base: list[float], way: list[float]) -> str:
    """Given seconds per repetition of the base and a way, return their paired speed, median (min–max)."""
    values = [b / w for b, w in zip(base, way, strict=True)]
    return f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})"
