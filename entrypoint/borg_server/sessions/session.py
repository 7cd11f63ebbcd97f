"""One client session, run by the broker as root: borg serve as the client's account, then its audit record.

The session holds the client's gate (repository/gate.py) for its whole length, reads the repository's last
committed segment before and after, removes what a dead borg serve left when no process of the client's
account is alive: repository locks (sessions/stale_locks.py) and the segments of a failed transaction
(repository/disk_space.py: on a full disk borg itself cannot remove them), and writes the audit record
itself: the audit log is root's, so neither the session nor the borg login account can forge a backup in it.
Before all that it takes one of the client's session slots (sessions/slots.py); with none free, the session is
refused and audited as such.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from borg_common.process import start_on
from borg_common.settings import CLIENT_NAME
from borg_server.config.names import env_name
from borg_server.records import state_file
from borg_server.records.configuration import DEFAULT_MAX_SESSIONS, MAXIMUM_SESSIONS
from borg_server.repository import audit_log, disk_space, gate, segments
from borg_server.sessions import slots, stale_locks
from borg_server.sessions.protocol import EX_TEMPFAIL, REPLICA_ROLE, ROLES
from borg_server.system import accounts, commands
from borg_server.system.paths import Paths

logger = logging.getLogger(__name__)

COMPACTION_WAIT = 3600  # seconds a session waits for `borg-server compact` before giving up


class BadRequest(Exception):
    """A request from the wrapper that names no valid session."""


@dataclass(frozen=True)
class Request:
    """What the forced command was started with: its arguments and the SSH variables the audit records."""

    client: str | None  # None for the replica role
    role: str
    fingerprint: str
    quota: int | None
    environ: dict
    max_sessions: int = DEFAULT_MAX_SESSIONS  # the client's sessions open at once (MAX_SESSIONS)


def serve_argv(client: str, role: str, quota: int | None, paths: Paths) -> list[str]:
    """Given a client, a key role (append, full or admin) and a quota, return the borg serve argv.

    With a quota the key is confined to the one repository `<dir>/main`, so the quota cannot be
    dodged by creating more repositories; admin keys reach the whole client directory, without a
    quota, so that pruning still works when the repository is full.
    """
    if role == "read":
        return ["/usr/local/bin/borg-server", "serve-read", str(paths.client_directory(client))]
    argv = ["borg", "serve"]
    if role == "append":
        argv.append("--append-only")
    if quota is not None and role != "admin":
        argv += ["--storage-quota", str(quota), "--restrict-to-repository", str(paths.client_repository(client))]
    else:
        argv += ["--restrict-to-path", str(paths.client_directory(client))]
    return argv


def committed_segment(paths: Paths, client: str) -> int | None:
    """Return the last committed segment of the client's repository (None: none, or unreadable)."""
    try:
        return segments.last_commit(paths.client_repository(client))
    except Exception:  # noqa: BLE001 (whatever is on disk, the session must still start)
        return None


def clear_left_behind(paths: Paths, client: str, uid: int, proc: Path = stale_locks.PROC) -> None:
    """Given a client and its account's uid, remove what a borg of it that is gone left: repository locks and the
    segments of a failed transaction (those the monitor's baseline knows as committed never).

    Call it holding stale_locks.start_guard(client). Nothing is removed while any process of the account
    runs. A failed transaction that cannot be removed is logged and left to borg and the monitor.
    """
    if stale_locks.live_processes(uid, proc):
        return
    stale_locks.remove_locks(client, paths.client_directory(client))
    try:
        if disk_space.uncommitted(paths.client_repository(client)):
            known = set(state_file.load(paths.monitor_state(client)).segments)
            disk_space.remove_uncommitted(paths, client, known)
    except Exception:  # noqa: BLE001 (whatever is on disk, the session must still start)
        logger.exception("client %s: the segments of a failed backup cannot be removed; borg tries itself", client)


def parse_request(message: dict) -> Request:
    """Given the wrapper's message, return its request; raise BadRequest if a field is missing or wrong."""
    client, role, quota = message.get("client"), message.get("role"), message.get("quota")
    fingerprint = message.get("fingerprint")
    if role == REPLICA_ROLE and client is None:
        client = None
    elif not isinstance(client, str) or not CLIENT_NAME.fullmatch(client):
        raise BadRequest("no valid client name")
    if role not in ROLES and not (role == REPLICA_ROLE and client is None):
        raise BadRequest(f"client {client}: role is not one of {', '.join(ROLES)}")
    if quota is not None and (not isinstance(quota, int) or isinstance(quota, bool) or quota < 0):
        raise BadRequest(f"client {client}: the quota is not a number of bytes")
    if not isinstance(fingerprint, str) or len(fingerprint) > 200:
        raise BadRequest(f"client {client}: no valid fingerprint")
    max_sessions = message.get("max_sessions", DEFAULT_MAX_SESSIONS)
    if not isinstance(max_sessions, int) or isinstance(max_sessions, bool) or not 1 <= max_sessions <= MAXIMUM_SESSIONS:
        raise BadRequest(f"client {client}: max_sessions is not a number from 1 to {MAXIMUM_SESSIONS}")
    environ = {
        name: value[:1000]
        for name in ("SSH_ORIGINAL_COMMAND", "SSH_CONNECTION")
        if isinstance(value := message.get(name), str)
    }
    return Request(client, role, fingerprint, quota, environ, max_sessions)


def serve_environment(request: Request, paths: Paths, account: accounts.Account) -> dict[str, str]:
    """Return borg serve's environment: minimal, plus SSH_ORIGINAL_COMMAND, which borg serve itself vets.

    borg serve takes only harmless options (e.g. --info) from what the client asked for, and refuses
    a command that is not borg serve (sftp, scp), as it did when sshd started it directly.
    """
    environment = {**commands.borg_environment(paths.client_home(request.client)), "USER": account.user}
    if "SSH_ORIGINAL_COMMAND" in request.environ:
        environment["SSH_ORIGINAL_COMMAND"] = request.environ["SSH_ORIGINAL_COMMAND"]
    return environment


def refusal(client: str, limit: int) -> str:
    """Given a client and its MAX_SESSIONS, return why its session is refused, for the client and the audit log."""
    return (
        f"client {client} has {limit} sessions open already, as many as MAX_SESSIONS allows "
        f"(BORG_CLIENT_{env_name(client)}_MAX_SESSIONS, if set); this session is refused. Try again when one has "
        f"ended; if {client} did not mean to open them, look for a broken or compromised program on its host"
    )


def run(request: Request, stdio: tuple[int, int, int], paths: Paths, started_process: Callable) -> int:
    """Run the request's borg serve on stdio as the client's account, audit it; return the exit code.

    started_process is called with the running process (to forward signals to it). Return borg's
    exit code, 128 + signal number when it was killed, EX_TEMPFAIL when the session could not start
    or the client has MAX_SESSIONS sessions open already (then it is audited as refused).
    """
    started = time.time()
    client = request.client
    committed: tuple[int | None, int | None] = (None, None)
    problem = None
    try:
        slot = slots.take(paths, client, request.max_sessions)
    except OSError as error:
        slot, problem = None, f"borg serve cannot be started for client {client}: {error}"
    if slot is None:
        message = problem or refusal(client, request.max_sessions)
        with open(stdio[2], "w", closefd=False, buffering=1) as stderr:
            print(f"borg-server: {message}", file=stderr)
        logger.warning("%s", message)
        record = audit_log.session_record(
            client, request.role, request.fingerprint, started, time.time(), EX_TEMPFAIL, request.environ
        )
        refused = {} if problem else {"refused": "max_sessions", "message": message}
        audit_log.append_record(paths.audit_log, record | refused)
        return EX_TEMPFAIL
    with slot, open(stdio[2], "w", closefd=False, buffering=1) as stderr:
        try:
            account = accounts.lookup(paths, client)
            with gate.session(paths, client, COMPACTION_WAIT, stderr) as held:
                before = committed_segment(paths, client)
                with stale_locks.start_guard(client):  # until borg serve runs, no other session looks
                    clear_left_behind(paths, client, account.uid)
                    process = start_on(  # borg serve holds the gate too, should the broker die first
                        serve_argv(client, request.role, request.quota, paths),
                        stdio,
                        cwd=str(paths.client_directory(client)),
                        env=serve_environment(request, paths, account),
                        user=account.uid,
                        group=account.gid,
                        pass_fds=(slot.fileno(), *((held.fileno(),) if held else ())),
                    )
                started_process(process)
                returncode = process.wait()
                committed = (before, committed_segment(paths, client))
        except (gate.GateClosed, accounts.UnknownClient) as error:
            print(f"borg-server: {error}", file=stderr)
            returncode = EX_TEMPFAIL
        except OSError as error:
            print(f"borg-server: borg serve cannot be started for client {client}: {error}", file=stderr)
            returncode = EX_TEMPFAIL
    exit_code = returncode if returncode >= 0 else 128 - returncode
    record = audit_log.session_record(
        client, request.role, request.fingerprint, started, time.time(), exit_code, request.environ, committed
    )
    audit_log.append_record(paths.audit_log, record)
    return exit_code
