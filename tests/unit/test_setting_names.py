"""Both images refuse a variable that looks meant for them but is none of their settings, naming the closest;
every setting is in its docs table, and every misspelling of one below is caught, for both images."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from borg_client import config as client_config
from borg_common.settings import ConfigError, Settings, check_unknown
from borg_server.config import reader

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reference"
SIDECAR, SERVER = client_config.SETTINGS, reader.SETTINGS


def documented(page: str) -> set[str]:
    """Given a settings page, return the settings its tables' first column names (without the clients' own)."""
    names = set()
    for line in (DOCS / page).read_text().splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split(" | ")[0]))
    return {name for name in names if "<NAME>" not in name}


@pytest.mark.parametrize(("page", "known"), [("sidecar-settings.md", SIDECAR), ("server-settings.md", SERVER)])
def test_every_setting_of_each_image_is_documented_and_every_documented_one_is_a_setting(page, known):
    names = documented(page)  # a row may name a setting by its file form (BORG_HOST_KEY_FILE)

    assert [name for name in known if name not in names and f"{name}_FILE" not in names] == []
    assert sorted(name for name in names if name not in known and name.removesuffix("_FILE") not in known) == []


def problems(environ: dict[str, str], known, image: str = "sidecar", **options) -> list[str]:
    settings = Settings(environ)
    check_unknown(settings, known, image, f"docs/reference/{image}-settings.md", **options)
    return settings.problems


def misspellings(name: str) -> list[str]:
    """A letter doubled and, in a name long enough, a letter left out."""
    doubled = name[:-1] + name[-2] + name[-1]
    return [doubled] if len(name) < 6 else [doubled, name[:-2] + name[-1]]


@pytest.mark.parametrize(
    ("image", "setting", "typo"),
    [("sidecar", name, typo) for name in SIDECAR for typo in misspellings(name)]
    + [("server", name, typo) for name in SERVER for typo in misspellings(name)],
)
def test_a_misspelled_setting_is_refused_naming_the_setting_meant(image, setting, typo):
    known = SIDECAR if image == "sidecar" else SERVER

    found = problems({typo: "1"}, known, image)

    assert found == [f"{typo}: is not a setting of the {image}; did you mean {setting}? "
                     f"(its settings: docs/reference/{image}-settings.md)"]  # fmt: skip


def test_the_issue_s_examples_read_as_a_person_needs_them():
    environ = {"REPORT_URL": "https://hooks.example/x", "KEEP_DAILY": "7", "KEEP_MONTLY": "6"}

    assert problems(environ, SIDECAR) == [
        "KEEP_MONTLY: is not a setting of the sidecar; did you mean KEEP_MONTHLY? "
        "(its settings: docs/reference/sidecar-settings.md)",
        "REPORT_URL: is not a setting of the sidecar; did you mean REPORT_URLS? "
        "(its settings: docs/reference/sidecar-settings.md)",
    ]


def test_a_variable_in_the_namespace_that_is_close_to_nothing_is_refused_without_a_guess():
    assert problems({"KEEP_FOREVER": "yes"}, SIDECAR) == [
        "KEEP_FOREVER: is not a setting of the sidecar (its settings: docs/reference/sidecar-settings.md)"
    ]


def test_unrelated_variables_empty_ones_and_kubernetes_service_links_are_left_alone():
    environ = {
        "PATH": "/usr/bin", "HOSTNAME": "abc123", "HOME": "/root", "PYTHONDONTWRITEBYTECODE": "1",
        "KEEP_TYPO_BUT_EMPTY": "", "BORG_SERVER_SERVICE_HOST": "10.0.0.7", "BORG_SERVER_SERVICE_PORT": "22",
        "BORG_SERVER_SERVICE_PORT_SSH": "22", "BORG_SERVER_PORT": "tcp://10.0.0.7:22",
        "BORG_SERVER_PORT_22_TCP": "tcp://10.0.0.7:22", "BORG_SERVER_PORT_22_TCP_ADDR": "10.0.0.7",
        "BORG_SERVER_PORT_22_TCP_PORT": "22", "BORG_SERVER_PORT_22_TCP_PROTO": "tcp",
    }  # fmt: skip

    assert problems(environ, SIDECAR) == []
    assert problems(environ, SERVER, "server", skip=reader.NOT_SETTINGS) == []


def test_every_setting_and_its_file_form_is_accepted():
    environ = {name: "x" for name in SIDECAR} | {f"{name}_FILE": "x" for name in SIDECAR}

    assert problems(environ, SIDECAR + client_config.PASSED_TO_BORG) == []


def test_the_sidecar_refuses_borg_variables_it_sets_itself_saying_why_and_passes_the_others(pairing_dir):
    environ = {"BORG_PASSCOMMAND": "cat /p", "BORG_CACHE_DIR": "/cache", "BORG_RSH": "ssh -o X=Y",
               "BORG_FILES_CACHE_TTL": "40", "BORG_REMOTE_PATH": "borg1"}  # fmt: skip

    with pytest.raises(ConfigError) as refused:
        client_config.load(environ, pairing=pairing_dir)

    assert refused.value.problems == [
        "BORG_CACHE_DIR: is set by the sidecar itself (everything borg keeps is in the state volume); remove it",
        "BORG_REMOTE_PATH: is not a setting of the sidecar (its settings: docs/reference/sidecar-settings.md)",
        "BORG_RSH: is set by the sidecar itself (ssh pins the server's host key: set BORG_SSH_KEY_FILE and "
        "BORG_KNOWN_HOSTS_FILE); remove it",
    ]


def test_the_server_leaves_the_clients_own_variables_to_their_check_and_refuses_a_close_miss(tmp_path):
    with pytest.raises(ConfigError) as refused:
        reader.load({"BORG_CLIENTS": "web", "BORG_CLIENT": "db", "MONITOR_INTERVALL": "1m"}, "srv")

    assert refused.value.problems == [
        "BORG_CLIENT: is not a setting of the server; did you mean BORG_CLIENTS? "
        "(its settings: docs/reference/server-settings.md)",
        "MONITOR_INTERVALL: is not a setting of the server; did you mean MONITOR_INTERVAL? "
        "(its settings: docs/reference/server-settings.md)",
    ]


@pytest.fixture
def pairing_dir(tmp_path):
    directory = tmp_path / "pairing"
    directory.mkdir()
    for name, text in (("id_ed25519", "key"), ("known_hosts", "srv ssh-ed25519 AAAA\n"),
                       ("repo_url", "ssh://borg@srv:22/./main\n"), ("client_name", "web\n")):  # fmt: skip
        (directory / name).write_text(text)
    return directory
