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
