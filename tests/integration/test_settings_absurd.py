"""Every setting of both images fed absurd values against the built images: exit 2, named, no traceback, no change.

One container per image runs the whole table (tests/settings_table.py) through tests/harness/settings_runner.py:
the server's entrypoint on the volumes of a server that started well and holds a backup, and the
sidecar's check-config and run on a state volume that made that backup.
"""

from __future__ import annotations

import pytest

from tests.harness.containers import CLIENT_IMAGE, SERVER_IMAGE, Sandbox, docker
from tests.harness.stack import client_command, fill_volume, make_client, start_server
from tests.harness.tables import Table, run_table
from tests.settings_table import CLIENT_CASES, SERVER_CASES


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory):
    """A server with clients web and db holding one backup of web, stopped; and web's sidecar."""
    sandbox = Sandbox()
    try:
        server = start_server(sandbox, ["web", "db"])
        web = make_client(sandbox, server, "web", tmp_path_factory.mktemp("absurd"))
        fill_volume(sandbox, web.data, "echo precious > /data/file.txt")
        assert client_command(sandbox, web, ["run"]).returncode == 0
        docker("stop", server.container)
        yield sandbox, server, web, tmp_path_factory.mktemp("table")
    finally:
        sandbox.cleanup()


def assert_refused(table: Table, cases: list[dict]) -> None:
    """Assert each case exited 2 with a problem line naming its setting, no traceback, a bounded message, and
    left the directories exactly as they were."""
    for case in cases:
        outcome = table.outcomes[case["id"]]
        problems = [line.strip() for line in outcome["stderr"].splitlines() if line.startswith("  ")]
        assert outcome["rc"] == 2, outcome
        assert any(problem.startswith(case["setting"]) for problem in problems), outcome
        assert "Traceback" not in outcome["stderr"], outcome
        assert outcome["length"] < 2000, outcome  # a 100 kB value is never echoed whole
        assert "\x1b" not in outcome["stderr"], outcome
        assert outcome["digest"] == table.before, outcome


def test_every_absurd_server_setting_is_refused_and_changes_nothing(backed_up):
    sandbox, server, _web, directory = backed_up
    options = ["-v", f"{server.repositories}:/srv/borg", "-v", f"{server.state}:/var/lib/borg-server",
               "-e", "BORG_CLIENTS=web db"]  # fmt: skip
    command = ["/usr/local/bin/borg-server-entrypoint"]
    table = run_table(
        sandbox, SERVER_IMAGE, options, SERVER_CASES, directory, ["/srv/borg", "/var/lib/borg-server"], command
    )

    assert_refused(table, SERVER_CASES)


@pytest.mark.parametrize("command", [["check-config"], ["run"]])
def test_every_absurd_client_setting_is_refused_and_changes_nothing(backed_up, command):
    sandbox, _server, web, directory = backed_up
    table = run_table(
        sandbox,
        CLIENT_IMAGE,
        web.options(),
        CLIENT_CASES,
        directory,
        ["/var/lib/borg-client"],
        ["borg-client", *command],
    )

    assert_refused(table, CLIENT_CASES)
