"""Getting data back: extract an archive into a directory, never over the live volumes by accident."""

from __future__ import annotations

import logging
from pathlib import Path

from borg_client import borg
from borg_client.borgcall import call_borg, explain
from borg_client.config import ClientConfig
from borg_client.daylog import day_log

logger = logging.getLogger(__name__)


class RestoreRefused(Exception):
    """The restore would do something the user did not ask for explicitly."""


def overlaps_live(target: Path, sources: Path) -> bool:
    """Return whether extracting into target would write into the live volumes under sources.

    Archives hold paths like backup/<name>/…, so a target of / writes straight over them.
    """
    target, sources = target.resolve(), sources.resolve()
    return target == Path("/") or target == sources or sources in target.parents


def restore(config: ClientConfig, archive: str, paths: list[str], target: Path, over_live: bool = False) -> int:
    """Extract archive (or only paths in it, e.g. backup/data/file) into target; return borg's exit code.

    Logged to the day log too; borg does not list the files (see borg.extract_argv).

    Raise RestoreRefused if target would overwrite the live volumes and over_live is not given.
    """
    if overlaps_live(target, config.sources) and not over_live:
        raise RestoreRefused(
            f"--target {target} would write over the live volumes under {config.sources}; "
            "restore elsewhere, or add --overwrite-live if that is really what you want"
        )
    target.mkdir(parents=True, exist_ok=True)
    with day_log(config.paths):
        logger.info("restoring %s%s into %s", archive, f" ({', '.join(paths)})" if paths else "", target)
        call = call_borg(config, borg.extract_argv(archive, paths), cwd=target)
        if call.returncode == 0:
            logger.info("restored %s into %s", archive, target)
        else:
            logger.error("%s", explain(call, "borg extract failed"))
    return call.returncode


def mount(config: ClientConfig, archive: str | None, target: Path) -> int:
    """Mount one archive (or all) at target with FUSE until interrupted; return borg's exit code.

    Raise RestoreRefused when the container has no /dev/fuse (it needs --device /dev/fuse and
    --cap-add SYS_ADMIN) or target is under the live volumes.
    """
    if not Path("/dev/fuse").exists():
        raise RestoreRefused("no /dev/fuse here: run the sidecar with --device /dev/fuse --cap-add SYS_ADMIN to mount")
    if overlaps_live(target, config.sources):
        raise RestoreRefused(f"{target} is under the live volumes in {config.sources}; mount elsewhere")
    target.mkdir(parents=True, exist_ok=True)
    logger.info("mounting %s at %s; interrupt (Ctrl-C) to unmount", archive or "all archives", target)
    return call_borg(config, borg.mount_argv(archive, target)).returncode
