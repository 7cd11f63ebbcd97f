"""Retention settings: what `borg-client prune` keeps (KEEP_*), when it runs (PRUNE_CRON), with which key.

Pruning needs the client's admin identity (BORG_ADMIN_SSH_KEY_FILE): through the append-only key the
server only writes the deletes down and keeps every archive's data, so `prune` refuses instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from borg_common import cron as schedule
from borg_common.settings import Settings
from borg_common.values import cut

# setting -> borg prune option, in borg's order
RULES = (
    ("KEEP_WITHIN", "--keep-within"),
    ("KEEP_HOURLY", "--keep-hourly"),
    ("KEEP_DAILY", "--keep-daily"),
    ("KEEP_WEEKLY", "--keep-weekly"),
    ("KEEP_MONTHLY", "--keep-monthly"),
    ("KEEP_YEARLY", "--keep-yearly"),
)
MAXIMUM_KEEP = 100000
WITHIN_PATTERN = re.compile(r"^[1-9][0-9]{0,3}[Hdwmy]$")  # borg's interval: 12H, 7d, 4w, 6m, 1y (up to 9999)
RATIO_PATTERN = re.compile(r"^[0-9]{0,3}(\.[0-9]{1,6})?$")
DEFAULT_MIN_SIZE_RATIO = 0.5
RECENT_MARGIN = 1.5  # the newest archive may be this many backup periods old before prune refuses
APPEND_ONLY_REFUSAL = (
    "the append-only key can only write deletes down; the server would keep every archive's data and "
    "report the deletes as an attack. Set BORG_ADMIN_SSH_KEY_FILE to the client's admin key "
    "(the server's BORG_CLIENT_<NAME>_ADMIN_KEY)"
)


@dataclass(frozen=True)
class Retention:
    """What prune keeps, when it runs on its own, and the admin key it prunes with."""

    keep: tuple[tuple[str, str], ...] = ()  # (borg option, value), e.g. ("--keep-daily", "7")
    cron: str | None = None  # PRUNE_CRON: prune on this schedule (None: only `borg-client prune`)
    admin_key: Path | None = None  # BORG_ADMIN_SSH_KEY_FILE
    min_size_ratio: float = DEFAULT_MIN_SIZE_RATIO  # PRUNE_MIN_SIZE_RATIO: newest/previous original size


def load(settings: Settings) -> Retention:
    """Given the settings, return the retention settings; record a problem for every wrong one.

    With PRUNE_CRON set, at least one KEEP_* and the admin key are required at start.
    """
    keep = []
    for name, option in RULES:
        if name == "KEEP_WITHIN":
            value = settings.string(name, limit=16)
            if value and not WITHIN_PATTERN.fullmatch(value):
                shown = settings.shown(name, value)
                settings.problem(settings.label(name), f"{shown} is not an interval (e.g. 12H, 7d, 4w, 6m, 1y)")
            elif value:
                keep.append((option, value))
        elif settings.is_set(name):
            number = settings.integer(name, 0, 1, MAXIMUM_KEEP)
            if number:
                keep.append((option, str(number)))
    admin = settings.string("BORG_ADMIN_SSH_KEY_FILE", limit=4096)
    if admin and not Path(admin).is_file():
        shown = settings.shown("BORG_ADMIN_SSH_KEY_FILE", admin, quote=False)
        settings.problem(settings.label("BORG_ADMIN_SSH_KEY_FILE"), f"{cut(shown)} is not a file")
    cron = settings.string("PRUNE_CRON", limit=256)
    if cron:
        schedule.check(settings, "PRUNE_CRON", cron)
        if not keep:
            settings.problem("PRUNE_CRON", f"needs at least one of {', '.join(name for name, _ in RULES)}")
        if not admin:
            settings.problem("PRUNE_CRON", f"needs BORG_ADMIN_SSH_KEY_FILE: {APPEND_ONLY_REFUSAL}")
    return Retention(tuple(keep), cron, Path(admin) if admin else None, ratio(settings))


def ratio(settings: Settings) -> float:
    """Return PRUNE_MIN_SIZE_RATIO, a number within 0..1 (0: no size check); record a problem otherwise."""
    value = settings.string("PRUNE_MIN_SIZE_RATIO", limit=16)
    if value is None:
        return DEFAULT_MIN_SIZE_RATIO
    number = float(value) if value and RATIO_PATTERN.fullmatch(value) else -1.0
    if not 0 <= number <= 1:
        shown = settings.shown("PRUNE_MIN_SIZE_RATIO", value)
        settings.problem(settings.label("PRUNE_MIN_SIZE_RATIO"), f"{shown} is not a number within 0..1 (e.g. 0.5)")
        return DEFAULT_MIN_SIZE_RATIO
    return number


def archive_glob(archive_name: str, client: str) -> str | None:
    """Given ARCHIVE_NAME and the client, return the --glob-archives pattern of this client's archives.

    The name's text up to its first placeholder other than {client}, then *; None if that is empty
    (the name starts with a placeholder, so this client's archives cannot be told apart).
    """
    prefix = archive_name.replace("{client}", client).split("{", 1)[0]
    if not prefix:
        return None
    return re.sub(r"([*?\[])", r"[\1]", prefix) + "*"


def refusal(config) -> str | None:
    """Given the client's configuration (ClientConfig), return why prune must not run, or None."""
    retention = config.retention
    if not retention.keep:
        return f"nothing to keep is set: set at least one of {', '.join(name for name, _ in RULES)}"
    if retention.admin_key is None:
        return f"BORG_ADMIN_SSH_KEY_FILE is not set: {APPEND_ONLY_REFUSAL}"
    same = retention.admin_key.resolve() == config.ssh_key.resolve() or same_file(retention.admin_key, config.ssh_key)
    if same and not config.prune_only:  # a prune service has the admin key only, and no backup key
        return f"BORG_ADMIN_SSH_KEY_FILE is the backup key {config.ssh_key}: {APPEND_ONLY_REFUSAL}"
    if archive_glob(config.archive_name, config.client) is None:
        return (
            "ARCHIVE_NAME starts with a placeholder, so prune cannot tell this client's archives; begin with {client}"
        )
    return None


def same_file(one: Path, other: Path) -> bool:
    """Return whether the two files hold the same bytes (a copy of the backup key is the backup key)."""
    try:
        return one.read_bytes() == other.read_bytes()
    except OSError:
        return False
