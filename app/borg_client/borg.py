"""Borg's command lines and environment, built by pure functions; its exit codes and --json output read."""

from __future__ import annotations

import dataclasses
import json
import shlex
import uuid
from dataclasses import dataclass
from pathlib import Path

from borg_client.config import PASSED_TO_BORG, ClientConfig
from borg_client.retention import archive_glob
from borg_common.borglog import LogJson  # noqa: F401 (borg.LogJson is part of this module's interface)

LOCK_WAIT = 600  # seconds any borg command waits for the repository lock (another run, an admin's prune)
# A prune's own borg cache, in the container, never in the state volume: borg prune deletes every chunk
# whose count in the cache drops to 0, so a cache the sidecar could write (the admin service shares its
# state volume) would let whoever holds the backup key have the admin key delete data kept archives use.
ADMIN_CACHE = Path("/var/cache/borg-admin")
WARNING_CODES = range(100, 128)  # modern exit codes: "some files could not be read" and friends


@dataclass(frozen=True)
class Outcome:
    """What a borg exit code means for a run."""

    status: str  # success | warning | failure
    reason: str


def borg_environment(
    config: ClientConfig, base: dict[str, str], identity: Path | None = None, ssh_messages: Path | None = None
) -> dict[str, str]:
    """Given the configuration, the process environment, where ssh reads the private key (identity, else
    config.ssh_key; borg_common.private_key) and where it writes its messages (ssh -E; else to borg), return the
    environment for borg.

    Everything borg keeps lives in the state volume, but the cache of a config with the admin key as its
    identity (as_admin) is ADMIN_CACHE; ssh pins the server's host key and never asks.
    With RESTORE_FROM_REPLICA, borg's security dir and cache are the replica's own (the repository
    has the primary's id at another place, and its manifest may be older than the last one seen):
    borg reads the copy without a relocation question or a replay alarm, and the primary's record
    stays as it was for the next primary.
    """
    paths = config.paths
    admin = config.retention.admin_key is not None and config.ssh_key == config.retention.admin_key
    security, cache = (
        (paths.replica_security, paths.replica_cache) if config.from_replica else (paths.security, paths.cache)
    )
    cache = ADMIN_CACHE if admin and not config.from_replica else cache
    ssh = [
        "ssh",
        "-i", str(identity or config.ssh_key),
        "-o", f"UserKnownHostsFile={config.known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "IdentitiesOnly=yes",
        "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=15",
        "-o", "ServerAliveInterval=10",
        "-o", "ServerAliveCountMax=30",
        *(["-E", str(ssh_messages)] if ssh_messages else []),
    ]  # fmt: skip
    environment = {key: value for key, value in base.items() if not key.startswith("BORG_") or key in PASSED_TO_BORG}
    environment.update(
        {
            "BORG_REPO": config.repository,
            "BORG_RSH": shlex.join(ssh),
            "BORG_EXIT_CODES": "modern",
            "BORG_HOST_ID": host_id(paths.host_id, config.client),
            "BORG_KEYS_DIR": str(paths.keys),
            "BORG_SECURITY_DIR": str(security),
            "BORG_CACHE_DIR": str(cache),
            "BORG_CONFIG_DIR": str(paths.borg_config),
            "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes" if config.from_replica else "no",  # a replica may move
            "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "no",
            "BORG_DISPLAY_PASSPHRASE": "no",
            "LANG": "C.UTF-8",
        }
    )
    if config.passphrase_file:
        environment["BORG_PASSCOMMAND"] = shlex.join(["cat", str(config.passphrase_file)])
    elif config.passcommand:
        environment["BORG_PASSCOMMAND"] = config.passcommand
    elif config.passphrase:
        environment["BORG_PASSPHRASE"] = config.passphrase
    return environment


def as_admin(config: ClientConfig) -> ClientConfig:
    """Given the configuration, return it with the admin key (BORG_ADMIN_SSH_KEY_FILE) as borg's ssh identity."""
    return dataclasses.replace(config, ssh_key=config.retention.admin_key)


def host_id(path: Path, client: str) -> str:
    """Given the host id file in the state volume, return a BORG_HOST_ID that survives re-creation.

    Borg recognises its own stale locks by host id and pid, so stale locks can be broken; a
    container's hostname changes when it is re-created, so the id is made once and kept in path.
    """
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        identity = f"borg-appliance-{client}@{uuid.uuid4().hex}"
        path.write_text(identity + "\n")
        return identity


def command(*arguments: str) -> list[str]:
    """Given a borg command and its arguments, return the argv that runs it.

    borg logs as JSON (--log-json), so that failures are told apart by message id, not exit code:
    borg 1.4.0 returns errors raised on the server with the legacy exit code 2. Every command waits
    for the repository lock, so a run behind another one (or an admin's prune) waits instead of failing.
    """
    return ["borg", "--log-json", "--lock-wait", str(LOCK_WAIT), *arguments]


def create_argv(
    config: ClientConfig, archive: str, sources: list[str], dumps: str | None = None, special: list[str] = ()
) -> list[str]:
    """Given the configuration, an archive name and source paths, return the borg create argv.

    With dumps (the relative directory of the dumps' named pipes, borg_client.dumps), borg reads the
    pipes as files (--read-special); special, the fifos and devices found in the sources, are then
    excluded, so that none of them is read as data.
    """
    options = ["--json", "--list", "--filter", "AME", "--show-rc"]
    options += ["--compression", config.compression, "--checkpoint-interval", "600"]
    if config.exclude_caches:
        options.append("--exclude-caches")
    if config.backup_timestamp:
        options += ["--timestamp", config.backup_timestamp]
    if dumps:
        options.append("--read-special")
        options += [word for path in special for word in ("--exclude", f"pp:{path}")]
    return command("create", *options, f"::{archive}", *sources, *([dumps] if dumps else []))


def rename_argv(archive: str, name: str) -> list[str]:
    return command("rename", f"::{archive}", name)


def prune_argv(config: ClientConfig) -> list[str]:
    """Given the configuration, return the borg prune argv: this client's archives, the KEEP_* rules, listed.

    Never compacts: the server applies an admin's deletes (or a human does).
    """
    rules = [word for option, value in config.retention.keep for word in (option, value)]
    glob = archive_glob(config.archive_name, config.client)
    return command("prune", "--list", "--glob-archives", str(glob), *rules)


def newest_argv(config: ClientConfig, count: int = 2) -> list[str]:
    """Given the configuration, return the borg info argv of this client's newest count archives (--json)."""
    glob = archive_glob(config.archive_name, config.client)
    return command("info", "--json", "--glob-archives", str(glob), "--last", str(count))


def init_argv(config: ClientConfig) -> list[str]:
    return command("init", "--encryption", config.encryption)


def list_argv(
    archive: str | None = None, short: bool = False, as_json: bool = False, last: int | None = None
) -> list[str]:
    """Given what to list (one archive's files, or the archives), return the borg list argv."""
    options = [*(["--short"] if short else []), *(["--json"] if as_json else [])]
    options += ["--last", str(last)] if last else []
    return command("list", *options, *([f"::{archive}"] if archive else []))


def check_argv(repository_only: bool = False, verify_data: bool = False) -> list[str]:
    options = [*(["--repository-only"] if repository_only else []), *(["--verify-data"] if verify_data else [])]
    return command("check", *options)


def extract_argv(archive: str, paths: list[str]) -> list[str]:
    """Given an archive and paths in it (absolute or not), return the borg extract argv (paths relative).

    Without --list: borg's own logging of every file costs a restore of many small files a third of
    its time (measured: 20,000 files of 1 kB, 21.5 s with it, 14.5–17.1 s without).
    """
    return command("extract", f"::{archive}", *[path.lstrip("/") for path in paths])


def list_paths_argv(archive: str, path: str) -> list[str]:
    """Given an archive and a path in it, return the borg list argv of what is under it, one JSON line each."""
    return command("list", "--json-lines", f"::{archive}", path)


def extract_patterns_argv(archive: str, patterns: Path) -> list[str]:
    """Given an archive and a borg patterns file (spot_check.patterns), return the borg extract argv of those files."""
    return command("extract", "--patterns-from", str(patterns), f"::{archive}")


def newest_archive_argv(config: ClientConfig) -> list[str]:
    """Given the configuration, return the borg list argv of this client's newest archive (--json)."""
    glob = archive_glob(config.archive_name, config.client)
    return command("list", "--json", *(["--glob-archives", glob] if glob else []), "--last", "1")


def drill_check_argv(config: ClientConfig, verify_data: bool = False) -> list[str]:
    """Given the configuration, return the borg check argv of a restore drill: the newest archive's metadata, or with
    verify_data every chunk (borg 1.4 reads every chunk of the repository, a superset of the archive's)."""
    glob = archive_glob(config.archive_name, config.client)
    options = ["--archives-only", *(["--glob-archives", glob] if glob else []), "--last", "1"]
    return command("check", *options, *(["--verify-data"] if verify_data else []))


def extract_stdout_argv(archive: str, path: str) -> list[str]:
    """Given an archive and one file in it, return the borg extract argv that prints the file."""
    return command("extract", "--stdout", f"::{archive}", path)


def mount_argv(archive: str | None, target: Path) -> list[str]:
    """Given one archive (None: all of them) and a mount point, return the borg mount argv (foreground)."""
    return command("mount", "--foreground", f"::{archive}" if archive else "::", str(target))


def key_export_argv(repository: str, target: Path, paper: bool = False) -> list[str]:
    return command("key", "export", *(["--paper"] if paper else []), repository, str(target))


def key_import_argv(repository: str, source: Path | None) -> list[str]:
    """Given the repository and a key file (None: the paper form, read from stdin), return the borg key import argv."""
    return command("key", "import", *(["--paper", repository] if source is None else [repository, str(source)]))


def archive_stats(stdout: str) -> tuple[str | None, dict]:
    """Given borg create's --json output, return the archive name and the report's stats (repository_size: the
    whole repository, deduplicated and compressed, as borg's cache counts it)."""
    try:
        document = json.loads(stdout)
        archive = document["archive"]
        cache = (document.get("cache") or {}).get("stats") or {}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, {}
    stats = archive.get("stats", {})
    return archive.get("name"), {
        "original_size": stats.get("original_size"),
        "compressed_size": stats.get("compressed_size"),
        "deduplicated_size": stats.get("deduplicated_size"),
        "nfiles": stats.get("nfiles"),
        "repository_size": cache.get("unique_csize"),
    }


def outcome(returncode: int) -> Outcome:
    """Given borg's modern exit code, return success, warning or failure."""
    if returncode == 0:
        return Outcome("success", "borg finished without problems")
    if returncode == 1 or returncode in WARNING_CODES:
        return Outcome("warning", f"borg finished with warnings (exit {returncode}); some files may be missing")
    return Outcome("failure", f"borg failed (exit {returncode})")
