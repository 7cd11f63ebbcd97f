"""Tests for the sidecar's settings: a good setup resolved from the pairing export, and every mistake
reported as the one line a user reads, all of them at once."""

from pathlib import Path

import pytest

from borg_client import retention
from borg_client.config import NO_NAME, ClientConfig, load
from borg_common.settings import LOG_LEVELS, ConfigError
from tests.unit.borg_client.samples import REPO_URL

ENCRYPTIONS = "keyfile-blake2, repokey-blake2, keyfile, repokey, authenticated-blake2, authenticated"
BOOLEANS = "yes, true, on, 1, no, false, off, 0"


def problems_of(environ: dict[str, str], pairing: Path) -> list[str]:
    """Given settings that must fail, return the problems load() reports."""
    with pytest.raises(ConfigError) as error:
        load(environ, pairing=pairing)
    return error.value.problems


def test_a_passphrase_file_and_the_pairing_export_are_enough(pairing, passphrase_file):
    config = load({"BORG_PASSPHRASE_FILE": str(passphrase_file)}, pairing=pairing)

    assert config == ClientConfig(
        client="web",
        repository=REPO_URL,
        ssh_key=pairing / "id_ed25519",
        known_hosts=pairing / "known_hosts",
        passphrase_file=passphrase_file,
        passcommand=None,
        passphrase=None,
        cron="0 3 * * *",
        jitter=0,
        archive_name="{client}-{utcnow:%Y-%m-%dT%H:%M:%S}",
        compression="zstd,3",
        encryption="keyfile-blake2",
        exclude_caches=True,
        stop_label=None,
        report_urls=(),
        healthchecks_url=None,
    )
    assert (config.state, config.sources) == (Path("/var/lib/borg-client"), Path("/backup"))
    assert config.secrets == ("correct horse battery staple",)  # the file's content is masked in logs


def test_settings_from_the_environment_win_over_the_pairing_export(pairing, tmp_path):
    key, known_hosts = tmp_path / "key", tmp_path / "known_hosts"
    key.write_text("key")
    known_hosts.write_text("hosts")
    environ = {
        "CLIENT_NAME": "db-1",
        "BORG_REPO": "ssh://backup@[2001:db8::1]:2222/./main",
        "BORG_SSH_KEY_FILE": str(key),
        "BORG_KNOWN_HOSTS_FILE": str(known_hosts),
        "BORG_PASSPHRASE": "s3cret",
        "BACKUP_CRON": "30 1 * * 1-5",
        "BACKUP_JITTER": "15m",
        "ARCHIVE_NAME": "{client}-{now}",
        "BORG_COMPRESSION": "auto,zstd,6",
        "BORG_ENCRYPTION": "repokey-blake2",
        "EXCLUDE_CACHES": "off",
        "BACKUP_STOP_LABEL": "backup.stop",
        "REPORT_URLS": "https://a.example/hook, https://b.example/hook",
        "HEALTHCHECKS_URL": "https://hc.example/ping/abc",
    }

    config = load(environ, pairing=pairing)

    assert config == ClientConfig(
        client="db-1",
        repository="ssh://backup@[2001:db8::1]:2222/./main",
        ssh_key=key,
        known_hosts=known_hosts,
        passphrase_file=None,
        passcommand=None,
        passphrase="s3cret",
        cron="30 1 * * 1-5",
        jitter=900,
        archive_name="{client}-{now}",
        compression="auto,zstd,6",
        encryption="repokey-blake2",
        exclude_caches=False,
        stop_label="backup.stop",
        report_urls=("https://a.example/hook", "https://b.example/hook"),
        healthchecks_url="https://hc.example/ping/abc",
    )
    assert config.secrets == ("s3cret",)


def test_without_a_client_name_the_sidecar_refuses_to_start_rather_than_use_its_changing_hostname(pairing):
    (pairing / "client_name").unlink()

    assert problems_of({"BORG_PASSCOMMAND": "cat /run/secrets/p"}, pairing) == [
        "CLIENT_NAME: not set, and no pairing export names this client; set it to the client's name on the server "
        "(BORG_CLIENTS): archives are named after it and prune keeps only its own, so it must stay the same when "
        "the container is re-created"
    ]


def test_the_client_name_setting_names_the_client_when_the_export_does_not(pairing):
    (pairing / "client_name").unlink()

    assert load({"BORG_PASSCOMMAND": "cat /p", "CLIENT_NAME": "db"}, pairing=pairing).client == "db"


def test_the_repository_can_be_read_from_a_file(pairing, passphrase_file, tmp_path):
    (tmp_path / "repo").write_text("ssh://borg@other:22/./main\n")
    environ = {"BORG_PASSPHRASE_FILE": str(passphrase_file), "BORG_REPO_FILE": str(tmp_path / "repo")}

    assert load(environ, pairing=pairing).repository == "ssh://borg@other:22/./main"


# Each case: settings (with {tmp} for the test's directory), then the one problem it must cause.
BAD_CONFIGURATIONS = {
    "bad cron": ({"BACKUP_CRON": "61 * * * *"}, "BACKUP_CRON: '61 * * * *' is not a cron expression: Bad minute"),
    "cron with four fields": (
        {"BACKUP_CRON": "0 3 * *"},
        "BACKUP_CRON: '0 3 * *' is not a cron expression: Wrong number of fields",
    ),
    "unknown compression": (
        {"BORG_COMPRESSION": "zstd,23"},
        "BORG_COMPRESSION: 'zstd,23' is not a borg compression (e.g. lz4, zstd,3, auto,zstd,6)",
    ),
    "unknown encryption": ({"BORG_ENCRYPTION": "aes"}, f"BORG_ENCRYPTION: 'aes' is not one of {ENCRYPTIONS}"),
    "no passphrase at all": (
        {"BORG_PASSPHRASE_FILE": ""},
        "BORG_PASSPHRASE_FILE: no passphrase: set BORG_PASSPHRASE_FILE (a Docker secret) or BORG_PASSCOMMAND",
    ),
    "passphrase file and passcommand": (
        {"BORG_PASSCOMMAND": "cat /run/secrets/p"},
        "BORG_PASSPHRASE_FILE: set only one of BORG_PASSPHRASE_FILE, BORG_PASSCOMMAND",
    ),
    "passcommand and passphrase": (
        {"BORG_PASSPHRASE_FILE": "", "BORG_PASSCOMMAND": "cat /p", "BORG_PASSPHRASE": "s3cret"},
        "BORG_PASSCOMMAND: set only one of BORG_PASSCOMMAND, BORG_PASSPHRASE",
    ),
    "empty passphrase file": (
        {"BORG_PASSPHRASE_FILE": "{tmp}/blank"},
        "BORG_PASSPHRASE_FILE: {tmp}/blank is empty",
    ),
    "missing passphrase file": (
        {"BORG_PASSPHRASE_FILE": "{tmp}/absent"},
        "BORG_PASSPHRASE_FILE: cannot read {tmp}/absent: No such file or directory",
    ),
    "malformed repository": (
        {"BORG_REPO": "borg@srv:main"},
        "BORG_REPO: is not ssh://[user@]host[:port]/path",
    ),
    "repository without path": (
        {"BORG_REPO": "ssh://borg@srv:22"},
        "BORG_REPO: is not ssh://[user@]host[:port]/path",
    ),
    "repository and repository file": (
        {"BORG_REPO": "ssh://borg@a:22/./main", "BORG_REPO_FILE": "{tmp}/repo"},
        "BORG_REPO: both BORG_REPO and BORG_REPO_FILE are set; set only one",
    ),
    "missing repository file": (
        {"BORG_REPO_FILE": "{tmp}/absent"},
        "BORG_REPO_FILE: cannot read {tmp}/absent: No such file or directory",
    ),
    "archive name with hostname": (
        {"ARCHIVE_NAME": "{hostname}-{now}"},
        "ARCHIVE_NAME: {hostname} changes whenever the container is recreated; use {client}",
    ),
    "archive name without placeholder": (
        {"ARCHIVE_NAME": "nightly"},
        "ARCHIVE_NAME: 'nightly' has no placeholder, so every run would reuse one name; add {utcnow}",
    ),
    "exclude caches maybe": (
        {"EXCLUDE_CACHES": "maybe"},
        f"EXCLUDE_CACHES: 'maybe' is not a boolean; use one of {BOOLEANS}",
    ),
    "jitter soon": (
        {"BACKUP_JITTER": "soon"},
        "BACKUP_JITTER: 'soon' is not a duration; use a number with s, m, h, d or w (e.g. 26h)",
    ),
    "client name with capitals and space": (
        {"CLIENT_NAME": "Web Server"},
        "CLIENT_NAME: 'Web Server' does not match ^[a-z0-9][a-z0-9_-]{0,31}$",
    ),
    "client name too long": (
        {"CLIENT_NAME": "w" * 33},
        f"CLIENT_NAME: '{'w' * 33}' does not match ^[a-z0-9][a-z0-9_-]{{0,31}}$",
    ),
    "missing ssh key": (
        {"BORG_SSH_KEY_FILE": "{tmp}/absent"},
        "BORG_SSH_KEY_FILE: {tmp}/absent does not exist; mount the server's pairing export or set BORG_SSH_KEY_FILE",
    ),
    "report URL not http": (
        {"REPORT_URLS": "https://ok.example/hook ftp://user:pw@files.example/x"},
        "REPORT_URLS: 'ftp://***@files.example/…' is not an http:// or https:// URL with a host",
    ),
    "healthchecks URL with a token": (
        {"HEALTHCHECKS_URL": "htps://hc-ping.com/5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278"},
        "HEALTHCHECKS_URL: 'htps://hc-ping.com/…' is not an http:// or https:// URL with a host",
    ),
    "report timeout zero": ({"REPORT_TIMEOUT": "0"}, "REPORT_TIMEOUT: 0s is out of range 1s..10m"),
    "unknown log level": ({"LOG_LEVEL": "loud"}, f"LOG_LEVEL: 'loud' is not one of {', '.join(LOG_LEVELS)}"),
    "known hosts is a directory": (
        {"BORG_KNOWN_HOSTS_FILE": "{tmp}"},
        "BORG_KNOWN_HOSTS_FILE: {tmp} does not exist; mount the server's pairing export or set BORG_KNOWN_HOSTS_FILE",
    ),
}


@pytest.mark.parametrize(("settings", "problem"), BAD_CONFIGURATIONS.values(), ids=BAD_CONFIGURATIONS)
def test_a_bad_setting_is_reported_as_one_line_naming_it(settings, problem, pairing, passphrase_file, tmp_path):
    (tmp_path / "blank").write_text(" \n")
    (tmp_path / "repo").write_text("ssh://borg@b:22/./main\n")
    environ = {"BORG_PASSPHRASE_FILE": str(passphrase_file)}
    environ |= {name: value.replace("{tmp}", str(tmp_path)) for name, value in settings.items()}

    assert problems_of(environ, pairing) == [problem.replace("{tmp}", str(tmp_path))]


def test_an_invalid_name_in_the_pairing_export_is_reported_as_client_name(pairing, passphrase_file):
    (pairing / "client_name").write_text("Backup.Example\n")

    assert problems_of({"BORG_PASSPHRASE_FILE": str(passphrase_file)}, pairing) == [
        "CLIENT_NAME: 'Backup.Example' does not match ^[a-z0-9][a-z0-9_-]{0,31}$"
    ]


def test_no_repository_and_no_pairing_export_says_what_to_set(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()

    assert problems_of({"BORG_PASSCOMMAND": "cat /p"}, empty) == [
        f"BORG_REPO: not set, and no pairing export in {empty}; set e.g. ssh://borg@backup-server:22/./main",
        f"CLIENT_NAME: {NO_NAME}",
        f"BORG_SSH_KEY_FILE: {empty}/id_ed25519 does not exist; mount the server's pairing export or set "
        "BORG_SSH_KEY_FILE",
        f"BORG_KNOWN_HOSTS_FILE: {empty}/known_hosts does not exist; mount the server's pairing export or set "
        "BORG_KNOWN_HOSTS_FILE",
    ]


def test_every_problem_is_reported_together_in_one_error(pairing, tmp_path):
    environ = {
        "CLIENT_NAME": "Web",
        "BORG_REPO": "borg@srv:main",
        "BORG_SSH_KEY_FILE": str(tmp_path / "absent"),
        "BORG_COMPRESSION": "brotli",
        "BACKUP_JITTER": "soon",
        "BORG_ENCRYPTION": "aes",
        "EXCLUDE_CACHES": "maybe",
        "ARCHIVE_NAME": "nightly",
        "BACKUP_CRON": "61 * * * *",
    }

    with pytest.raises(ConfigError) as error:
        load(environ, pairing=pairing)

    expected = [
        "CLIENT_NAME: 'Web' does not match ^[a-z0-9][a-z0-9_-]{0,31}$",
        "BORG_REPO: is not ssh://[user@]host[:port]/path",
        f"BORG_SSH_KEY_FILE: {tmp_path}/absent does not exist; mount the server's pairing export or set "
        "BORG_SSH_KEY_FILE",
        "BORG_PASSPHRASE_FILE: no passphrase: set BORG_PASSPHRASE_FILE (a Docker secret) or BORG_PASSCOMMAND",
        "BORG_COMPRESSION: 'brotli' is not a borg compression (e.g. lz4, zstd,3, auto,zstd,6)",
        "BACKUP_JITTER: 'soon' is not a duration; use a number with s, m, h, d or w (e.g. 26h)",
        f"BORG_ENCRYPTION: 'aes' is not one of {ENCRYPTIONS}",
        f"EXCLUDE_CACHES: 'maybe' is not a boolean; use one of {BOOLEANS}",
        "ARCHIVE_NAME: 'nightly' has no placeholder, so every run would reuse one name; add {utcnow}",
        "BACKUP_CRON: '61 * * * *' is not a cron expression: Bad minute",
    ]
    assert error.value.problems == expected
    assert str(error.value) == "\n".join(expected)


@pytest.mark.parametrize(
    "compression", ["none", "lz4", "zstd", "zstd,22", "auto,zstd,6", "zlib,9", "lzma,0", "auto,lz4"]
)
def test_every_borg_compression_form_is_accepted(compression, pairing, passphrase_file):
    environ = {"BORG_PASSPHRASE_FILE": str(passphrase_file), "BORG_COMPRESSION": compression}

    assert load(environ, pairing=pairing).compression == compression


def test_the_log_level_is_info_unless_log_level_names_another_in_any_case(pairing, passphrase_file):
    environ = {"BORG_PASSPHRASE_FILE": str(passphrase_file)}

    assert load(environ, pairing=pairing).log_level == "INFO"
    assert load(environ | {"LOG_LEVEL": "debug"}, pairing=pairing).log_level == "DEBUG"


def test_a_prune_only_service_needs_no_backup_key_the_admin_key_is_its_key(tmp_path, passphrase_file):
    admin_key, known_hosts = tmp_path / "admin_key", tmp_path / "known_hosts"
    admin_key.write_text("key")
    known_hosts.write_text("srv ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID26CUVU\n")
    environ = {"BORG_PASSPHRASE_FILE": str(passphrase_file), "BORG_REPO": "ssh://borg@srv:22/./main",
               "BORG_KNOWN_HOSTS_FILE": str(known_hosts), "CLIENT_NAME": "web", "KEEP_DAILY": "7",
               "BORG_ADMIN_SSH_KEY_FILE": str(admin_key)}  # fmt: skip

    config = load(environ, pairing=tmp_path / "no-pairing")

    assert config.ssh_key == config.retention.admin_key == admin_key
    assert config.prune_only and retention.refusal(config) is None


def test_coverage_scope_is_the_host_by_default_or_project_or_a_label_and_ignore_is_a_list_of_patterns(
    pairing, passphrase_file, monkeypatch, tmp_path
):
    socket = tmp_path / "docker.sock"
    socket.touch()
    monkeypatch.setattr("borg_client.config.DOCKER_SOCKET", str(socket))
    base = {"BORG_PASSPHRASE_FILE": str(passphrase_file)}

    assert (load(base, pairing=pairing).coverage_scope, load(base, pairing=pairing).coverage_ignore) == ("host", ())
    for scope in ("project", "host", "com.docker.compose.project=shop", "tier"):
        assert load({**base, "COVERAGE_SCOPE": scope}, pairing=pairing).coverage_scope == scope
    ignore = load({**base, "COVERAGE_IGNORE": "*_cache, /srv/tmp/*\ntraefik"}, pairing=pairing).coverage_ignore
    assert ignore == ("*_cache", "/srv/tmp/*", "traefik")
    assert problems_of({**base, "COVERAGE_SCOPE": "my project"}, pairing) == [
        "COVERAGE_SCOPE: 'my project' is not host, project or a label (key or key=value)"
    ]
    assert problems_of({**base, "COVERAGE_IGNORE": " ".join(["x"] * 101)}, pairing) == [
        "COVERAGE_IGNORE: has 101 patterns; the limit is 100"
    ]


def test_coverage_settings_need_the_docker_socket(pairing, passphrase_file, monkeypatch, tmp_path):
    monkeypatch.setattr("borg_client.config.DOCKER_SOCKET", str(tmp_path / "none.sock"))
    environ = {"BORG_PASSPHRASE_FILE": str(passphrase_file), "COVERAGE_SCOPE": "project", "COVERAGE_IGNORE": "x"}

    assert problems_of(environ, pairing) == [
        f"COVERAGE_SCOPE: needs the Docker socket: mount {tmp_path / 'none.sock'} into the sidecar",
        f"COVERAGE_IGNORE: needs the Docker socket: mount {tmp_path / 'none.sock'} into the sidecar",
    ]
