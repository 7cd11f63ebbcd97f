"""The status page's HTTP server (STATUS_PORT): GET or HEAD of / and /status.json, behind basic authentication.

It is the metrics' bounded server (status/metrics.py: a few connections at once, each with a deadline),
answers only what the monitor published last (status/page.py), so a request never touches a repository,
and takes no action of any kind: every other method is 405.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler

from borg_server.status import page
from borg_server.status.metrics import CONNECTION_LIMIT, REQUEST_TIMEOUT, BoundedServer

logger = logging.getLogger(__name__)

REALM = 'Basic realm="borg-appliance status", charset="UTF-8"'
ALLOWED = "GET, HEAD"
SECURITY_HEADERS = (
    ("Content-Security-Policy",
     "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)  # fmt: skip
PAGES = {  # path -> (content type, renderer)
    "/": ("text/html; charset=utf-8", page.render_html),
    "/status.json": ("application/json", page.render_json),
}


def authorized(header: str | None, password: str | None) -> bool:
    """Given an Authorization header and the password (None: none asked), return whether it lets the request in.

    Any user name is accepted; the password is compared in constant time.
    """
    if password is None:
        return True
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    _, _, secret = given.partition(b":")
    return hmac.compare_digest(secret, password.encode())


def serve(port: int, password: str | None, board: page.Board) -> BoundedServer:
    """Start answering the status page on port (all addresses) in a daemon thread; return the server."""

    class Handler(BaseHTTPRequestHandler):
        timeout = REQUEST_TIMEOUT  # seconds per read: a connection that sends nothing is closed
        server_version = "borg-appliance-status"
        sys_version = ""

        def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
            self.answer_page(with_body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self.answer_page(with_body=False)

        def refuse_method(self) -> None:
            self.answer(405, "Only GET and HEAD are answered here: the status page cannot change anything.\n",
                        [("Allow", ALLOWED)])  # fmt: skip

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = refuse_method  # noqa: N815

        def answer_page(self, with_body: bool) -> None:
            if not authorized(self.headers.get("Authorization"), password):
                self.answer(401, "The status page needs its password (STATUS_PASSWORD_FILE).\n",
                            [("WWW-Authenticate", REALM)], with_body)  # fmt: skip
                return
            found = PAGES.get(self.path.split("?")[0])
            if found is None:
                self.answer(404, "Only / and /status.json are here.\n", [], with_body)
                return
            content_type, render = found
            self.answer(200, render(board.read(), datetime.now(UTC)), [], with_body, content_type)

        def answer(self, code: int, text: str, headers: list, with_body: bool = True,
                   content_type: str = "text/plain; charset=utf-8") -> None:  # fmt: skip
            body = text.encode()
            self.send_response(code)
            for name, value in [("Content-Type", content_type), ("Content-Length", str(len(body))),
                                *SECURITY_HEADERS, *headers]:  # fmt: skip
                self.send_header(name, value)
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 (the signature http.server calls)
            logger.debug("status page: %s " + format, self.address_string(), *args)

    server = BoundedServer(("", port), Handler, CONNECTION_LIMIT)
    threading.Thread(target=server.serve_forever, name="status-page", daemon=True).start()
    protection = "a password" if password is not None else "no password (STATUS_NO_PASSWORD=yes)"
    logger.info("status page: serving on port %d at / and /status.json, with %s", port, protection)
    return server
