"""Prometheus metrics on an opt-in HTTP port (METRICS_PORT): the figures of `borg-server status`.

The monitor renders the text after every scan; the HTTP server only hands out the last text, so a
scrape never touches the repositories.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Generic, TypeVar

from borg_common import outbox
from borg_server.monitor.alerts import LABELS, REPLICA_ALERTS
from borg_server.records.configuration import ServerConfig
from borg_server.status import facts
from borg_server.status.facts import ClientStatus, ServerStatus
from borg_server.status.prometheus import family, per_client
from borg_server.system.paths import Paths

T = TypeVar("T")

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CONNECTION_LIMIT = 32  # connections served at once; more are closed unread
REQUEST_TIMEOUT = 5  # seconds a connection may stay silent
REQUEST_DEADLINE = 15  # seconds a connection may last in all (a slow sender is cut off)
CLIENT_METRICS = (  # name, help, value of a ClientStatus (None: no sample)
    ("last_backup_timestamp_seconds", "End of the client's last backup session (Unix time).",
     lambda s: datetime.fromisoformat(s.last_backup).timestamp() if s.last_backup else None),
    ("backup_age_seconds", "Seconds since the client's last backup session ended.", lambda s: s.age_s),
    ("repository_bytes", "Bytes on disk in the client's directory.", lambda s: s.repository_bytes),
    ("quota_bytes", "The client's storage quota in bytes.", lambda s: s.quota_bytes),
    ("quota_used_ratio", "Repository bytes divided by the quota.", lambda s: s.quota_used),
    ("append_only", "1 if the client's key can only append.", lambda s: int(s.append_only)),
    ("unacknowledged_deletes", "Deletes by the client not yet acknowledged with borg-server audit.",
     lambda s: s.unacknowledged_deletes),
    ("tampered_segments", "Committed segments changed, truncated, removed or unreadable.",
     lambda s: s.tampered_segments),
    ("last_check_timestamp_seconds", "When borg check --repository-only last ran (Unix time).",
     lambda s: datetime.fromisoformat(s.last_check_at).timestamp() if s.last_check_at else None),
    ("check_ok", "1 if the last repository check found no problem, 0 if it failed.",
     lambda s: None if s.last_check is None else int(s.last_check == "ok")),
    ("auto_compact", "1 if the client's admin deletes compact by themselves (AUTO_COMPACT=admin).",
     lambda s: None if s.auto_compact is None else int(s.auto_compact == "admin")),
    ("pending_admin_deletes", "Unacknowledged deletes written by the client's admin sessions.",
     lambda s: None if s.auto_compact is None else s.pending_admin_deletes),
    ("next_compaction_timestamp_seconds", "Earliest time the next automatic compaction may run.",
     lambda s: timestamp(s.next_compaction_at) if s.auto_compact == "admin" and not s.compaction_blocked else None),
    ("compaction_blocked", "1 if something holds the automatic compaction back.",
     lambda s: None if s.auto_compact != "admin" else int(s.compaction_blocked is not None)),
    ("last_compaction_timestamp_seconds", "When the last compaction ended (Unix time).",
     lambda s: timestamp(s.last_compaction_at)),
    ("last_compaction_freed_bytes", "Bytes the last compaction freed.", lambda s: s.last_compaction_freed_bytes),
)  # fmt: skip

SERVER_METRICS = (
    ("disk_free_bytes", "Bytes free for the borg user on the repositories' file system.", lambda s: s.free_bytes),
    ("disk_total_bytes", "Size of the repositories' file system in bytes.", lambda s: s.total_bytes),
    ("disk_used_ratio", "Share of the repositories' file system in use.", lambda s: s.used_ratio),
    ("disk_reserve_bytes", "Bytes every repository keeps free for clean-up (DISK_RESERVE).", lambda s: s.reserve_bytes),
)
SERVER_ALERTS = ("disk",)
NOTIFICATIONS_HELP = "Notifications waiting in the outbox for delivery to NOTIFY_URLS."


def render(
    statuses: list[ClientStatus],
    scanned_at: float | None,
    scan_seconds: float | None,
    pending: int,
    server: ServerStatus | None = None,
) -> str:
    """Given the clients' figures, the monitor's own (pending: alert reports waiting) and the server's (with the
    notifications waiting), return the Prometheus text exposition."""
    lines: list[str] = []
    per_client(lines, "client", CLIENT_METRICS, statuses, tuple(kind for kind in LABELS if kind not in REPLICA_ALERTS))
    if scanned_at is not None:
        family(
            lines, "monitor_last_scan_timestamp_seconds", "When the monitor last finished a scan.", [("", scanned_at)]
        )
    if scan_seconds is not None:
        family(lines, "monitor_scan_duration_seconds", "How long the last scan of every client took.",
               [("", scan_seconds)])  # fmt: skip
    if server is not None:
        for name, text, value in SERVER_METRICS:
            family(lines, f"server_{name}", text, [("", value(server))])
        family(lines, "server_alert", "1 while the server's alert is raised.", [(f'{{alert="{kind}"}}',
               int(kind in server.alerts)) for kind in SERVER_ALERTS])  # fmt: skip
    family(lines, "monitor_outbox_reports", "Alert reports waiting in the outbox for delivery.", [("", pending)])
    if server is not None:
        family(lines, "monitor_outbox_notifications", NOTIFICATIONS_HELP, [("", server.notifications_waiting)])
    return "\n".join(lines) + "\n"


def timestamp(moment: str | None) -> float | None:
    return datetime.fromisoformat(moment).timestamp() if moment else None


def publish(
    exposition: Exposition,
    paths: Paths,
    server: ServerConfig,
    seconds: float,
    found: tuple[list[ClientStatus], ServerStatus] | None = None,
) -> None:
    """Render every client's figures and the monitor's own (a scan that took seconds) into the exposition.

    The monitor calls it after every scan, with the facts found (collected here if not given); without
    METRICS_PORT it does nothing.
    """
    if not server.metrics_port:
        return
    clients, own = found or (facts.collect(server, paths), facts.server_status(server, paths))
    text = render(clients, time.time(), seconds, outbox.size(paths.monitor_outbox), own)
    exposition.update(text)


class Latest(Generic[T]):
    """The last value the monitor thread published, read by an HTTP server's threads (the metrics' text, the
    status page's snapshot)."""

    def __init__(self, value: T) -> None:
        self.lock = threading.Lock()
        self.value = value

    def update(self, value: T) -> None:
        with self.lock:
            self.value = value

    def read(self) -> T:
        with self.lock:
            return self.value


class Exposition(Latest[str]):
    """The last rendered text, shared between the monitor thread and the HTTP server."""

    def __init__(self) -> None:
        super().__init__("")


class BoundedServer(ThreadingHTTPServer):
    """A threading HTTP server that serves at most `limit` connections at once and closes the rest.

    Each connection has REQUEST_TIMEOUT per read and REQUEST_DEADLINE in all, so a thousand idle or
    slow connections cost a few threads for a few seconds, never the monitor's scans or alerts.
    """

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], handler: type, limit: int) -> None:
        super().__init__(address, handler)
        self.slots = threading.BoundedSemaphore(limit)

    def process_request(self, request, client_address) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)  # over the limit: closed at once, nothing read
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        deadline = threading.Timer(REQUEST_DEADLINE, close_quietly, args=(request,))
        deadline.daemon = True
        deadline.start()
        try:
            super().process_request_thread(request, client_address)
        finally:
            deadline.cancel()
            self.slots.release()


def close_quietly(connection: socket.socket) -> None:
    """Cut a connection that outlived its deadline (its handler thread then ends on the closed socket)."""
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


def serve(port: int, exposition: Exposition) -> ThreadingHTTPServer:
    """Start answering GET /metrics on port (all addresses) in a daemon thread; return the server."""

    class Handler(BaseHTTPRequestHandler):
        timeout = REQUEST_TIMEOUT  # seconds per read: a connection that sends nothing is closed

        def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "only /metrics is here")
                return
            body = exposition.read().encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 (the signature http.server calls)
            logger.debug("metrics: %s " + format, self.address_string(), *args)

    server = BoundedServer(("", port), Handler, CONNECTION_LIMIT)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    logger.info("metrics: serving Prometheus metrics on port %d at /metrics", port)
    return server
