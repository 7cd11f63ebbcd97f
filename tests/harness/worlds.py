"""The shared world: a server and a backed-up client, made once per worker for the scenarios that only read.

A scenario that uses it may read the repository (list, restore to a scratch place, mount), ask the server
(status, show-client) and add to the sidecar's day log; it must not back up, delete, change the
configuration or stop a container: those scenarios make a world of their own.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.harness.containers import Sandbox
from tests.harness.stack import Client, Server, client_command, fill_volume, make_client, start_server

MANY = 3000  # tiny files: enough that a per-file container log would show, cheap to back up
FILES = (
    "head -c 3000000 /dev/urandom > /data/blob.bin && echo hello > /data/note.txt && mkdir /data/many && "
    f"(cd /data/many && seq -w {MANY} | while read n; do echo $n > f$n; done) && "
    "head -c 1000000 /dev/urandom > /data/a.bin && chmod 640 /data/a.bin && mkdir /data/dir && echo x > /data/dir/b && "
    "chmod 750 /data/dir && touch -d '2001-02-03 04:05:06' /data/a.bin /data/dir/b && echo mounted > /data/file"
)
BACKED_UP = ["blob.bin", "note.txt", *[f"many/f{n:04d}" for n in range(1, MANY + 1)], "a.bin", "dir/b", "file"]


@dataclass(frozen=True)
class World:
    """A server with clients web (append-only, one backup of FILES) and db (APPEND_ONLY=no, no backup yet).

    A scenario runs its own containers in its own sandbox; sandbox here is the world's, removed at the end."""

    sandbox: Sandbox
    server: Server
    web: Client
    db: Client
    first_run: subprocess.CompletedProcess  # web's first `borg-client run`, as it finished


def build_world(sandbox: Sandbox, directory: Path) -> World:
    """Start the world's server and make web's first backup; return the world."""
    server = start_server(sandbox, ["web", "db"], env={"BORG_CLIENT_DB_APPEND_ONLY": "no"})
    web, db = make_client(sandbox, server, "web", directory), make_client(sandbox, server, "db", directory)
    fill_volume(sandbox, web.data, FILES)
    first_run = client_command(sandbox, web, ["run"])
    assert first_run.returncode == 0, first_run.stderr
    return World(sandbox, server, web, db, first_run)
