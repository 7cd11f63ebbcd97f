"""Every setting of both images fed absurd values against the built images: exit 2, named, no traceback, no change.

One container per image runs the whole table (tests/settings_table.py) through settings_runner.py:
the server's entrypoint on the volumes of a server that started well and holds a backup, and the
sidecar's check-config and run on a state volume that made that backup.
"""

from __future__ import annotations

import json

import pytest

from tests.integration.docker_helpers import CLIENT_IMAGE, SERVER_IMAGE, Sandbox, docker
from tests.integration.stack import client_command, fill_volume, make_client, start_server
from tests.settings_table import CLIENT_CASES, SERVER_CASES

RUNNER = "/tmp/tests/integration/settings_runner.py"


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


def run_table(sandbox, image, options, cases, directory, directories, command) -> tuple[list[dict], list[str]]:
    """Run the cases in one container of image; return the outcomes by case and the digests before and after."""
    table = directory / "cases.json"
    table.write_text(json.dumps(cases))
    tests = __file__.rsplit("/integration/", 1)[0]
    options = [*options, "-v", f"{tests}:/tmp/tests:ro", "-v", f"{table}:/tmp/cases.json:ro", "--entrypoint", "python3"]
    argv = [RUNNER, "/tmp/cases.json", *directories, "--", *command]
    result = sandbox.run("table", image, options, argv, detach=False, timeout=900)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return [line for line in lines if "id" in line], [line["digest"] for line in lines if "digest" in line]


def assert_refused(outcomes: list[dict], cases: list[dict]) -> None:
    """Assert each case exited 2 with a problem line naming its setting, no traceback, a bounded message."""
    assert [outcome["id"] for outcome in outcomes] == [case["id"] for case in cases]
    for outcome, case in zip(outcomes, cases, strict=True):
        problems = [line.strip() for line in outcome["stderr"].splitlines() if line.startswith("  ")]
        assert outcome["rc"] == 2, outcome
        assert any(problem.startswith(case["setting"]) for problem in problems), outcome
        assert "Traceback" not in outcome["stderr"], outcome
        assert outcome["length"] < 2000, outcome  # a 100 kB value is never echoed whole
        assert "\x1b" not in outcome["stderr"], outcome


def test_every_absurd_server_setting_is_refused_and_changes_nothing(backed_up):
    sandbox, server, _web, directory = backed_up
    options = ["-v", f"{server.repositories}:/srv/borg", "-v", f"{server.state}:/var/lib/borg-server",
               "-e", "BORG_CLIENTS=web db"]  # fmt: skip
    command = ["/usr/local/bin/borg-server-entrypoint"]
    outcomes, digests = run_table(
        sandbox, SERVER_IMAGE, options, SERVER_CASES, directory, ["/srv/borg", "/var/lib/borg-server"], command
    )

    assert_refused(outcomes, SERVER_CASES)
    assert len(digests) == 2 and digests[0] == digests[1]


@pytest.mark.parametrize("command", [["check-config"], ["run"]])
def test_every_absurd_client_setting_is_refused_and_changes_nothing(backed_up, command):
    sandbox, _server, web, directory = backed_up
    outcomes, digests = run_table(
        sandbox,
        CLIENT_IMAGE,
        web.options(),
        CLIENT_CASES,
        directory,
        ["/var/lib/borg-client"],
        ["borg-client", *command],
    )

    assert_refused(outcomes, CLIENT_CASES)
    assert len(digests) == 2 and digests[0] == digests[1]
