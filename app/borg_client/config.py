"""The sidecar's settings, read from the environment and validated before anything runs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from borg_client import drills, retention, retry
from borg_client.drills import Drills
from borg_client.paths import Paths
from borg_client.retention import Retention
from borg_common import cron, digest, notify
from borg_common.settings import CLIENT_NAME, ConfigError, Settings, check_unknown
from borg_common.values import control_character, cut, text_problem

STATE = Path("/var/lib/borg-client")
SOURCES = Path("/backup")
PAIRING = Path("/pairing")

ENCRYPTIONS = ("keyfile-blake2", "repokey-blake2", "keyfile", "repokey", "authenticated-blake2", "authenticated")
COMPRESSION_PATTERN = re.compile(
    r"^(none|lz4|(auto,)?(zstd(,([1-9]|1[0-9]|2[0-2]))?|zlib(,[0-9])?|lzma(,[0-9])?|lz4))$"
)
REPO_PATTERN = re.compile(
    r"^ssh://(?P<user>[^@/]+@)?(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(?::(?P<port>[0-9]+))?(?P<path>/.+)$"
)
DOCKER_SOCKET = "/var/run/docker.sock"
DEFAULT_CRON = "0 3 * * *"
DEFAULT_COMPRESSION = "zstd,3"
DEFAULT_ARCHIVE_NAME = "{client}-{utcnow:%Y-%m-%dT%H:%M:%S}"
LABEL_SELECTOR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*(=[^\s=]*)?$")  # COVERAGE_SCOPE's `key` or `key=value`
IGNORE_LIMIT = 100  # patterns in COVERAGE_IGNORE
MAXIMUM_JITTER = 86400  # a day: a later run would start before this one
MINIMUM_TIMEOUT, MAXIMUM_TIMEOUT = 1, 600
PATH_LIMIT, PASSPHRASE_LIMIT = 4096, 4096  # characters of a path, a passphrase or a passcommand


SETTINGS = (  # every setting of the sidecar (docs/reference/sidecar-settings.md; a test checks both agree)
    "ARCHIVE_NAME", "BACKUP_ALLOW_EMPTY", "BACKUP_CRON", "BACKUP_DUMP_LABEL", "BACKUP_DUMP_SCOPE", "BACKUP_JITTER",
    "BACKUP_STOP_LABEL", "COVERAGE_IGNORE", "COVERAGE_SCOPE",
    "BORG_ADMIN_SSH_KEY_FILE", "BORG_COMPRESSION", "BORG_ENCRYPTION", "BORG_KEY_IMPORT_FILE", "BORG_KNOWN_HOSTS_FILE",
    "BORG_PASSCOMMAND", "BORG_PASSPHRASE", "BORG_REPO", "BORG_SSH_KEY_FILE", "CLIENT_NAME", "DIGEST_CRON",
    "EXCLUDE_CACHES", "HEALTHCHECKS_URL",
    "KEEP_DAILY", "KEEP_HOURLY", "KEEP_MONTHLY", "KEEP_WEEKLY", "KEEP_WITHIN", "KEEP_YEARLY", "LOG_LEVEL",
    "NOTIFY_ON", "NOTIFY_URLS", "PRUNE_CRON", "PRUNE_MIN_SIZE_RATIO", "REPORT_TIMEOUT", "REPORT_URLS",
    "RESTORE_FROM_REPLICA", "RETRY_DELAYS",
    "TZ", "VERIFY_CRON", "VERIFY_DATA_EVERY", "VERIFY_SAMPLE",
)  # fmt: skip
PASSED_TO_BORG = (  # borg's own variables a user may set: passed to every borg the sidecar runs
    "BORG_FILES_CACHE_TTL", "BORG_SHOW_SYSINFO", "BORG_CHECK_I_KNOW_WHAT_I_AM_DOING",
    "BORG_DELETE_I_KNOW_WHAT_I_AM_DOING",
)  # fmt: skip
SET_BY_SIDECAR = {  # borg's variables the sidecar sets itself (borg.borg_environment): a user's would be ignored
    name: f"is set by the sidecar itself ({why}); remove it"
    for why, names in (
        ("everything borg keeps is in the state volume", ("BORG_BASE_DIR", "BORG_CACHE_DIR", "BORG_CONFIG_DIR",
                                                           "BORG_KEYS_DIR", "BORG_SECURITY_DIR", "BORG_HOST_ID")),
        ("ssh pins the server's host key: set BORG_SSH_KEY_FILE and BORG_KNOWN_HOSTS_FILE", ("BORG_RSH",)),
        ("its reports read borg's exit codes and refuse moved or unencrypted repositories",
         ("BORG_EXIT_CODES", "BORG_RELOCATED_REPO_ACCESS_IS_OK", "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK")),
        ("the key is in the state volume, the passphrase in BORG_PASSPHRASE_FILE",
         ("BORG_KEY_FILE", "BORG_PASSPHRASE_FD", "BORG_NEW_PASSPHRASE", "BORG_DISPLAY_PASSPHRASE")),
    )
    for name in names
}  # fmt: skip
NO_NAME = (
    "not set, and no pairing export names this client; set it to the client's name on the server (BORG_CLIENTS): "
    "archives are named after it and prune keeps only its own, so it must stay the same when the container is "
    "re-created"
)


class NotPaired(ConfigError):
    """Every problem is a file of the pairing export that is not there yet: `schedule` waits for it."""


@dataclass(frozen=True)
class ClientConfig:
    """Everything a run needs, resolved and validated."""

    client: str
    repository: str
    ssh_key: Path
    known_hosts: Path
    passphrase_file: Path | None
    passcommand: str | None
    passphrase: str | None
    cron: str
    jitter: int
    archive_name: str
    compression: str
    encryption: str
    exclude_caches: bool
    stop_label: str | None
    report_urls: tuple[str, ...]
    healthchecks_url: str | None
    report_timeout: int = 10
    dump_label: str | None = None  # BACKUP_DUMP_LABEL: only containers also carrying it are dumped (borg_client.dumps)
    prune_only: bool = False  # no backup key, only BORG_ADMIN_SSH_KEY_FILE: a prune service (ssh_key is the admin key)
    dump_scope: str = "project"  # BACKUP_DUMP_SCOPE: project (the sidecar's own compose project or stack) or host
    allow_empty: bool = False
    from_replica: bool = False  # RESTORE_FROM_REPLICA: BORG_REPO is a replica's copy (borg_client.borg)
    log_level: str = "INFO"  # LOG_LEVEL: one of Python's logging levels, upper case
    retry_delays: tuple[int, ...] = retry.DEFAULT_DELAYS  # seconds before each retry of a failed run
    retention: Retention = Retention()  # KEEP_*, PRUNE_CRON, the admin key
    notify: notify.Notify = notify.Notify()  # NOTIFY_URLS, NOTIFY_ON (borg_common.notify)
    drills: Drills = Drills()  # VERIFY_CRON, VERIFY_SAMPLE, VERIFY_DATA_EVERY (borg_client.drills)
    digest_cron: str | None = digest.DEFAULT_CRON  # DIGEST_CRON (borg_common.digest); None: off
    coverage_scope: str = "host"  # COVERAGE_SCOPE: host, project or a label (borg_client.coverage)
    coverage_ignore: tuple[str, ...] = ()  # COVERAGE_IGNORE: patterns of volumes, paths or containers left out
    key_import_file: Path | None = None  # BORG_KEY_IMPORT_FILE: a saved kit or key, imported at start (keyimport)
    backup_timestamp: str | None = None  # `run --timestamp` (tests): borg create --timestamp, UTC
    state: Path = STATE
    sources: Path = SOURCES

    @cached_property
    def paths(self) -> Paths:
        """The files and directories of this client's state volume (made once per configuration)."""
        return Paths(self.state, self.client)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings that must never be logged: the passphrase, as a setting or as BORG_PASSPHRASE_FILE's content."""
        found = [self.passphrase]
        if self.passphrase_file:
            try:
                found.append(self.passphrase_file.read_text(errors="replace").strip())
            except OSError:
                pass  # load() named the problem; a file gone since then has nothing left to mask
        return tuple(secret for secret in found if secret)


def pairing_value(pairing: Path, name: str) -> str | None:
    """Return the stripped content of a pairing file, or None if it is missing."""
    try:
        return (pairing / name).read_text().strip() or None
    except OSError:
        return None


def load(environ: Mapping[str, str], pairing: Path = PAIRING) -> ClientConfig:
    """Given the environment and the pairing directory, return the configuration.

    Raise settings.ConfigError listing every problem, one line each naming its setting; NotPaired
    if the only problems are files of the pairing export not there yet (BORG_REPO, BORG_SSH_KEY_FILE
    and BORG_KNOWN_HOSTS_FILE unset, so read from the pairing directory).
    """
    settings, unpaired = Settings(environ), []
    named = settings.string("CLIENT_NAME", limit=64)
    client = named or pairing_value(pairing, "client_name") or ""
    if client and not CLIENT_NAME.fullmatch(client):
        shown = settings.shown("CLIENT_NAME", client) if named else repr(cut(client))
        settings.problem(settings.label("CLIENT_NAME"), f"{shown} does not match {CLIENT_NAME.pattern}")
    repository = settings.string("BORG_REPO", limit=PATH_LIMIT) or pairing_value(pairing, "repo_url")
    if not repository:
        unpaired.append(
            f"BORG_REPO: not set, and no pairing export in {pairing}; set e.g. ssh://borg@backup-server:22/./main"
        )
    if not client and not repository:  # never the container's hostname: it changes at every re-create
        unpaired.append(f"CLIENT_NAME: {NO_NAME}")
    elif not client:
        settings.problem("CLIENT_NAME", NO_NAME)
    elif not REPO_PATTERN.fullmatch(repository):  # a URL is never quoted: it may hold a secret
        settings.problem(settings.label("BORG_REPO"), "is not ssh://[user@]host[:port]/path")
    ssh_key = Path(settings.string("BORG_SSH_KEY_FILE", limit=PATH_LIMIT) or pairing / "id_ed25519")
    kept = retention.load(settings)
    prune_only = kept.admin_key is not None and not settings.is_set("BORG_SSH_KEY_FILE") and not _is_file(ssh_key)
    if prune_only:
        ssh_key = kept.admin_key  # a prune service (another machine): the admin key is its only key
    known_hosts = Path(settings.string("BORG_KNOWN_HOSTS_FILE", limit=PATH_LIMIT) or pairing / "known_hosts")
    for setting, path in (("BORG_SSH_KEY_FILE", ssh_key), ("BORG_KNOWN_HOSTS_FILE", known_hosts)):
        if not _is_file(path):
            explained = "does not exist; mount the server's pairing export or set"
            if not settings.is_set(setting):
                unpaired.append(f"{setting}: {cut(str(path))} {explained} {setting}")
                continue
            where = settings.shown(setting, str(path), quote=False)
            settings.problem(settings.label(setting), f"{cut(where)} {explained} {setting}")
    passphrase_file = environ.get("BORG_PASSPHRASE_FILE") or None
    passcommand = environ.get("BORG_PASSCOMMAND") or None
    passphrase = environ.get("BORG_PASSPHRASE") or None
    given = [name for name, value in (("BORG_PASSPHRASE_FILE", passphrase_file), ("BORG_PASSCOMMAND", passcommand),
                                      ("BORG_PASSPHRASE", passphrase)) if value]  # fmt: skip
    if not given:
        settings.problem(
            "BORG_PASSPHRASE_FILE", "no passphrase: set BORG_PASSPHRASE_FILE (a Docker secret) or BORG_PASSCOMMAND"
        )
    elif len(given) > 1:
        settings.problem(given[0], f"set only one of {', '.join(given)}")
    check_passphrase(settings, passphrase_file, passcommand, passphrase)
    compression = settings.string("BORG_COMPRESSION", limit=64) or DEFAULT_COMPRESSION
    if not COMPRESSION_PATTERN.fullmatch(compression):
        shown = settings.shown("BORG_COMPRESSION", compression)
        settings.problem(
            settings.label("BORG_COMPRESSION"), f"{shown} is not a borg compression (e.g. lz4, zstd,3, auto,zstd,6)"
        )
    config = ClientConfig(
        client=client,
        repository=repository or "",
        ssh_key=ssh_key,
        known_hosts=known_hosts,
        passphrase_file=Path(passphrase_file) if passphrase_file else None,
        passcommand=passcommand,
        passphrase=passphrase,
        cron=settings.string("BACKUP_CRON", limit=256) or DEFAULT_CRON,
        jitter=settings.duration("BACKUP_JITTER", 0, 0, MAXIMUM_JITTER),
        archive_name=settings.string("ARCHIVE_NAME", limit=200) or DEFAULT_ARCHIVE_NAME,
        compression=compression,
        encryption=settings.choice("BORG_ENCRYPTION", "keyfile-blake2", ENCRYPTIONS),
        exclude_caches=settings.boolean("EXCLUDE_CACHES", True),
        stop_label=settings.string("BACKUP_STOP_LABEL", limit=256),
        dump_label=settings.string("BACKUP_DUMP_LABEL", limit=256),
        prune_only=prune_only,
        dump_scope=settings.choice("BACKUP_DUMP_SCOPE", "project", ("project", "host")),
        report_urls=settings.urls("REPORT_URLS"),
        healthchecks_url=settings.url("HEALTHCHECKS_URL"),
        report_timeout=settings.duration("REPORT_TIMEOUT", 10, MINIMUM_TIMEOUT, MAXIMUM_TIMEOUT),
        allow_empty=settings.boolean("BACKUP_ALLOW_EMPTY", False),
        from_replica=settings.boolean("RESTORE_FROM_REPLICA", False),
        log_level=settings.log_level("LOG_LEVEL"),
        retry_delays=retry.delays(settings),
        retention=kept,
        notify=notify.read(settings),
        drills=drills.load(settings),
        digest_cron=digest.read(settings),
        coverage_scope=coverage_scope(settings),
        coverage_ignore=tuple(settings.words("COVERAGE_IGNORE")),
        key_import_file=key_import_file(settings),
    )
    check_archive_name(settings, config.archive_name)
    check_cron(settings, config.cron)
    check_timezone(settings, environ.get("TZ"))
    check_coverage_ignore(settings, config.coverage_ignore)
    for setting, value in (("BACKUP_STOP_LABEL", config.stop_label), ("BACKUP_DUMP_LABEL", config.dump_label),
                           ("COVERAGE_SCOPE", settings.is_set("COVERAGE_SCOPE")),
                           ("COVERAGE_IGNORE", settings.is_set("COVERAGE_IGNORE"))):  # fmt: skip
        if value and not Path(DOCKER_SOCKET).exists():
            socket_needed = f"needs the Docker socket: mount {DOCKER_SOCKET} into the sidecar"
            settings.problem(settings.label(setting), socket_needed)
    check_unknown(settings, SETTINGS + PASSED_TO_BORG, "sidecar", "docs/reference/sidecar-settings.md", SET_BY_SIDECAR)
    if settings.problems:
        raise ConfigError(settings.problems + unpaired)
    if unpaired:
        raise NotPaired(unpaired)
    return config


def coverage_scope(settings: Settings) -> str:
    """Return COVERAGE_SCOPE: `host` (default), `project` (the sidecar's own compose project or stack) or a label
    `key` / `key=value`; record a problem for anything else."""
    value = settings.string("COVERAGE_SCOPE", limit=256)
    if value is None or value == "":
        return "host"
    if value in ("host", "project") or LABEL_SELECTOR.fullmatch(value):
        return value
    shown = settings.shown("COVERAGE_SCOPE", value)
    settings.problem(settings.label("COVERAGE_SCOPE"), f"{shown} is not host, project or a label (key or key=value)")
    return "host"


def check_coverage_ignore(settings: Settings, patterns: tuple[str, ...]) -> None:
    """Record a problem if COVERAGE_IGNORE has more than IGNORE_LIMIT patterns or one is longer than a path."""
    if len(patterns) > IGNORE_LIMIT:
        settings.problem(
            settings.label("COVERAGE_IGNORE"), f"has {len(patterns)} patterns; the limit is {IGNORE_LIMIT}"
        )
    elif any(len(pattern) > PATH_LIMIT for pattern in patterns):
        settings.problem(settings.label("COVERAGE_IGNORE"), f"has a pattern over {PATH_LIMIT} characters")


def key_import_file(settings: Settings) -> Path | None:
    """Return BORG_KEY_IMPORT_FILE, or None if unset; record a problem if it is no file holding a borg key."""
    given = settings.string("BORG_KEY_IMPORT_FILE", limit=PATH_LIMIT)
    if not given:
        return None
    from borg_client import kit_format  # here, not at the top: its hashing (OpenSSL) is 12 ms every command pays

    try:
        kit_format.read(Path(given), settings.shown("BORG_KEY_IMPORT_FILE", given, quote=False))
    except kit_format.Unreadable as error:
        settings.problem(settings.label("BORG_KEY_IMPORT_FILE"), str(error))
        return None
    return Path(given)


def check_archive_name(settings: Settings, name: str) -> None:
    """Record a problem if the archive name template is unusable."""
    if "{hostname}" in name:
        settings.problem("ARCHIVE_NAME", "{hostname} changes whenever the container is recreated; use {client}")
    if "{" not in name:
        shown = settings.shown("ARCHIVE_NAME", name)
        settings.problem(
            settings.label("ARCHIVE_NAME"),
            f"{shown} has no placeholder, so every run would reuse one name; add {{utcnow}}",
        )
    if "/" in name:
        settings.problem(settings.label("ARCHIVE_NAME"), "contains /, which borg refuses in an archive name")


def check_cron(settings: Settings, expression: str) -> None:
    """Record a problem if expression is not a five-field cron expression."""
    cron.check(settings, "BACKUP_CRON", expression)


def check_timezone(settings: Settings, name: str | None) -> None:
    """Record a problem if TZ names no known time zone."""
    if not name:
        return
    problem = text_problem(name, 256, allowed="")
    if problem:
        settings.problem("TZ", problem)
        return
    try:
        ZoneInfo(name.removeprefix(":"))
    except (ZoneInfoNotFoundError, ValueError, OSError):
        settings.problem("TZ", f"{settings.shown('TZ', name)} is not a time zone (e.g. Europe/Berlin, UTC)")


def check_passphrase(settings: Settings, file: str | None, command: str | None, passphrase: str | None) -> None:
    """Record a problem if the passphrase file is unreadable or empty, or a passphrase or passcommand is
    malformed; none of them is ever quoted."""
    for setting, value in (
        ("BORG_PASSPHRASE_FILE", file),
        ("BORG_PASSCOMMAND", command),
        ("BORG_PASSPHRASE", passphrase),
    ):
        problem = value and text_problem(value, PASSPHRASE_LIMIT, allowed="\t" if setting != "BORG_PASSPHRASE" else "")
        if problem:
            settings.problem(setting, problem)
            return
    if not file:
        return
    try:
        with open(file, "rb") as secret:  # a passphrase is short; /dev/zero must not fill the memory
            text = secret.read(PASSPHRASE_LIMIT + 1).decode("utf-8", errors="replace")
    except OSError as error:
        settings.problem("BORG_PASSPHRASE_FILE", f"cannot read {cut(file)}: {error.strerror}")
        return
    if not text.strip():
        settings.problem("BORG_PASSPHRASE_FILE", f"{cut(file)} is empty")
    elif len(text) > PASSPHRASE_LIMIT or control_character(text.rstrip("\r\n"), "\t"):
        limit = PASSPHRASE_LIMIT
        settings.problem("BORG_PASSPHRASE_FILE", f"{cut(file)} is not a passphrase: over {limit} bytes or binary")


def _is_file(path: Path) -> bool:
    """Given a path, return whether it is a file; a path the system refuses (too long) is none."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False
