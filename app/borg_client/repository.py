"""The repository on the server: archives written into it, created on first use, its key exported."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from borg_client import borg
from borg_client.borgcall import BorgCall, Control, call_borg, explain
from borg_client.config import ClientConfig
from borg_client.paths import Paths

logger = logging.getLogger(__name__)

REPOSITORY_MISSING = "Repository.DoesNotExist"


class RunFailed(Exception):
    """A run cannot go on; the message is what the user reads in the report."""


def create(config: ClientConfig, archive: str, sources: list[str], control: Control) -> BorgCall:
    """Run borg create of sources as archive; initialise first only when borg says the repository does not exist.

    An unreachable server, a wrong passphrase or a refused path is a failure, never a reason to init.
    Trying create first saves a whole borg session on every run but the first. Raise RunFailed if
    the initialisation fails.
    """
    argv = borg.create_argv(config, archive, sources)
    call = call_borg(config, argv, capture_json=True, control=control)
    if REPOSITORY_MISSING in call.msgids and not control.interrupted:
        initialise(config)
        call = call_borg(config, argv, capture_json=True, control=control)
    return call


def initialise(config: ClientConfig) -> None:
    """Create the repository (borg said it does not exist), then export its key; raise RunFailed if not."""
    logger.info("repository %s does not exist yet: initialising it (%s)", config.repository, config.encryption)
    init = call_borg(config, borg.init_argv(config))
    if init.returncode != 0:
        raise RunFailed(explain(init, "borg init failed"))
    export_key(config)


def export_key(config: ClientConfig) -> Path:
    """Export the repository key (file and paper form) into the state volume; return the file.

    Raise RunFailed if borg cannot export it.
    """
    paths = Paths.of(config)
    paths.key_export.mkdir(mode=0o700, parents=True, exist_ok=True)
    for paper, path in ((False, paths.key_file), (True, paths.paper_key_file)):
        result = call_borg(config, borg.key_export_argv(config.repository, path, paper=paper))
        if result.returncode != 0:
            raise RunFailed(explain(result, "borg key export failed"))
        os.chmod(path, 0o600)
    logger.warning(
        "repository key exported to %s (and a paper copy beside it): without it and the passphrase the "
        "backups cannot be read; keep a copy off this host",
        paths.key_file,
    )
    return paths.key_file
