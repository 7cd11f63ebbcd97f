"""Giving a fresh sidecar its saved key: `borg-client import-key FILE`, and BORG_KEY_IMPORT_FILE at start.

FILE is a recovery kit (borg_client.kit_format), a `borg key export` or a `borg key export --paper`. The key
is imported into a staging state first and tried there with the passphrase (borg list of the last archive);
only a key that opens this client's repository is moved into the state volume, and the key export is written
again. A refusal changes nothing: the staging state is removed. borg checks the key's repository id against
the repository's (RepoIdMismatch); the sidecar checks a kit's client and repository against its own.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from pathlib import Path

from borg_client import borg, history, kit_format, repository
from borg_client.borgcall import BorgCall, call_borg, explain
from borg_client.config import ClientConfig
from borg_client.journal import run_lock

logger = logging.getLogger(__name__)

NO_LOCAL_KEY = "KeyfileNotFoundError"  # borg key export of a keyfile repository without its key here
OTHER_REPOSITORY = "RepoIdMismatch"


class Refused(Exception):
    """The key was not imported; the message says why and what to do. Nothing was changed."""


def read(source: Path) -> kit_format.Kit:
    """Given a file, return the kit or key in it; raise Refused if it cannot be read or holds no usable key."""
    try:
        return kit_format.read(source)
    except kit_format.Unreadable as error:
        raise Refused(f"{error}; nothing was imported") from None


def check_owner(kit: kit_format.Kit, config: ClientConfig, source: Path) -> None:
    """Raise Refused if a kit names another client or another repository than this sidecar's settings."""
    other_client = kit.client is not None and kit.client != config.client
    other_place = kit.repository is not None and history.same_location(kit.repository, config.repository) is False
    if other_client or other_place:
        raise Refused(
            f"{source} is the recovery kit of client {kit.client} (repository {kit.repository}), but this sidecar "
            f"is client {config.client} (BORG_REPO {config.repository}): nothing was imported. Give it the kit of "
            f"client {config.client}; if this sidecar really replaces {kit.client}, set CLIENT_NAME and BORG_REPO "
            "as the kit says"
        )


def local_key(keys: Path, repository_id: str) -> Path | None:
    """Given borg's keys dir and a repository id (or its first digits), return the key file of that repository."""
    try:
        candidates = sorted(path for path in keys.iterdir() if path.is_file())
    except OSError:
        return None
    for path in candidates:
        try:
            first = path.read_text(errors="replace").split("\n", 1)[0].split()
        except OSError:
            continue
        if len(first) == 2 and first[0] == kit_format.KEY_MARK and first[1].startswith(repository_id):
            return path
    return None


def same_key(held: Path, kit: kit_format.Kit) -> bool:
    """Given a key file and a kit, return whether they hold the same key (file form compared line by line)."""
    lines = held.read_text(errors="replace").split()
    if kit.key:
        return lines == kit.key.split()
    return False  # a paper form only: borg decides (nothing is known to differ before it imports)


def import_key(config: ClientConfig, source: Path) -> str:
    """Import the key in source into the state volume; return what was done, for people.

    Nothing to do (the same key is here, or the repository keeps its own: repokey) is said too. Raise
    Refused (nothing changed) for a file that is no key, a kit of another client, a key of another
    repository, a key the passphrase does not open, or another key of this repository already here.
    """
    kit = read(source)
    check_owner(kit, config, source)
    paths = config.paths
    with run_lock(paths, wait=True):
        held = local_key(paths.keys, kit.repository_id)
        if held and same_key(held, kit):
            return f"the state volume holds this key already ({held}): nothing to import"
        if held:
            raise Refused(
                f"the state volume holds another key of this repository ({held}), not the one in {source}: nothing "
                "was changed. The key here is the one backups use now; if the kit is older (the passphrase was "
                "changed since), save a new kit with `borg-client recovery-kit`"
            )
        paths.state.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="key-import-", dir=paths.state) as staging:
            staged = dataclasses.replace(config, state=Path(staging))
            staged.paths.keys.mkdir(mode=0o700)
            own = repository_key(staged, kit, source)
            if own is not None:
                return own
            tried(staged, kit, source)
            imported = move_in(staged.paths.keys, paths.keys)
    repository.export_key(config)
    return (
        f"imported the key of {config.repository} from {source} into {imported}; the passphrase opens it. "
        f"Backups go on into the same repository. Save this sidecar's kit: `borg-client recovery-kit`"
    )


def repository_key(staged: ClientConfig, kit: kit_format.Kit, source: Path) -> str | None:
    """Given the staging configuration, return what to say if the repository keeps its key itself (repokey), or
    None if the key must be imported (keyfile). Raise Refused if the repository's own key is not the kit's."""
    exported = staged.paths.state / "repository.key"
    quiet = borg.LogJson(expected=frozenset({NO_LOCAL_KEY}))  # the usual answer for a keyfile repository
    call = call_borg(staged, borg.key_export_argv(staged.repository, exported), log=quiet)
    if NO_LOCAL_KEY in call.msgids:
        return None
    if call.returncode != 0:
        raise Refused(explain(call, "reading the repository failed; nothing was imported"))
    if kit.key and exported.read_text().split() != kit.key.split():
        raise Refused(
            f"the repository {staged.repository} keeps its own key (repokey), and it is not the one in {source}: "
            "nothing was changed. The repository's key is the one in use; save a new kit with "
            "`borg-client recovery-kit`"
        )
    opens(staged, source)
    return f"the repository {staged.repository} keeps its own key (repokey), the one in {source}: nothing to import"


def tried(staged: ClientConfig, kit: kit_format.Kit, source: Path) -> None:
    """Import the kit's key into the staging state and open the repository with it; raise Refused if borg refuses
    the key (another repository's) or the passphrase does not open it."""
    given = staged.paths.state / "given.key"
    given.write_text(kit.key if kit.key else "\n".join(kit.paper) + "\n")
    argv = borg.key_import_argv(staged.repository, None if not kit.key else given)
    call = call_borg(staged, argv, capture_json=True, stdin=None if kit.key else given)  # stdout: borg's prompts
    if OTHER_REPOSITORY in call.msgids:
        raise Refused(
            f"{source} holds the key of another repository (id {kit.repository_id[:16]}…), not of BORG_REPO "
            f"{staged.repository}: nothing was imported. Give the key (or kit) saved from this client's repository"
        )
    if call.returncode != 0 or not any(staged.paths.keys.iterdir()):
        raise Refused(explain(call, f"borg key import of {source} failed; nothing was imported"))
    opens(staged, source)


def opens(staged: ClientConfig, source: Path) -> BorgCall:
    """Open the repository with the staged key and the passphrase (list the last archive); raise Refused if not."""
    call = call_borg(staged, borg.list_argv(short=True, last=1), capture_json=True)
    if "PassphraseWrong" in call.msgids or "PasswordRetriesExceeded" in call.msgids:
        raise Refused(
            f"the key in {source} is this repository's, but the passphrase (BORG_PASSPHRASE_FILE) does not open it: "
            "nothing was imported. Give the passphrase that was saved with the kit"
        )
    if call.returncode != 0:
        raise Refused(explain(call, f"the key in {source} does not open the repository; nothing was imported"))
    return call


def move_in(staged_keys: Path, keys: Path) -> Path:
    """Move the one key file borg wrote into the staging keys dir into the state volume's; return where it is."""
    keys.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = next(path for path in staged_keys.iterdir() if path.is_file())
    target, number = keys / written.name, 0
    while target.exists():
        number += 1
        target = keys / f"{written.name}.{number}"
    os.chmod(written, 0o600)
    written.rename(target)
    logger.info("repository key imported into %s", target)
    return target


def at_start(config: ClientConfig) -> None:
    """BORG_KEY_IMPORT_FILE at the scheduler's start: import it when the state volume has no key for the repository,
    say in one line that it has (the same key, or the repository keeps its own); raise Refused (the scheduler does
    not start) for a file that is not this client's key, or another key of the repository already here."""
    if config.key_import_file is None:
        return
    try:
        logger.info("BORG_KEY_IMPORT_FILE: %s", import_key(config, config.key_import_file))
    except Refused as error:
        raise Refused(f"BORG_KEY_IMPORT_FILE: {error}") from None
