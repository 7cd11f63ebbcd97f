"""The pieces scenarios are made of: a server container, sidecar runs against it, filled volumes, alerts seen."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from tests.harness.containers import CLIENT_IMAGE, SERVER_IMAGE, Sandbox, exec_, health, logs, wait_until


@dataclass
class Server:
    """A running server container and the volumes it owns."""

    container: str
    network: str
    repositories: str
    state: str
    exports: dict[str, str]

    def exec(self, *command: str, check: bool = True, user: str | None = None):
        return exec_(self.container, *command, check=check, user=user)


def start_server(sandbox: Sandbox, clients: list[str], env: dict[str, str] | None = None, network: str | None = None,
                 role: str = "server", extra: list[str] = ()) -> Server:  # fmt: skip
    """Start a server for clients on its own network; wait until healthy; return it."""
    network = network or sandbox.network()
    repositories, state = sandbox.volume(f"{role}-repos"), sandbox.volume(f"{role}-state")
    exports = {client: sandbox.volume(f"{role}-pairing-{client}") for client in clients}
    environment = {"BORG_CLIENTS": " ".join(clients), "BORG_SERVER_NAME": sandbox.name(role), **(env or {})}
    options = ["--network", network, "--hostname", sandbox.name(role), "-v", f"{repositories}:/srv/borg",
               "-v", f"{state}:/var/lib/borg-server", *extra]  # fmt: skip
    for client, volume in exports.items():
        options += ["-v", f"{volume}:/var/lib/borg-server/export/{client}"]
    for key, value in environment.items():
        options += ["-e", f"{key}={value}"]
    sandbox.run(role, SERVER_IMAGE, options)
    server = Server(sandbox.name(role), network, repositories, state, exports)
    wait_until(lambda: health(server.container) in ("healthy", "exited"), 60, "the server to become healthy")
    assert health(server.container) == "healthy", logs(server.container)
    return server


@dataclass
class Client:
    """What a sidecar needs: its name, pairing, state volume, data volume and passphrase file."""

    name: str
    server: Server
    state: str
    data: str
    passphrase_file: Path

    def options(self, env: dict[str, str] | None = None, data: str | None = None) -> list[str]:
        """Return docker run options for a sidecar: network, pairing, state, data (or another source), secret."""
        options = ["--network", self.server.network,
                   "-v", f"{self.server.exports[self.name]}:/pairing:ro",
                   "-v", f"{self.state}:/var/lib/borg-client",
                   "-v", f"{data or self.data}:/backup/data:ro",
                   "-v", f"{self.passphrase_file}:/run/secrets/borg_passphrase:ro",
                   "-e", "BORG_PASSPHRASE_FILE=/run/secrets/borg_passphrase"]  # fmt: skip
        for key, value in (env or {}).items():
            options += ["-e", f"{key}={value}"]
        return options


def make_client(sandbox: Sandbox, server: Server, name: str, tmp_path: Path) -> Client:
    passphrase = tmp_path / f"{name}.passphrase"
    passphrase.write_text(secrets.token_urlsafe(24) + "\n")
    return Client(name, server, sandbox.volume(f"{name}-state"), sandbox.volume(f"{name}-data"), passphrase)


def client_command(sandbox: Sandbox, client: Client, command: list[str], env: dict[str, str] | None = None,
                   role: str | None = None, extra: list[str] = (), check: bool = False):  # fmt: skip
    """Run one borg-client command in a throw-away sidecar; return the finished process."""
    return sandbox.run(role or f"{client.name}-cli", CLIENT_IMAGE, [*client.options(env), *extra], command,
                       detach=False, check=check)  # fmt: skip


def fill_volume(sandbox: Sandbox, volume: str, script: str) -> None:
    """Run a shell script in the base image with volume mounted at /data."""
    sandbox.run("fill", CLIENT_IMAGE, ["-v", f"{volume}:/data", "--entrypoint", "sh"], ["-c", script], detach=False)


SSH = (
    "ssh -i /pairing/id_ed25519 -o UserKnownHostsFile=/pairing/known_hosts -o StrictHostKeyChecking=yes "
    "-o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=10"
)


def attack(sandbox: Sandbox, client: Client, script: str, role: str = "attacker"):
    """Run a shell script as someone holding client's key (its pairing export) on the server's network.

    The script sees $SSH (ssh with the client's key and the pinned host key) and $SERVER.
    """
    options = [*client.options({"SSH": SSH, "SERVER": client.server.container}), "--entrypoint", "sh"]
    return sandbox.run(role, CLIENT_IMAGE, options, ["-c", script], detach=False, check=False)


def tree_digest(sandbox: Sandbox, server: Server) -> str:
    """Return one line per file (path, mode, owner, sha256) of the server's volumes, to compare states.

    The monitor's findings (var/lib/borg-server/monitor) are left out: they change whenever it scans.
    """
    files = "find srv/borg var/lib/borg-server -path var/lib/borg-server/monitor -prune -o -type f -print0 | sort -z"
    script = f"cd / && {files} | xargs -0 -r stat -c '%n %a %u:%g' && {files} | xargs -0 -r sha256sum"
    options = ["-v", f"{server.repositories}:/srv/borg:ro", "-v", f"{server.state}:/var/lib/borg-server:ro",
               "--entrypoint", "sh"]  # fmt: skip
    return sandbox.run("digest", SERVER_IMAGE, options, ["-c", script], detach=False).stdout


def repository_bytes(server: Server, client: str) -> int:
    """Return the bytes the client's repository occupies on the server's disk."""
    return int(server.exec("du", "-sb", f"/srv/borg/{client}/main").stdout.split()[0])


def monitor_documents(container: str, alert: str, state: str) -> list[dict]:
    """Return the documents of one alert (or event) and state that the server's monitor printed on its output."""
    found = []
    for line in logs(container).splitlines():
        if line.startswith("{") and '"borg-appliance-alert"' in line:
            document = json.loads(line)
            if (document["alert"], document["state"]) == (alert, state):
                found.append(document)
    return found


def scrape_metrics(sandbox: Sandbox, server: Server, port: int) -> str:
    """Return the server's /metrics text, fetched from a container on its network."""
    fetch = f"import urllib.request; print(urllib.request.urlopen('http://{server.container}:{port}/metrics').read().decode())"
    return sandbox.run("scrape", CLIENT_IMAGE, ["--network", server.network, "--entrypoint", "python3"],
                       ["-c", fetch], detach=False).stdout  # fmt: skip


RECEIVER = Path(__file__).parent / "receiver" / "receiver.py"


@dataclass
class Receiver:
    """A real HTTP report receiver in a container on the server's network."""

    container: str
    url: str

    def accepted(self) -> list[dict]:
        """Return the accepted POSTs as {"path", "body"} with body parsed as JSON where it is JSON."""
        lines = exec_(self.container, "sh", "-c", "cat /data/accepted.jsonl 2>/dev/null || true").stdout.splitlines()
        entries = [json.loads(line) for line in lines]
        for entry in entries:
            try:
                entry["body"] = json.loads(entry["body"])
            except ValueError:
                pass
        return entries

    def posts(self) -> list[str]:
        return exec_(self.container, "sh", "-c", "cat /data/posts.log 2>/dev/null || true").stdout.splitlines()


def start_receiver(sandbox: Sandbox, network: str, role: str = "receiver", responses: str = "") -> Receiver:
    """Start a receiver answering with responses (e.g. "500,500,200"); return it once it listens."""
    options = ["--network", network, "--network-alias", role, "--tmpfs", "/data", "-v", f"{RECEIVER}:/receiver.py:ro",
               "-e", f"RESPONSES={responses}", "--entrypoint", "python3"]  # fmt: skip
    sandbox.run(role, CLIENT_IMAGE, options, ["/receiver.py"])
    container = sandbox.name(role)
    probe = "import socket; socket.create_connection(('127.0.0.1', 8080), 1)"
    wait_until(lambda: exec_(container, "python3", "-c", probe, check=False).returncode == 0, 30, "the receiver")
    return Receiver(container, f"http://{role}:8080/report")


def planned_server(sandbox: Sandbox, clients: list[str], role: str = "server") -> Server:
    """Create a server's network and volumes but do not start it (a sidecar may start first); see start_planned."""
    exports = {client: sandbox.volume(f"{role}-pairing-{client}") for client in clients}
    network, repositories, state = sandbox.network(), sandbox.volume(f"{role}-repos"), sandbox.volume(f"{role}-state")
    return Server(sandbox.name(role), network, repositories, state, exports)


def start_planned(sandbox: Sandbox, server: Server, role: str = "server") -> None:
    """Start the planned server on its network and volumes, for its clients; wait until healthy."""
    options = ["--network", server.network, "--hostname", server.container, "-v", f"{server.repositories}:/srv/borg",
               "-v", f"{server.state}:/var/lib/borg-server", "-e", f"BORG_CLIENTS={' '.join(server.exports)}",
               "-e", f"BORG_SERVER_NAME={server.container}"]  # fmt: skip
    for client, volume in server.exports.items():
        options += ["-v", f"{volume}:/var/lib/borg-server/export/{client}"]
    sandbox.run(role, SERVER_IMAGE, options)
    wait_until(lambda: health(server.container) in ("healthy", "exited"), 60, "the server to become healthy")
    assert health(server.container) == "healthy", logs(server.container)


def alerts_logged(container: str) -> list[dict]:
    """Return the alert documents the monitor printed as JSON lines on the server's output."""
    found = []
    for line in logs(container).splitlines():
        if line.startswith("{") and '"borg-appliance-alert"' in line:
            found.append(json.loads(line))
    return found


def alert_seen(container: str, kind: str, state: str, client: str = "web") -> dict | None:
    """Return the first alert of kind in state for client the monitor printed, or None."""
    return next(
        (a for a in alerts_logged(container) if (a["alert"], a["state"], a["client"]) == (kind, state, client)), None
    )


def received(receiver: Receiver, kind: str, state: str) -> list[dict]:
    """Return the alert documents of kind in state that reached the receiver."""
    bodies = [entry["body"] for entry in receiver.accepted()]
    return [body for body in bodies if (body.get("alert"), body.get("state")) == (kind, state)]
