"""Why a run failed, in one place: which failures a retry can fix, what a full server is called, how an
unexpected error is named.

Borg's failures are told apart by their --log-json message ids, never by message text or the
exit code (borg 1.4.0 returns the server's errors as exit code 2); the sidecar's own failures
(pre-flight, a vanished repository) carry a cause.
"""

from __future__ import annotations

import re

# borg message ids no retry can fix: the passphrase, the key, the repository's identity or path
PERMANENT_MSGIDS = frozenset(
    {
        "PassphraseWrong", "PasscommandFailure", "PasswordRetriesExceeded", "NoPassphraseFailure",
        "KeyfileNotFoundError", "KeyfileInvalidError", "KeyfileMismatchError", "RepoKeyNotFoundError",
        "Repository.DoesNotExist", "Repository.InvalidRepository", "Repository.InvalidRepositoryConfig",
        "Repository.ParentPathDoesNotExist", "PathNotAllowed", "UnsupportedPayloadError",
        "UnsupportedManifestError", "Cache.EncryptionMethodMismatch", "Cache.RepositoryAccessAborted",
        "Cache.RepositoryIDNotUnique", "Cache.RepositoryReplay",
    }
)  # fmt: skip
# the sidecar's own causes no retry can fix: what to back up, the pinned host key, the settings, a vanished repository
PERMANENT_CAUSES = frozenset({"sources", "host-key", "settings", "vanished"})
INSUFFICIENT_SPACE = "Repository.InsufficientFreeSpaceError"  # borg's check against additional_free_space
REMOTE_OSERROR = "OSError"  # the message id of an OSError raised on the server (a local one is "Exception")
NO_SPACE_ERRNO = "[Errno 28]"
AVAILABLE = re.compile(r"available: ([^)]+)\)")


STATE_KEYS = "/var/lib/borg-client/keys"
# What each borg failure a user can cause means, and what to do next: by borg's message id, never its text.
BORG_FAILURES = {
    "PassphraseWrong": "the passphrase does not open the repository key; BORG_PASSPHRASE_FILE (or BORG_PASSCOMMAND, "
                       "BORG_PASSPHRASE) must give the passphrase the repository was initialised with",
    "PasswordRetriesExceeded": "the passphrase does not open the repository key; BORG_PASSPHRASE_FILE must give the "
                               "passphrase the repository was initialised with",
    "PasscommandFailure": "BORG_PASSCOMMAND failed; run it by hand in the sidecar to see why",
    "NoPassphraseFailure": "borg got no passphrase; set BORG_PASSPHRASE_FILE to a file holding it",
    "KeyfileNotFoundError": f"the repository key is not in the state volume ({STATE_KEYS}); give it your saved "
                            "copy: borg-client import-key /path/to/the/recovery-kit (docs/how-to/host-lost.md)",
    "KeyfileInvalidError": f"the repository key in {STATE_KEYS} is damaged; put your copy of it back: "
                           "borg-client borg key import :: /path/to/the/copy",
    "KeyfileMismatchError": f"the key in {STATE_KEYS} belongs to another repository: this state volume was used "
                            "with another BORG_REPO; mount this client's own state volume",
    "RepoKeyNotFoundError": "the repository holds no key (repokey), so it is not the one this sidecar initialised; "
                            "check BORG_REPO",
    "Repository.DoesNotExist": "there is no repository at BORG_REPO; check BORG_REPO (borg-server show-client NAME "
                               "prints the right one)",
    "Repository.InvalidRepository": "what is at BORG_REPO is not a borg repository; check BORG_REPO",
    "Repository.ParentPathDoesNotExist": "the directory of BORG_REPO does not exist on the server; check BORG_REPO",
    "PathNotAllowed": "the server does not let this key reach that path; check BORG_REPO (./main) and CLIENT_NAME",
    "Repository.StorageQuotaExceeded": "the client's quota on the server is full; prune, or raise "
                                       "BORG_CLIENT_<NAME>_QUOTA on the server",
    "Repository.PathPermissionDenied": "the server cannot write the repository's files (permissions); see the "
                                       "server's log",
    "Cache.EncryptionMethodMismatch": "the repository's encryption changed since this sidecar last used it: it may "
                                      "have been replaced by someone else's; stop and check "
                                      "(docs/how-to/answer-an-alert.md)",
    "Cache.RepositoryIDNotUnique": "this sidecar's cache is newer than the repository: another repository with the "
                                   "same id was used from this state volume; stop and check",
    "Cache.RepositoryReplay": "the repository is older than this sidecar last saw it: a promoted replica that missed "
                              "the last backups (then remove /var/lib/borg-client/security/*/manifest-timestamp "
                              "once, docs/how-to/promote-a-replica.md), or a repository rolled back or replayed on "
                              "the server (if you rolled it back, see docs/how-to/roll-back-a-compromised-client.md; "
                              "else stop and check)",
    "Cache.RepositoryAccessAborted": "borg knew this repository at another address (its security record): if it "
                                     "moved on purpose (a promoted replica, a changed BORG_SERVER_NAME), remove the "
                                     "old address once: rm /var/lib/borg-client/security/*/location "
                                     "(docs/how-to/promote-a-replica.md); to read a replica's copy for a restore, set "
                                     "RESTORE_FROM_REPLICA=yes instead (docs/how-to/primary-lost.md)",
    "LockTimeout": "the repository stayed locked by another borg for the whole wait; the server clears a dead "
                   "session's lock, so another run may still be going on",
    "LockFailed": "the repository lock could not be taken; see the server's log",
    "InvalidRPCMethod": "the server refused this command for this key (a read-only or append-only session)",
    "Repository.InsufficientFreeSpaceError": "the backup server has no space left; free space on the server",
}  # fmt: skip
# What ssh says when it refuses, and what it means; borg reports only "Connection closed by remote host".
# The first one found in ssh's messages is the reason: an unusable key comes before the refusal it causes.
SSH_REFUSALS = (
    ("are too open", "ssh refused the private key: others may read it, and no private copy of it "
     "could be made in /dev/shm (see the warning before it in the log)"),
    ("Load key", "ssh cannot read the private key (BORG_SSH_KEY_FILE, or BORG_ADMIN_SSH_KEY_FILE for prune)"),
    ("Permission denied (publickey", "the server refused this client's key: is it the key the server has for "
     "CLIENT_NAME? (borg-server show-client NAME shows its fingerprint)"),
    ("Host key verification failed", "the server's host key is not the one pinned in known_hosts: do not connect "
     "until you know why (docs/how-to/pair-a-client.md)"),
    ("Could not resolve hostname", "the server's name in BORG_REPO does not resolve"),
    ("Connection refused", "nothing listens at BORG_REPO's host and port"),
    ("Connection timed out", "the server did not answer (a firewall, or the wrong host)"),
)  # fmt: skip
SSH_SAID = re.compile(r"^(?:\w+: )?(?:Remote|ssh): ")  # ssh's line in the tail: borgcall's "ssh: ", borg's "Remote: "


def borg_failure(msgids: tuple[str, ...], tail: tuple[str, ...]) -> tuple[str, str] | None:
    """Given borg's message ids and log tail of a failed command, return what it means with what to do, and who said
    so in their words ("borg: " its error, or "ssh: " its refusal); None if it is none of those a user can cause."""
    errors = [line.removeprefix("ERROR: ") for line in tail if line.startswith(("ERROR", "CRITICAL"))]
    for msgid in reversed(msgids):
        if msgid in BORG_FAILURES:
            said = [line for line in errors if f"[{msgid}]" in line] or [line for line in errors if "rc " not in line]
            return BORG_FAILURES[msgid], f"borg: {said[-1] if said else msgid}"
    if {"ConnectionClosed", "ConnectionClosedWithHint"} & set(msgids):
        ssh = [SSH_SAID.sub("", line).strip().removeprefix("ssh: ") for line in tail if SSH_SAID.match(line)]
        for words, meaning in SSH_REFUSALS:
            line = next((line for line in ssh if words in line), None)
            if line:
                return meaning, f"ssh: {line}"
    return None


class Failure(Exception):
    """A run cannot go on; the message is what the user reads in the report.

    cause names a failure the sidecar found itself (PERMANENT_CAUSES, or e.g. "unreachable");
    msgids are borg's message ids when borg was the one that failed.
    """

    def __init__(self, message: str, cause: str | None = None, msgids: tuple[str, ...] = ()):
        super().__init__(message)
        self.cause, self.msgids = cause, tuple(msgids)


def retryable(status: str, cause: str | None = None, msgids: tuple[str, ...] = ()) -> bool:
    """Given a run's status, the sidecar's cause of a failure and borg's message ids, return whether a retry may fix it.

    Only failed and interrupted runs are retried; not a wrong passphrase, key or repository,
    a refused host key, bad settings, a missing source or a vanished repository.
    """
    if status not in ("failure", "interrupted"):
        return False
    return cause not in PERMANENT_CAUSES and not PERMANENT_MSGIDS.intersection(msgids)


def no_space(msgids: tuple[str, ...], tail: tuple[str, ...]) -> str | None:
    """Given borg's message ids and log tail of a failed command, return the message for a full server, or None.

    The figure of free space is the one borg's InsufficientFreeSpaceError gives; a plain
    "No space left on device" on the server has none.
    """
    text = "\n".join(tail)
    full = INSUFFICIENT_SPACE in msgids or (REMOTE_OSERROR in msgids and NO_SPACE_ERRNO in text)
    if not full:
        return None
    found = AVAILABLE.search(text) if INSUFFICIENT_SPACE in msgids else None
    figure = f" ({found[1].strip()} free)" if found else ""
    return f"the backup server has no space left{figure}; the archive was not written"


def unexpected(error: Exception) -> str:
    """Given an error nobody expected, return the report's message naming it."""
    detail = f": {error}" if str(error) else ""
    return f"unexpected error: {type(error).__name__}{detail}"
