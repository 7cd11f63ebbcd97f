"""Real notification services for scenarios: an ntfy server and an SMTP server (tests/images, Debian packages)."""

from __future__ import annotations

import email
import email.policy
import json
from dataclasses import dataclass

from tests.harness.containers import NTFY_IMAGE, SMTP_IMAGE, Sandbox, docker, exec_, wait_until


@dataclass
class Ntfy:
    """A real ntfy server on a network, reachable as ntfy://ntfy/<topic> (Apprise) from it."""

    container: str

    def messages(self, topic: str) -> list[dict]:
        """Return the messages published to topic (ntfy's JSON: title, message, …), oldest first."""
        found = exec_(self.container, "ntfy", "subscribe", "--poll", "--since", "all", f"http://127.0.0.1/{topic}")
        return [json.loads(line) for line in found.stdout.splitlines() if line.startswith("{")]

    def stop(self) -> None:
        docker("stop", self.container)

    def start(self) -> None:
        docker("start", self.container)
        wait_until(self.listening, 30, "ntfy to listen again")

    def listening(self) -> bool:
        """Return whether the server answers (a poll of a topic nobody uses)."""
        probe = exec_(self.container, "ntfy", "subscribe", "--poll", "http://127.0.0.1/probe", check=False)
        return probe.returncode == 0


def start_ntfy(sandbox: Sandbox, network: str, role: str = "ntfy") -> Ntfy:
    """Start an ntfy server on network with the alias role; return it once it listens."""
    sandbox.run(role, NTFY_IMAGE, ["--network", network, "--network-alias", role])
    ntfy = Ntfy(sandbox.name(role))
    wait_until(ntfy.listening, 30, "ntfy to listen")
    return ntfy


@dataclass
class Smtp:
    """A real SMTP server on a network (port 2525) that keeps every message it accepts."""

    container: str

    def mails(self) -> list[email.message.EmailMessage]:
        """Return the messages accepted so far, oldest first, parsed."""
        names = exec_(self.container, "sh", "-c", "ls /data/*.eml 2>/dev/null || true").stdout.split()
        raw = [exec_(self.container, "cat", name).stdout for name in sorted(names)]
        return [email.message_from_string(text, policy=email.policy.default) for text in raw]


def start_smtp(sandbox: Sandbox, network: str, role: str = "smtp") -> Smtp:
    """Start an SMTP server on network with the alias role; return it once it listens."""
    sandbox.run(role, SMTP_IMAGE, ["--network", network, "--network-alias", role, "--tmpfs", "/data"])
    smtp = Smtp(sandbox.name(role))
    probe = "import socket; socket.create_connection(('127.0.0.1', 2525), 1)"
    wait_until(lambda: exec_(smtp.container, "python3", "-c", probe, check=False).returncode == 0, 30, "smtp")
    return smtp
