"""One Unix account per client: its uid (derived from the name, recorded, never reused), its passwd entry.

Every client's `borg serve`, and everything the server itself runs with borg on the client's
repository, runs as the client's own uid, so a flaw in borg serve reaches one repository only. The
uid is derived stably from the name and recorded in a root-owned registry (paths.accounts); a
removed client keeps its record, so its uid never goes to another client. gid = uid: a private
group per client. The borg login account (PUID/PGID) owns nothing under /srv/borg.
"""

from __future__ import annotations

import grp
import hashlib
import json
import logging
import os
import pwd
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from borg_common.files import atomic_write, describe, move_aside, read_regular
from borg_common.settings import CLIENT_NAME
from borg_server.system.commands import CommandFailed
from borg_server.system.paths import Paths

logger = logging.getLogger(__name__)

FIRST_UID = 10000
UID_SPAN = 50000  # uids 10000..59999: below 65536, so user-namespace setups map them too
LAST_UID = FIRST_UID + UID_SPAN  # the first uid above the range
ACCOUNT_PREFIX = "borg-"
NOLOGIN = "/usr/sbin/nologin"
PASSWD = Path("/etc/passwd")
GROUP = Path("/etc/group")


@dataclass(frozen=True)
class Account:
    """A client's account: its uid (= its gid) and whether its files were re-owned to it once."""

    client: str
    uid: int
    reowned: bool = False

    @property
    def gid(self) -> int:
        return self.uid

    @property
    def user(self) -> str:
        return ACCOUNT_PREFIX + self.client


class UnknownClient(Exception):
    """The client has no account in the registry (the server has not set it up)."""


def derived_uid(name: str) -> int:
    """Given a client name, return its first-choice uid: FIRST_UID + sha256(name) mod UID_SPAN."""
    return FIRST_UID + int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % UID_SPAN


def load(path: Path) -> dict[str, Account]:
    """Given the registry file, return its accounts by client name ({} if there is none yet)."""
    try:
        document = json.loads(read_regular(path, 16 * 1024 * 1024))  # never through a symlink, never a FIFO
        entries = document["clients"]
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise OSError(f"{path} cannot be read ({error}); restore it from a backup, uids must not change") from None
    return {name: Account(name, int(entry["uid"]), bool(entry.get("reowned"))) for name, entry in entries.items()}


def save(path: Path, accounts: dict[str, Account]) -> bool:
    """Write the registry atomically (root-only, mode 600); return whether it changed."""
    clients = {name: {"uid": a.uid, "reowned": a.reowned} for name, a in sorted(accounts.items())}
    return atomic_write(path, json.dumps({"version": 1, "clients": clients}, indent=1) + "\n", 0o600)


def assign(names: Iterable[str], recorded: dict[str, Account], taken: set[int]) -> dict[str, Account]:
    """Given client names, the recorded accounts and uids/gids in use on the system, return every account.

    A recorded client keeps its uid. A new one gets its derived uid, or the next free one when that
    is recorded for another client or taken (PUID/PGID, a system account): uids are never reused.
    """
    accounts = dict(recorded)
    used = {account.uid for account in recorded.values()} | set(taken)
    for name in names:
        if name in accounts:
            continue
        uid = derived_uid(name)
        while uid in used:
            uid = FIRST_UID + (uid - FIRST_UID + 1) % UID_SPAN
        accounts[name] = Account(name, uid)
        used.add(uid)
        logger.info("client %s: uid %d assigned (user %s)", name, uid, accounts[name].user)
    return accounts


def system_ids() -> set[int]:
    """Return every uid and gid the system's passwd and group files use, except the clients' own."""
    users = {user.pw_uid for user in pwd.getpwall() if not user.pw_name.startswith(ACCOUNT_PREFIX)}
    return users | {group.gr_gid for group in grp.getgrall() if not group.gr_name.startswith(ACCOUNT_PREFIX)}


def ensure(paths: Paths, names: Iterable[str], puid: int, pgid: int) -> dict[str, Account]:
    """Given the configured client names and PUID/PGID, record their accounts; return all (removed ones too).

    Raise CommandFailed if the registry cannot be read or PUID/PGID is a client's uid (the login
    account would own that client's repository).
    """
    kind = describe(paths.accounts)
    if kind not in ("nothing", "a file"):
        logger.warning("%s was %s, not the registry of accounts; moved it to %s", paths.accounts, kind,
                       move_aside(paths.accounts))  # fmt: skip
    try:
        recorded = load(paths.accounts) if kind == "a file" else recovered(paths)
    except OSError as error:
        raise CommandFailed(str(error)) from None
    for account in recorded.values():
        if account.uid in (puid, pgid):
            raise CommandFailed(
                f"PUID/PGID {puid}/{pgid}: {account.uid} is the uid of client {account.client}'s account "
                f"({account.user}); choose other ids for the borg login account"
            )
    accounts = assign(names, recorded, system_ids() | {puid, pgid})
    save(paths.accounts, accounts)
    return accounts


def recovered(paths: Paths) -> dict[str, Account]:
    """Without a registry, return the accounts the client directories' owners show (uids in the clients'
    range, gid = uid), so a lost or moved registry changes no uid and gives none of them to another client."""
    accounts: dict[str, Account] = {}
    names = sorted(os.listdir(paths.repositories)) if describe(paths.repositories) == "a directory" else []
    for name in filter(CLIENT_NAME.fullmatch, names):
        status = os.lstat(paths.client_directory(name))
        uid, taken = status.st_uid, {account.uid for account in accounts.values()}
        if stat.S_ISDIR(status.st_mode) and status.st_gid == uid and uid not in taken and FIRST_UID <= uid < LAST_UID:
            accounts[name] = Account(name, uid)
    if accounts:
        logger.warning("%s: no registry of accounts; %d client uids recovered from the owners of %s/*",
                       paths.accounts, len(accounts), paths.repositories)  # fmt: skip
    return accounts


def lookup(paths: Paths, name: str) -> Account:
    """Given a client name, return its recorded account; raise UnknownClient if it has none."""
    account = load(paths.accounts).get(name)
    if account is None:
        raise UnknownClient(f"client {name} has no account on this server yet (restart or reload the server)")
    return account


def entry_lines(accounts: Iterable[Account], paths: Paths) -> tuple[list[str], list[str]]:
    """Given accounts, return their /etc/passwd and /etc/group lines (no login, locked password)."""
    users, groups = [], []
    for a in sorted(accounts, key=lambda account: account.uid):
        home = paths.client_home(a.client)
        users.append(f"{a.user}:!:{a.uid}:{a.gid}:borg-appliance client {a.client}:{home}:{NOLOGIN}")
        groups.append(f"{a.user}:!:{a.gid}:")
    return users, groups


def replaced_entries(text: str, lines: list[str]) -> str:
    """Given a passwd or group file and the clients' lines, return it with exactly those client lines."""
    kept = [line for line in text.splitlines() if line and not line.startswith(ACCOUNT_PREFIX)]
    return "\n".join(kept + lines) + "\n"


def write_entries(accounts: Iterable[Account], paths: Paths, passwd: Path = PASSWD, group: Path = GROUP) -> None:
    """Make /etc/passwd and /etc/group name every client account (idempotent; the image's /etc is new each start)."""
    users, groups = entry_lines(accounts, paths)
    for path, lines in ((passwd, users), (group, groups)):
        atomic_write(path, replaced_entries(path.read_text(), lines), 0o644, durable=False)  # rewritten every start
