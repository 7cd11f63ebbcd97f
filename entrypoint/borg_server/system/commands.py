"""Commands the server runs on its own system: accounts, keys, sshd checks."""

from __future__ import annotations

import grp
import logging
import os
import pwd
from pathlib import Path

from borg_common import process
from borg_common.borglog import LogJson

logger = logging.getLogger(__name__)

USER = "borg"
HOME = Path("/home/borg")
REPLICA_USER = "replica"  # the replica key's login (REPLICATE_FROM=ssh://replica@primary:22)
REPLICA_HOME = Path("/home/replica")


class CommandFailed(RuntimeError):
    """A system command failed; the message says which and why."""


def checked(argv: list[str]) -> str:
    """Run argv quietly; return its output, or raise CommandFailed with the command's last lines."""
    result = process.run(argv, log_level=logging.DEBUG)
    if result.returncode != 0:
        raise CommandFailed(f"{argv[0]} failed (exit {result.returncode}): {' / '.join(result.tail[-3:])}")
    return "\n".join(result.tail)


def ensure_account(uid: int, gid: int) -> None:
    """Given PUID and PGID, make the borg group and user exist with exactly those ids.

    The user can only log in by key: its password field is `*` (no password, but not "locked",
    which sshd would refuse), and its shell /bin/sh runs the forced command, which only hands the
    session to the broker: this account owns nothing under /srv/borg.
    """
    try:
        group = grp.getgrnam(USER)
        if group.gr_gid != gid:
            checked(["groupmod", "-o", "-g", str(gid), USER])
            logger.info("group borg: gid changed from %d to %d", group.gr_gid, gid)
    except KeyError:
        checked(["groupadd", "-o", "-g", str(gid), USER])
        logger.info("group borg: created with gid %d", gid)
    try:
        user = pwd.getpwnam(USER)
        if user.pw_uid != uid or user.pw_gid != gid:
            checked(["usermod", "-o", "-u", str(uid), "-g", str(gid), USER])
            logger.info("user borg: uid changed from %d to %d", user.pw_uid, uid)
    except KeyError:
        checked(["useradd", "-o", "-u", str(uid), "-g", str(gid), "-d", str(HOME), "-M", "-s", "/bin/sh", "-p", "*",
                 USER])  # fmt: skip
        logger.info("user borg: created with uid %d", uid)
    key_only(USER)
    HOME.mkdir(mode=0o700, exist_ok=True)
    os.chown(HOME, uid, gid)


def ensure_replica_account() -> None:
    """Make the replica login exist: a system uid of its own (never the borg user's), in the borg group.

    Like borg, it logs in by key only (password `*`, shell /bin/sh for the forced command) and owns
    nothing but its empty home. sshd takes its keys from a file of their own that holds only the
    replica key (sshd_config's Match User), and the broker runs nothing but the reader for its uid.
    The group lets it reach the broker's socket, which is all the borg group is for.
    """
    borg = pwd.getpwnam(USER)
    try:
        user = pwd.getpwnam(REPLICA_USER)
        if user.pw_uid == borg.pw_uid:  # PUID was set to the uid useradd once chose for it
            checked(["userdel", REPLICA_USER])
            logger.info("user %s: shared uid %d with borg; made again", REPLICA_USER, user.pw_uid)
            raise KeyError(REPLICA_USER)
        if user.pw_gid != borg.pw_gid:
            checked(["usermod", "-g", str(borg.pw_gid), REPLICA_USER])
    except KeyError:
        checked(["useradd", "--system", "-g", str(borg.pw_gid), "-d", str(REPLICA_HOME), "-M", "-s", "/bin/sh",
                 "-p", "*", REPLICA_USER])  # fmt: skip
        logger.info("user %s: created with uid %d", REPLICA_USER, pwd.getpwnam(REPLICA_USER).pw_uid)
    key_only(REPLICA_USER)
    REPLICA_HOME.mkdir(mode=0o700, exist_ok=True)
    user = pwd.getpwnam(REPLICA_USER)
    os.chown(REPLICA_HOME, user.pw_uid, user.pw_gid)


def key_only(user: str, shadow: Path = Path("/etc/shadow")) -> None:
    """Make the user's password field `*` (no password, not locked) unless it is already (usermod costs a process)."""
    fields = next((line.split(":") for line in shadow.read_text().splitlines() if line.startswith(f"{user}:")), None)
    if fields is None or len(fields) < 2 or fields[1] != "*":
        checked(["usermod", "-p", "*", user])


def generate_keypair(private_key: Path, comment: str) -> None:
    """Write a new ed25519 keypair without passphrase at private_key (mode 600) and private_key.pub (644).

    Made in process (python3-cryptography, OpenSSH's formats), so 1000 clients need no 1000 ssh-keygen
    processes. Raise FileExistsError if private_key is there already.
    """
    from cryptography.hazmat.primitives import serialization  # imported only where keys are made
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    line = public + b" " + comment.encode() + b"\n"
    for path, data, mode, flags in (
        (private_key, private, 0o600, os.O_EXCL), (Path(f"{private_key}.pub"), line, 0o644, os.O_TRUNC)
    ):  # fmt: skip
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | flags, mode), "wb") as file:
            file.write(data)


def test_sshd_config(config: Path) -> None:
    """Raise CommandFailed unless sshd accepts the configuration file."""
    checked(["/usr/sbin/sshd", "-t", "-f", str(config)])


def borg_environment(home: Path) -> dict[str, str]:
    """Given a client account's home, return the environment for borg run as that account (nothing inherited)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "BORG_EXIT_CODES": "modern",
        "BORG_BASE_DIR": str(home),
    }


def as_account(argv: list[str], uid: int, gid: int) -> list[str]:
    """Given argv and a client account's uid and gid, return argv run as it, so files it creates belong to it."""
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *argv]


def run_borg(argv: list[str], uid: int, gid: int, home: Path) -> tuple[process.Result, list[str]]:
    """Run borg (argv without "borg", with --log-json) on a local repository as a client's account (uid, gid, home).

    Its log is rendered for people; return the result and borg's message ids (e.g. LockTimeout).
    """
    log = LogJson()
    result = process.run(as_account(["borg", *argv], uid, gid), env=borg_environment(home), render_line=log.render)
    return result, log.msgids
