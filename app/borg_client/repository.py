"""The repository on the server: archives written into it, created on a first run or when asked, its key exported.

A sidecar that has backed up before (borg_client.history) never initialises by itself: a
repository that does not exist is then a failure, and only `borg-client init --new-repository`
makes a new one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from borg_client import borg, history
from borg_client.borgcall import BorgCall, Control, call_borg, explain
from borg_client.config import ClientConfig
from borg_client.failures import Failure
from borg_client.journal import run_lock

logger = logging.getLogger(__name__)

REPOSITORY_MISSING = "Repository.DoesNotExist"


class RunFailed(Failure):
    """A run cannot go on; the message is what the user reads in the report (failures.Failure)."""


def create(
    config: ClientConfig, archive: str, sources: list[str], control: Control, argv: list[str] | None = None,
    cwd: Path | None = None,
) -> BorgCall:  # fmt: skip
    """Run borg create of sources as archive; on a first run, initialise when borg says the repository does not exist.

    An unreachable server, a wrong passphrase or a refused path is a failure, never a reason to init;
    so is a missing repository once this sidecar has backed up before (it vanished). Trying create
    first saves a whole borg session on every run but the first. A backup that wrote an archive is
    recorded (borg_client.history). argv and cwd: a create argv made elsewhere (with dumps) and where
    it runs. Raise RunFailed if the repository vanished or the init fails.
    """
    paths = config.paths
    argv = argv or borg.create_argv(config, archive, sources)
    call = call_borg(config, argv, capture_json=True, control=control, cwd=cwd)
    if REPOSITORY_MISSING in call.msgids and not control.interrupted:
        if history.evidence(paths):
            raise RunFailed(history.vanished(paths, config.repository), "vanished")
        initialise(config)
        call = call_borg(config, argv, capture_json=True, control=control, cwd=cwd)
    if call.outcome.status != "failure":
        try:
            history.record_backup(paths, call.stdout)
        except OSError:
            logger.exception("the repository record %s cannot be written", paths.repository_record)
    return call


def initialise(config: ClientConfig) -> None:
    """Create the repository (borg said it does not exist), then export its key; raise RunFailed if not."""
    logger.info("repository %s does not exist yet: initialising it (%s)", config.repository, config.encryption)
    init = call_borg(config, borg.init_argv(config))
    if init.returncode != 0:
        raise RunFailed(explain(init, "borg init failed"), msgids=init.msgids)
    export_key(config)


def initialise_explicitly(config: ClientConfig, new_repository: bool) -> list[Path]:
    """Initialise the repository now, as `borg-client init` asks; return where old state was set aside.

    On a sidecar that has backed up before, refuse (RunFailed) unless new_repository: then, once
    borg init has made the new repository, the old record and key export are kept under names with
    a time suffix. An existing repository is never touched (borg init refuses it). Holds the run lock.
    """
    paths = config.paths
    with run_lock(paths, wait=True):
        before = history.evidence(paths)
        if before and not new_repository:
            raise RunFailed(
                f"this sidecar has backed up to {config.repository} before ({before} shows it), so `init` would "
                f"start a new, empty history. If the old repository is really lost, run `{history.NEW_REPOSITORY}`"
            )
        logger.info("initialising a new repository %s (%s)", config.repository, config.encryption)
        init = call_borg(config, borg.init_argv(config))
        if init.returncode != 0:
            raise RunFailed(explain(init, "borg init failed; nothing was changed"), msgids=init.msgids)
        moved = history.set_aside(paths)
        for path in moved:
            logger.warning("kept %s from the repository given up (not deleted)", path)
        export_key(config)
        return moved


def export_key(config: ClientConfig) -> Path:
    """Export the repository key (file and paper form) into the state volume; return the file.

    An existing export with a different content is never overwritten: it is moved aside with a
    time suffix first. Raise RunFailed if borg cannot export it.
    """
    paths = config.paths
    paths.key_export.mkdir(mode=0o700, parents=True, exist_ok=True)
    for paper, path in ((False, paths.key_file), (True, paths.paper_key_file)):
        fresh = path.with_name(path.name + ".new")
        fresh.unlink(missing_ok=True)
        result = call_borg(config, borg.key_export_argv(config.repository, fresh, paper=paper))
        if result.returncode != 0:
            fresh.unlink(missing_ok=True)
            raise RunFailed(explain(result, "borg key export failed"), msgids=result.msgids)
        os.chmod(fresh, 0o600)
        if path.exists() and path.read_bytes() != fresh.read_bytes():
            kept = history.aside(path)
            path.rename(kept)
            logger.warning(
                "the key export %s differed from the repository's key: the old one is kept as %s", path, kept
            )
        fresh.rename(path)
    logger.warning(
        "repository key exported to %s (and a paper copy beside it): without it and the passphrase the "
        "backups cannot be read; keep a copy off this host",
        paths.key_file,
    )
    return paths.key_file
