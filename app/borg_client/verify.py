"""One restore drill, top to bottom: the newest archive's metadata checked, a sample of its files restored and
compared with the live ones, every VERIFY_DATA_EVERY-th drill every chunk read, its dumps restored; a report.

A drill holds the run lock (never beside a backup or prune, it waits for one), runs only borg's reading
commands (list, extract, check) and extracts into the state volume's drill directory, which it empties
afterwards and, after a kill, at its next start. What it found is kept as last_verified (verify.json), which the
health check reads: a failed drill, or none within two periods of VERIFY_CRON, makes the sidecar unhealthy.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from datetime import datetime

from borg_client import borg, dump_drill, failures, report, spot_check
from borg_client.borgcall import Control, call_borg, explain
from borg_client.config import ClientConfig
from borg_client.failures import Failure
from borg_client.paths import Paths
from borg_client.report import RunReport
from borg_client.reported import failed_unexpectedly, reported
from borg_common import cron
from borg_common.files import atomic_write
from borg_common.values import human_size

logger = logging.getLogger(__name__)

HEALTHY_PERIODS = 2  # periods of VERIFY_CRON a sidecar may go without a passed drill


def verify_once(config: ClientConfig, control: Control | None = None, attempt: int = 1) -> RunReport:
    """Run one restore drill (waiting for a backup or prune that is going on) and report it; return the report.

    A drill that passed or found something is kept as last_verified; one that could not run and may be retried
    (the server unreachable, the repository locked) is not: it proves nothing either way.
    """
    control = control or Control()
    started = report.start(config, attempt, kind="verify")
    finished = reported(config, started, True, lambda paths: drill(config, paths, started, control), "")
    if finished.status == "success" or (finished.status == "failure" and not finished.retryable):
        try:
            remember(config.paths, finished)
        except OSError:
            logger.exception("the drill record %s cannot be written", config.paths.verify_record)
    return finished


def drill(config: ClientConfig, paths: Paths, started: RunReport, control: Control) -> RunReport:
    """Given the started report, run the drill's steps (holding the run lock); return the report of the outcome."""
    scratch = paths.drill_scratch
    figures: dict = {"checked": []}
    try:
        clean(scratch)
        scratch.mkdir(parents=True)
        archive = newest(config, control)
        started = dataclasses.replace(started, archive=archive)
        problems = steps(config, archive, data_due(recorded(paths), config.drills.data_every), figures, control)
    except Failure as error:
        status = "interrupted" if control.interrupted else "failure"
        retry = failures.retryable(status, error.cause, error.msgids)
        message = f"restore drill stopped: {error}"
        return dataclasses.replace(started, status=status, message=message, retryable=retry, verified=figures)
    except Exception as error:  # an OSError of the state volume, a bug: still a report, and the traceback
        return dataclasses.replace(failed_unexpectedly(started, error, []), verified=figures)
    finally:
        clean(scratch)
    if problems:
        message = f"restore drill of {archive} failed: " + "; ".join(problems)
        return dataclasses.replace(started, status="failure", message=message, verified=figures)
    return dataclasses.replace(started, status="success", message=passed(archive, figures), verified=figures)


def steps(config: ClientConfig, archive: str, with_data: bool, figures: dict, control: Control) -> list[str]:
    """Run the drill's steps on archive, filling figures; return what each found wrong (none: passed).

    Raise Failure when borg cannot do a step (the server unreachable, the repository locked): the drill
    stops there, and a retry may finish it.
    """
    problems = []
    found = checked(config, borg.drill_check_argv(config), "the metadata check", control)
    figures["checked"].append("metadata")
    problems += [found] if found else []
    tally = spot_check.check(config, archive, config.drills.sample, config.paths.drill_scratch, control)
    figures["checked"].append("spot check")
    figures.update(
        sample=str(config.drills.sample), files_drawn=tally.drawn, files_compared=tally.compared,
        files_skipped=tally.skipped, bytes_compared=tally.bytes, differing=tally.differing,
    )  # fmt: skip
    if tally.differing:
        shown = "; ".join(tally.differing[:5]) + (
            f"; and {len(tally.differing) - 5} more" if len(tally.differing) > 5 else ""
        )
        problems.append(f"the spot check found {len(tally.differing)} file(s) that differ: {shown}")
    figures["data"] = with_data
    if with_data:
        found = checked(config, borg.drill_check_argv(config, verify_data=True), "the data check", control)
        figures["checked"].append("data")
        problems += [found] if found else []
    databases = dump_drill.drill_dumps(config, archive, control)
    figures["databases"] = [dataclasses.asdict(result) for result in databases]
    if databases:
        figures["checked"].append("databases")
    problems += [f"the dump {result.dump} did not restore into {result.image}: {result.message}"
                 for result in databases if not result.ok]  # fmt: skip
    return problems


def checked(config: ClientConfig, argv: list[str], step: str, control: Control) -> str | None:
    """Run one borg check of the drill; return what it found wrong, or None. Raise Failure if borg could not check."""
    call = call_borg(config, argv, control=control)
    if call.returncode == 0:
        return None
    if call.returncode == 1:  # borg check's warning: it checked, and found problems
        errors = [line.removeprefix("ERROR: ") for line in call.tail if line.startswith(("ERROR", "CRITICAL"))]
        said = f" ({errors[-1]})" if errors else ""
        return f"{step} found damage in the repository{said}"
    raise Failure(explain(call, f"{step} (borg check) failed"), msgids=call.msgids)


def newest(config: ClientConfig, control: Control) -> str:
    """Return the name of this client's newest archive; raise Failure if borg cannot tell or there is none."""
    call = call_borg(config, borg.newest_archive_argv(config), capture_json=True, control=control)
    if call.returncode != 0:
        raise Failure(explain(call, "borg list of the newest archive failed"), msgids=call.msgids)
    try:
        archives = json.loads(call.stdout)["archives"]
    except (ValueError, KeyError, TypeError):
        archives = []
    if not archives:
        raise Failure("there is no archive of this client to drill yet; back up first (borg-client run)", "sources")
    return archives[-1]["name"]


def passed(archive: str, figures: dict) -> str:
    """Given the drill's figures, return the sentence of a drill that passed."""
    parts = ["metadata checked"]
    parts.append(
        f"{figures['files_compared']} file(s) ({human_size(figures['bytes_compared'])}) restored and identical to "
        f"the live ones, {figures['files_skipped']} skipped (changed since the backup)"
    )
    if figures.get("data"):
        parts.append("every chunk read and verified")
    if figures.get("databases"):
        parts.append(f"{len(figures['databases'])} dump(s) restored")
    return f"restore drill of {archive} passed: " + ", ".join(parts)


def clean(scratch) -> None:
    """Remove the drill directory and what a drill (or a killed one) left in it."""
    if scratch.exists():
        shutil.rmtree(scratch, ignore_errors=True)


def data_due(record: dict, every: int) -> bool:
    """Given the drill record and VERIFY_DATA_EVERY (0: never), return whether this drill also reads every chunk: the
    first drill does, then every VERIFY_DATA_EVERY-th."""
    return every > 0 and record.get("drills_since_data", every - 1) + 1 >= every


def recorded(paths: Paths) -> dict:
    """Return the drill record (verify.json): last_verified, drills_since_data, since; empty if there is none."""
    try:
        found = json.loads(paths.verify_record.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def remember(paths: Paths, finished: RunReport) -> None:
    """Given a finished drill (success or failure), keep it as last_verified and count it toward the data check."""
    record = recorded(paths)
    verified = dict(finished.verified)
    record["drills_since_data"] = 0 if verified.get("data") else record.get("drills_since_data", 0) + 1
    record["last_verified"] = {
        "at": finished.finished_at.isoformat(timespec="seconds") if finished.finished_at else None,
        "status": finished.status,
        "archive": finished.archive,
        "message": finished.message,
        "duration_s": finished.duration_s,
        **{key: verified.get(key) for key in ("checked", "files_compared", "files_skipped", "bytes_compared")},
        "databases": [
            {key: result.get(key) for key in ("dump", "image", "ok", "seconds")}
            for result in verified.get("databases") or ()
        ],
    }
    atomic_write(paths.verify_record, json.dumps(record, indent=1), 0o600)


def begin(paths: Paths, current: datetime) -> None:
    """At the scheduler's start: note since when drills are expected (once), and empty what a killed drill left."""
    clean(paths.drill_scratch)
    record = recorded(paths)
    if "since" not in record:
        record["since"] = current.isoformat(timespec="seconds")
        atomic_write(paths.verify_record, json.dumps(record, indent=1), 0o600)


def health(config: ClientConfig, current: datetime) -> str | None:
    """Return why the drills make the sidecar unhealthy (the last failed, or none passed within two periods of
    VERIFY_CRON since drills were expected), or None."""
    if config.drills.cron is None:
        return None
    record = recorded(config.paths)
    last = record.get("last_verified") or {}
    if last.get("status") == "failure":
        return f"the last restore drill failed: {last.get('message')}"
    allowed = cron.period(config.drills.cron, current) * HEALTHY_PERIODS
    since = last.get("at") or record.get("since")
    if since and current - datetime.fromisoformat(since) > allowed:
        when = f"the last passed at {last['at']}" if last.get("at") else f"expected since {since}, none ran"
        return f"no restore drill within {allowed} ({when}); run borg-client verify, see docs/how-to/restore-drills.md"
    return None
