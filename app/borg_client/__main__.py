"""borg-client: the sidecar's command line.

Each command imports the modules only it needs when it runs (restore, drills, the kit, the coverage table, the
digest, status, prune): every `borg-client` command starts a Python, and a `borg-client run` should not pay for
the others' imports (measured in the client image: importing borg-client took 0.123 s before, 0.107 s after).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from borg_client import borg, repository, run
from borg_client import config as client_config
from borg_client.borgcall import Control, call_borg
from borg_common import notify
from borg_common.logs import setup_logging
from borg_common.settings import ConfigError
from borg_common.urls import redact_url

logger = logging.getLogger("borg_client")

EXIT_CODES = {"success": 0, "warning": 1, "failure": 2, "skipped": 3, "interrupted": 4}
MASKED = ("passphrase", "passcommand")
TEXT_SETTINGS = {"client": "CLIENT_NAME", "repository": "BORG_REPO", "cron": "BACKUP_CRON",
                 "archive_name": "ARCHIVE_NAME", "compression": "BORG_COMPRESSION",
                 "stop_label": "BACKUP_STOP_LABEL", "dump_label": "BACKUP_DUMP_LABEL",
                 "dump_scope": "BACKUP_DUMP_SCOPE"}  # fmt: skip


def load_or_explain() -> client_config.ClientConfig | None:
    """Return the validated configuration, or print every problem and return None."""
    try:
        return client_config.load(os.environ)
    except ConfigError as error:
        print(error.explain("borg-client"), file=sys.stderr)
        return None


def unpaired() -> bool:
    """Return whether the only problems of the configuration are a pairing export not there yet."""
    try:
        client_config.load(os.environ)
    except client_config.NotPaired:
        return True
    except ConfigError:
        pass
    return False


def command_run(config, arguments) -> int:
    """One backup now (waits for a scheduled run that is going on); --timestamp (tests) dates its archive."""
    control = Control()
    if arguments.timestamp:
        config = dataclasses.replace(config, backup_timestamp=arguments.timestamp)
    signal.signal(signal.SIGTERM, lambda *_: control.interrupt())
    signal.signal(signal.SIGINT, lambda *_: control.interrupt())
    return EXIT_CODES[run.run_once(config, wait=True, control=control).status]


def command_verify(config, _arguments) -> int:
    """One restore drill now (waits for a backup or prune that is going on); exit 0 when it passed."""
    from borg_client import verify

    control = Control()
    signal.signal(signal.SIGTERM, lambda *_: control.interrupt())
    signal.signal(signal.SIGINT, lambda *_: control.interrupt())
    return EXIT_CODES[verify.verify_once(config, control=control).status]


def command_schedule(_config, _arguments) -> int:
    """Back up on BACKUP_CRON until SIGTERM; a running borg create writes a checkpoint first.

    Waits for a pairing export that is not there yet (wrong settings exit 2 at once).
    """
    from borg_client import keyimport, schedule, waiting

    stop, control = threading.Event(), Control()
    schedule.handle_signals(stop, control)
    try:
        config = waiting.paired_configuration(os.environ, stop)
    except ConfigError as error:
        print(error.explain("borg-client"), file=sys.stderr)
        return 2
    if config is not None:
        setup_logging(config.log_level)
        try:
            schedule.loop(config, stop, control)
        except keyimport.Refused as error:
            print(f"borg-client: {error}", file=sys.stderr)
            return 2
    return 0


def command_list(config, arguments) -> int:
    from borg_client import dumprestore

    if arguments.dumps:
        if not arguments.archive:
            print("borg-client: list --dumps needs an ARCHIVE", file=sys.stderr)
            return 2
        return dumprestore.command_list_dumps(config, arguments.archive)
    argv = borg.list_argv(arguments.archive, short=arguments.short, as_json=arguments.json, last=arguments.last)
    call = call_borg(config, argv, capture_json=True)
    print(call.stdout, end="")
    return call.returncode


def command_restore(config, arguments) -> int:
    from borg_client import restore

    try:
        return restore.restore(
            config, arguments.archive, arguments.paths, Path(arguments.target), arguments.overwrite_live
        )
    except restore.RestoreRefused as error:
        print(f"borg-client: {error}", file=sys.stderr)
        return 2


def command_restore_dump(config, arguments) -> int:
    """Stream a dump from an archive back into a running database container."""
    from borg_client import dumprestore, dumps

    try:
        return dumprestore.restore_dump(
            config, arguments.archive, arguments.container, arguments.database, arguments.into, arguments.force
        )
    except (dumprestore.RestoreFailed, dumps.DumpFailed) as error:
        print(f"borg-client: {error}", file=sys.stderr)
        return 2


def command_verify_dumps(config, arguments) -> int:
    """Restore the dumps of an archive (default: the newest) into throw-away containers; print how each went."""
    from borg_client import dump_drill

    control = Control()
    signal.signal(signal.SIGTERM, lambda *_: control.interrupt())
    signal.signal(signal.SIGINT, lambda *_: control.interrupt())
    return dump_drill.command_verify_dumps(config, arguments.archive, control)


def command_mount(config, arguments) -> int:
    from borg_client import restore

    try:
        return restore.mount(config, arguments.archive, Path(arguments.target))
    except restore.RestoreRefused as error:
        print(f"borg-client: {error}", file=sys.stderr)
        return 2


def command_check(config, arguments) -> int:
    argv = borg.check_argv(repository_only=arguments.repository_only, verify_data=arguments.verify_data)
    return call_borg(config, argv).returncode


def command_export_key(config, _arguments) -> int:
    try:
        path = repository.export_key(config)
    except repository.RunFailed as error:
        logger.error("%s", error)
        return 2
    print(path.read_text(), end="")
    return 0


def command_recovery_kit(config, arguments) -> int:
    """Print the recovery kit (and write it beside the key export); --confirm-saved records that a person saved it."""
    from borg_client import recovery_kit

    if arguments.confirm_saved:
        if not config.paths.recovery_kit.exists():
            print(f"borg-client: no recovery kit was printed yet: run `{recovery_kit.COMMAND}` first", file=sys.stderr)
            return 2
        when = recovery_kit.confirm_saved(config.paths)
        print(f"recovery kit confirmed saved off this host on {when}")
        return 0
    try:
        path, text = recovery_kit.write(config)
    except repository.RunFailed as error:
        print(f"borg-client: {error}", file=sys.stderr)
        return 2
    print(text, end="")
    print(
        f"borg-client: the recovery kit is written to {path} too. Keep a copy off this host, with the passphrase "
        f"(not in it); then run `{recovery_kit.COMMAND} --confirm-saved`",
        file=sys.stderr,
    )
    return 0


def command_import_key(config, arguments) -> int:
    """Import a saved kit or borg key export into a fresh sidecar's state volume; refuse one of another repository."""
    from borg_client import keyimport

    try:
        print(keyimport.import_key(config, Path(arguments.file)))
    except (keyimport.Refused, repository.RunFailed) as error:
        print(f"borg-client: {error}", file=sys.stderr)
        return 2
    return 0


def command_init(config, arguments) -> int:
    """Initialise the repository now; on a sidecar that backed up before only with --new-repository."""
    try:
        moved = repository.initialise_explicitly(config, arguments.new_repository)
    except repository.RunFailed as error:
        print(f"borg-client: {error}", file=sys.stderr)
        return 2
    kept = f"; the old record and key export are kept as {', '.join(map(str, moved))}" if moved else ""
    print(f"initialised a new repository {config.repository}{kept}")
    return 0


def command_borg(config, arguments) -> int:
    """Run any borg command with the sidecar's repository, key, passphrase and pinned host key."""
    call = call_borg(config, borg.command(*arguments.borg_args), capture_json=True)
    print(call.stdout, end="")
    return call.returncode


def command_check_config(config, _arguments) -> int:
    """Print the resolved settings: secrets as ***, report URLs as scheme://host/… (a path may be a token), NOTIFY_URLS
    as scheme://host/… or scheme://… (borg_common.notify.shown), text read from a *_FILE as where it came from."""
    resolved = {key: (str(value) if value is not None else None) for key, value in vars(config).items()}
    for key in MASKED:
        if resolved.get(key):
            resolved[key] = "***"
    for key, setting in TEXT_SETTINGS.items():  # a file's text is never shown: it may hold a secret by mistake
        if os.environ.get(f"{setting}_FILE") and resolved.get(key):
            resolved[key] = f"(read from {setting}_FILE)"
    resolved["report_urls"] = str(tuple(redact_url(url) for url in config.report_urls))
    if config.healthchecks_url:
        resolved["healthchecks_url"] = redact_url(config.healthchecks_url)
    resolved["notify"] = {"urls": [notify.shown(url) for url in config.notify.urls], "on": sorted(config.notify.on)}
    print(json.dumps(resolved, indent=2, sort_keys=True))
    return 0


def deferred(module: str, name: str) -> Callable[[client_config.ClientConfig | None, argparse.Namespace], int]:
    """Return the handler that imports borg_client.<module> when its command runs, and calls its function name."""

    def handler(config, arguments) -> int:
        return getattr(importlib.import_module(f"borg_client.{module}"), name)(config, arguments)

    return handler


command_prune = deferred("prunecli", "command_prune")
command_prune_schedule = deferred("prunecli", "command_prune_schedule")
command_status = deferred("status", "command_status")
command_healthcheck = deferred("status", "command_healthcheck")
command_digest = deferred("digest", "command_digest")
command_coverage = deferred("coverage_audit", "command_coverage")


def timestamp(text: str) -> str:
    """Given --timestamp's value, return it as borg create --timestamp takes it (UTC, to the second)."""
    try:
        return datetime.fromisoformat(text).strftime("%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time like 2024-05-06T03:00:00 (UTC)") from None


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="borg-client", description="Borg Appliance client sidecar.")
    commands = main.add_subparsers(dest="command", required=True)

    def command(name: str, handler, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help)
        sub.set_defaults(handler=handler)
        return sub

    running = command("run", command_run, "one backup now")
    running.add_argument("--timestamp", type=timestamp, help=argparse.SUPPRESS)  # tests: an archive made in the past
    command("verify", command_verify, "a restore drill now: check, restore a sample and compare it with the live files")
    command("prune", command_prune, "delete old archives by KEEP_* now, with the admin key (BORG_ADMIN_SSH_KEY_FILE)")
    command(
        "prune-schedule", command_prune_schedule, "prune on PRUNE_CRON until stopped, never back up (admin service)"
    )
    command("schedule", command_schedule, "back up on BACKUP_CRON until stopped (the image's default)")
    listing = command("list", command_list, "list archives, or the files in one archive")
    listing.add_argument("archive", nargs="?", help="list the files in this archive")
    listing.add_argument("--short", action="store_true", help="names only")
    listing.add_argument("--last", type=int, metavar="N", help="only the last N archives")
    listing.add_argument("--json", action="store_true", help="borg's JSON output")
    listing.add_argument("--dumps", action="store_true", help="only the database dumps: container, database, bytes")
    restoring = command("restore", command_restore, "extract an archive (or some paths of it) into a directory")
    restoring.add_argument("archive", help="archive name, as `borg-client list` shows it")
    restoring.add_argument("paths", nargs="*", help="only these paths, e.g. backup/app-data/journal.txt")
    restoring.add_argument("--target", required=True, help="directory to extract into (created if missing)")
    restoring.add_argument("--overwrite-live", action="store_true", help="allow a target that overwrites /backup")
    dumping = command("restore-dump", command_restore_dump, "stream a database dump back into a running container")
    dumping.add_argument("archive", help="archive name, as `borg-client list` shows it")
    dumping.add_argument("container", help="the container the dump was made in")
    dumping.add_argument("--database", help="only this database (default: every dump of the container)")
    dumping.add_argument("--into", metavar="CONTAINER", help="restore into this labelled container instead")
    dumping.add_argument("--force", action="store_true", help="replace what a non-empty target database holds")
    drilling = command(
        "verify-dumps", command_verify_dumps, "restore each database dump into a throw-away container and query it"
    )
    drilling.add_argument("archive", nargs="?", help="archive name (default: the newest)")
    mounting = command("mount", command_mount, "browse archives through FUSE until interrupted")
    mounting.add_argument("archive", nargs="?", help="one archive (default: all of them)")
    mounting.add_argument("--target", default="/mnt/borg", help="mount point (default /mnt/borg)")
    checking = command("check", command_check, "borg check of the repository and archives")
    checking.add_argument("--repository-only", action="store_true")
    checking.add_argument("--verify-data", action="store_true", help="also decrypt and verify every chunk (slow)")
    initing = command("init", command_init, "initialise the repository now (a first run does it by itself)")
    initing.add_argument(
        "--new-repository", action="store_true",
        help="after backups were made: start a new, empty repository; the old record and key export are kept aside",
    )  # fmt: skip
    command("export-key", command_export_key, "export the repository key to the state volume and print it")
    kit = command("recovery-kit", command_recovery_kit, "print what restores this client on a new host (no passphrase)")
    kit.add_argument("--confirm-saved", action="store_true", help="record that you saved the kit off this host")
    importing = command("import-key", command_import_key, "give a fresh sidecar its saved recovery kit or key")
    importing.add_argument("file", help="the recovery kit, or a borg key export (file or paper form)")
    status = command(
        "status", command_status, "last runs, reports waiting, next run, whether the recovery kit was saved"
    )
    status.add_argument("--json", action="store_true")
    status.add_argument("--runs", type=int, default=5, help="how many runs to show")
    command(
        "digest", command_digest, "print this client's digest now and send it to NOTIFY_URLS (to check they arrive)"
    )
    covering = command("coverage", command_coverage, "what on this host no backup covers (needs the Docker socket)")
    covering.add_argument("--json", action="store_true")
    covering.add_argument("--sizes", action="store_true", help="the volumes' sizes too (docker system df: may be slow)")
    command("check-config", command_check_config, "print the resolved settings, secrets masked")
    command("healthcheck", command_healthcheck, "exit 0 while backups succeed on schedule")
    passthrough = command("borg", command_borg, "run a borg command with the sidecar's settings (borg info, …)")
    passthrough.add_argument("borg_args", nargs=argparse.REMAINDER)
    return main


def main() -> int:
    arguments = parser().parse_args()
    setup_logging(os.environ.get("LOG_LEVEL", "INFO"))
    if arguments.handler is command_schedule:
        return command_schedule(None, arguments)
    if arguments.handler is command_healthcheck and unpaired():
        return command_healthcheck(None, arguments)
    config = load_or_explain()
    if config is None:
        return 2
    setup_logging(config.log_level)
    return arguments.handler(config, arguments)


if __name__ == "__main__":
    sys.exit(main())
