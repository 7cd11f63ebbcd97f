"""A report receiver for the tests: answers POSTs from a script, keeps what it accepted.

RESPONSES="500,500,200": the answers to the first POSTs in order, 200 after that; "hang" sleeps
longer than any client timeout. Accepted bodies are appended to /data/accepted.jsonl; every POST
(accepted or not) is counted in /data/posts.log. GET /accepted returns the accepted bodies.
"""

import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DATA = Path("/data")
SCRIPT = [step.strip() for step in os.environ.get("RESPONSES", "").split(",") if step.strip()]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (the http.server API)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open(DATA / "posts.log", "a") as log:
            log.write(f"{self.path} {self.headers.get('Idempotency-Key', '-')}\n")
        step = SCRIPT.pop(0) if SCRIPT else "200"
        if step == "hang":
            time.sleep(3600)
            return
        status = int(step)
        if status == 200:
            with open(DATA / "accepted.jsonl", "a") as accepted:
                accepted.write(json.dumps({"path": self.path, "body": body.decode(errors="replace")}) + "\n")
        self.send_response(status)
        self.end_headers()

    def do_GET(self):  # noqa: N802
        path = DATA / "accepted.jsonl"
        payload = path.read_bytes() if path.exists() else b""
        self.send_response(200)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
