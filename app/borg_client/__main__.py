"""borg-client: the sidecar's command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

from borg_client import config as client_config
from borg_client import restore, runner, schedule
from borg_common.logs import setup_logging
from borg_common.settings import ConfigError

logger = logging.getLogger("borg_client")

EXIT_CODES = {"success": 0, "warning": 1, "skipped": 3, "failure": 2, "interrupted": 4}
FIRST_START_GRACE = timedelta(minutes=15)


def load_or_explain() -> client_config.ClientConfig | None:
    """Return the validated configuration, or print every problem and return None."""
    try:
        return client_config.load(os.environ)
    except ConfigError as error:
        print(f"borg-client: the configuration has {len(error.problems)} problem(s):", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return None


def command_run(config, _arguments) -> int:
    report = runner.run_once(config, wait=True)
    return EXIT_CODES[report["status"]]


def command_schedule(config, _arguments) -> int:
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    schedule.loop(config, stop)
    return 0


def command_list(config, arguments) -> int:
    argv = ["borg", "list", *(["--short"] if arguments.short else []), *(["--json"] if arguments.json else [])]
    if arguments.last:
        argv += ["--last", str(arguments.last)]
    if arguments.archive:
        argv.append(f"::{arguments.archive}")
    call = runner.call_borg(config, argv, capture_json=True)
    print(call.stdout, end="")
    return call.returncode


def command_restore(config, arguments) -> int:
    try:
        return restore.restore(
            config, arguments.archive, arguments.paths, Path(arguments.target), arguments.overwrite_live
        )
    except restore.RestoreRefused as error:
        print(f"borg-client: {error}", file=sys.stderr)
        return 2


def command_borg(config, arguments) -> int:
    """Run any borg command with the sidecar's repository, key, passphrase and pinned host key."""
    call = runner.call_borg(config, ["borg", *arguments.borg_args], capture_json=True)
    print(call.stdout, end="")
    return call.returncode


def command_check_config(config, _arguments) -> int:
    resolved = {key: str(value) for key, value in vars(config).items()}
    for secret in ("passphrase",):
        if resolved.get(secret) not in (None, "None"):
            resolved[secret] = "***"
    print(json.dumps(resolved, indent=2, sort_keys=True))
    return 0


def command_healthcheck(config, _arguments) -> int:
    """Exit 1 when the last run failed, or no success within 1.5 periods (after a first-start grace)."""
    runs = [run for run in runner.last_runs(config.state) if run.get("status") != "skipped"]
    current = datetime.now().astimezone()
    if runs and runs[-1].get("status") == "failure":
        print(f"the last backup failed: {runs[-1].get('message')}")
        return 1
    age = schedule.last_success_age(runs, current)
    allowed = schedule.period(config.cron, current) * 1.5
    started = datetime.fromtimestamp(os.stat("/proc/1").st_mtime).astimezone()
    if age is None and current - started < FIRST_START_GRACE:
        return 0
    if age is None or age > allowed:
        print(f"no successful backup within {allowed} (last: {age or 'never'})")
        return 1
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="borg-client", description="Borg Appliance client sidecar.")
    commands = main.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="one backup now").set_defaults(handler=command_run)
    commands.add_parser("schedule", help="back up on BACKUP_CRON until stopped").set_defaults(handler=command_schedule)
    listing = commands.add_parser("list", help="list archives, or the files in one archive")
    listing.add_argument("archive", nargs="?", help="list the files in this archive")
    listing.add_argument("--short", action="store_true", help="names only")
    listing.add_argument("--last", type=int, metavar="N", help="only the last N archives")
    listing.add_argument("--json", action="store_true", help="borg's JSON output")
    listing.set_defaults(handler=command_list)
    restoring = commands.add_parser("restore", help="extract an archive (or some paths of it) into a directory")
    restoring.add_argument("archive", help="archive name, as `borg-client list` shows it")
    restoring.add_argument("paths", nargs="*", help="only these paths, e.g. backup/app-data/journal.txt")
    restoring.add_argument("--target", required=True, help="directory to extract into (created if missing)")
    restoring.add_argument("--overwrite-live", action="store_true", help="allow a target that overwrites /backup")
    restoring.set_defaults(handler=command_restore)
    passthrough = commands.add_parser("borg", help="run a borg command with the sidecar's settings (borg info, …)")
    passthrough.add_argument("borg_args", nargs=argparse.REMAINDER)
    passthrough.set_defaults(handler=command_borg)
    commands.add_parser("check-config", help="print the resolved settings, secrets masked").set_defaults(
        handler=command_check_config
    )
    commands.add_parser("healthcheck", help="exit 0 while backups succeed on schedule").set_defaults(
        handler=command_healthcheck
    )
    return main


def main() -> int:
    arguments = parser().parse_args()
    setup_logging(os.environ.get("LOG_LEVEL", "INFO"))
    config = load_or_explain()
    if config is None:
        return 2
    return arguments.handler(config, arguments)


if __name__ == "__main__":
    sys.exit(main())
