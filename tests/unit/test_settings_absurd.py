"""Every setting of both images fed absurd values: each is refused as one short line naming the setting."""

import pytest

from borg_client import config as client_config
from borg_common.settings import ConfigError
from borg_server.config import reader as server_config
from tests.settings_table import CLIENT, CLIENT_CASES, REPLICA, REPLICA_BASE, SERVER, SERVER_CASES

# Any text is a valid BACKUP_STOP_LABEL, so a passphrase read as one cannot be told from a label.
SECRET = "Hunter2!Secret-passphrase"  # what a *_FILE setting reads when it names the passphrase file by mistake
FILE_SETTINGS_SERVER = [s for s in SERVER if s != "BORG_SERVER_CONFIG"]
# Any text is a valid BACKUP_STOP_LABEL or BACKUP_DUMP_LABEL: a passphrase read as one cannot be told from a label;
# nor from COVERAGE_IGNORE's wildcard patterns.
FILE_SETTINGS_CLIENT = [
    s
    for s in CLIENT
    if s
    not in (
        "BORG_PASSPHRASE_FILE",
        "BORG_PASSCOMMAND",
        "BORG_PASSPHRASE",
        "TZ",
        "BACKUP_STOP_LABEL",
        "BACKUP_DUMP_LABEL",
        "COVERAGE_IGNORE",
    )
]


def problems(load, environ: dict[str, str]) -> list[str]:
    """Given a load function and an environment, return the problems it raises (fail if it raises none)."""
    with pytest.raises(ConfigError) as error:
        load(environ)
    return error.value.problems


def server_load(environ):
    return server_config.load(environ, "backup")


@pytest.fixture
def client_load(tmp_path):
    pairing = tmp_path / "pairing"
    pairing.mkdir()
    for name, text in {"id_ed25519": "key", "known_hosts": "srv ssh-ed25519 AAAA\n", "client_name": "web\n",
                       "repo_url": "ssh://borg@srv:22/./main\n"}.items():  # fmt: skip
        (pairing / name).write_text(text)
    (tmp_path / "passphrase").write_text("correct horse battery staple\n")
    base = {"BORG_PASSPHRASE_FILE": str(tmp_path / "passphrase")}

    def load(environ):
        return client_config.load(base | environ, pairing=pairing)

    load({})  # the base is good
    return load


def assert_refused(found: list[str], case: dict) -> None:
    """Assert a problem names the case's setting and none quotes a long value whole or runs long."""
    assert any(problem.startswith(case["setting"]) for problem in found), (case["id"], found)
    assert all(len(problem) < 400 for problem in found), found
    if len(case["value"]) > 100:
        assert not any(case["value"][:100] in problem for problem in found), found
    assert not any("\x1b" in problem or "\x07" in problem for problem in found), found


@pytest.mark.parametrize("case", SERVER_CASES, ids=[case["id"] for case in SERVER_CASES])
def test_an_absurd_server_setting_is_refused_naming_it(case):
    environ = {"BORG_CLIENTS": "web db"} | case["set"] | {case["setting"]: case["value"]}

    assert_refused(problems(server_load, environ), case)


@pytest.mark.parametrize("case", CLIENT_CASES, ids=[case["id"] for case in CLIENT_CASES])
def test_an_absurd_client_setting_is_refused_naming_it(client_load, case):
    environ = case["set"] | {case["setting"]: case["value"]} | {name: "" for name in case["unset"]}

    assert_refused(problems(client_load, environ), case)


@pytest.mark.parametrize("setting", FILE_SETTINGS_SERVER)
def test_a_server_file_setting_naming_the_passphrase_file_never_shows_the_passphrase(tmp_path, setting):
    (tmp_path / "borg_passphrase").write_text(SECRET + "\n")
    base = {} if setting == "BORG_CLIENTS" else {"BORG_CLIENTS": "web db"}
    base |= {name: value for name, value in REPLICA_BASE.items() if setting in REPLICA and name != setting}
    environ = base | {f"{setting}_FILE": str(tmp_path / "borg_passphrase")}

    found = problems(server_load, environ)

    assert any(problem.startswith(f"{setting}_FILE: ") for problem in found), found
    assert not any("Hunter2" in problem or "passphrase:" in problem for problem in found), found


def test_a_yaml_file_field_naming_the_passphrase_file_never_shows_the_passphrase(tmp_path):
    (tmp_path / "borg_passphrase").write_text(SECRET + "\n")
    fields = "".join(f"    {field}_file: {tmp_path / 'borg_passphrase'}\n" for field in ("key", "quota", "max_age"))
    (tmp_path / "borg.yaml").write_text(f"ssh_port_file: {tmp_path / 'borg_passphrase'}\nclients:\n  web:\n{fields}")

    found = problems(server_load, {"BORG_SERVER_CONFIG": str(tmp_path / "borg.yaml")})

    assert len(found) == 4, found
    assert not any("Hunter2" in problem for problem in found), found


@pytest.mark.parametrize("setting", FILE_SETTINGS_CLIENT)
def test_a_client_file_setting_naming_the_passphrase_file_never_shows_the_passphrase(client_load, tmp_path, setting):
    (tmp_path / "borg_passphrase").write_text(SECRET + "\n")

    found = problems(client_load, {f"{setting}_FILE": str(tmp_path / "borg_passphrase")})

    assert any(problem.startswith(f"{setting}_FILE: ") for problem in found), found
    assert not any("Hunter2" in problem for problem in found), found
