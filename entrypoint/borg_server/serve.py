"""The forced command of every client key: borg serve with the client's restrictions, audited.

sshd runs this instead of whatever the client asked for. It starts `borg serve` confined to the
client's directory (append-only unless the key's role says otherwise), waits for it, then appends
one JSON line describing the session to the audit log (audit_log.py), which supervisor echoes to the container's
output. Nothing is ever printed on stdout: that is borg's protocol channel.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from borg_server import audit_log, gate, segments
from borg_server.paths import Paths

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
COMPACTION_WAIT = 3600  # seconds a session waits for `borg-server compact` before giving up
EX_TEMPFAIL = 75


def serve_argv(client: str, role: str, quota: int | None, paths: Paths) -> list[str]:
    """Given a client, a key role (append, full or admin) and a quota, return the borg serve argv.

    With a quota the key is confined to the one repository `<dir>/main`, so the quota cannot be
    dodged by creating more repositories; admin keys reach the whole client directory, without a
    quota, so that pruning still works when the repository is full.
    """
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


def serve(client: str, role: str, fingerprint: str, quota: int | None, paths: Paths) -> int:
    """Run borg serve for client in its directory, forward termination signals, audit the session.

    The session holds the client's gate (gate.py): while `borg-server compact` works on the
    client it waits before it starts, so no delete can slip in between the compaction's audit and
    the compaction itself. Return borg's exit code (or 128 + signal number when it was killed).
    """
    started = time.time()
    try:
        with gate.session(paths, client, COMPACTION_WAIT) as held:
            before = committed_segment(paths, client)
            process = subprocess.Popen(  # borg serve holds the gate too, should this wrapper die first
                serve_argv(client, role, quota, paths),
                cwd=paths.client_directory(client),
                pass_fds=(held.fileno(),) if held else (),
            )
            for number in FORWARDED_SIGNALS:
                signal.signal(number, lambda received, _frame: process.send_signal(received))
            returncode = process.wait()
            committed = (before, committed_segment(paths, client))
    except gate.GateClosed as error:
        print(f"borg-server: {error}", file=sys.stderr)
        returncode, committed = EX_TEMPFAIL, (None, None)
    exit_code = returncode if returncode >= 0 else 128 - returncode
    record = audit_log.session_record(
        client, role, fingerprint, started, time.time(), exit_code, dict(os.environ), committed
    )
    audit_log.append_record(paths.audit_log, record)
    return exit_code
