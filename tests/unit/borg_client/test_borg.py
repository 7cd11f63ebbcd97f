"""Tests for borg's command lines, environment and exit codes, and the reading of its --log-json output."""

import dataclasses
import json
import shlex
from pathlib import Path

import pytest

from borg_client import borg
from borg_client.borgcall import call_borg, explain
from borg_common import process
from borg_common.borglog import LOG_LIMIT

BORG = ["borg", "--log-json", "--lock-wait", "600"]  # every command logs as JSON and waits for the lock
CREATE_OPTIONS = [*BORG, "create", "--json", "--list", "--filter", "AME", "--show-rc"]


def test_create_argv_is_exactly_the_borg_create_command(config):
    argv = borg.create_argv(config, "web-2024-05-06T03:00:00", ["/backup/data", "/backup/db"])

    assert argv == [
        *CREATE_OPTIONS,
        "--compression",
        "zstd,3",
        "--checkpoint-interval",
        "600",
        "--exclude-caches",
        "::web-2024-05-06T03:00:00",
        "/backup/data",
        "/backup/db",
    ]


def test_create_argv_without_exclude_caches_leaves_the_option_out(config):
    config = dataclasses.replace(config, exclude_caches=False, compression="lz4")

    assert borg.create_argv(config, "a", ["/backup/data"]) == [
        *CREATE_OPTIONS,
        "--compression",
        "lz4",
        "--checkpoint-interval",
        "600",
        "::a",
        "/backup/data",
    ]


def test_init_argv_uses_the_configured_encryption(config):
    assert borg.init_argv(config) == [*BORG, "init", "--encryption", "keyfile-blake2"]


def test_every_borg_command_runs_with_log_json_and_a_lock_wait(config, tmp_path):
    built = [
        borg.create_argv(config, "a", ["/backup/x"]),
        borg.init_argv(config),
        borg.list_argv(),
        borg.check_argv(),
        borg.extract_argv("a", []),
        borg.mount_argv(None, tmp_path),
        borg.key_export_argv(config.repository, tmp_path / "k"),
        borg.command("info"),
    ]

    assert [argv[:5] for argv in built] == [
        [*BORG, command] for command in ("create", "init", "list", "check", "extract", "mount", "key", "info")
    ]


def test_call_borg_runs_exactly_the_built_argv(config, monkeypatch):
    commands = []

    def run(command, **options):
        commands.append(command)
        return process.Result(returncode=0, stdout="", tail=[])

    monkeypatch.setattr(process, "run", run)
    call_borg(config, borg.create_argv(config, "a", ["/backup/x"]))
    call_borg(config, borg.init_argv(config))
    call_borg(config, borg.list_argv(as_json=True), capture_json=True)

    assert commands == [borg.create_argv(config, "a", ["/backup/x"]), borg.init_argv(config), [*BORG, "list", "--json"]]
    assert [command.count("--log-json") for command in commands] == [1, 1, 1]


def ssh_options(environment: dict[str, str]) -> dict[str, str]:
    """Given borg's environment, return ssh's options that take a value (-i, -E, ...) from BORG_RSH."""
    words = shlex.split(environment["BORG_RSH"])
    return {word: value for word, value in zip(words, words[1:], strict=False) if word in ("-i", "-E")}


@pytest.mark.parametrize("mode", [0o444, 0o644])  # as Docker Swarm and Kubernetes mount secrets
def test_ssh_reads_a_key_others_may_read_from_a_private_copy_gone_after_the_call(config, monkeypatch, tmpfs, mode):
    config.ssh_key.chmod(mode)
    seen = {}

    def run(command, env, **options):
        key = Path(ssh_options(env)["-i"])
        seen.update(key=key, mode=key.stat().st_mode & 0o777, text=key.read_text())
        return process.Result(returncode=0, stdout="", tail=[])

    monkeypatch.setattr(process, "run", run)
    call_borg(config, borg.list_argv())

    assert (seen["key"].parent, seen["mode"], seen["text"]) == (tmpfs, 0o600, "key")
    assert list(tmpfs.iterdir()) == []


def test_ssh_reads_a_key_it_accepts_where_it_is_mounted(config, monkeypatch, tmpfs):
    keys = []

    def run(command, env, **options):
        keys.append(ssh_options(env)["-i"])
        return process.Result(returncode=0, stdout="", tail=[])

    monkeypatch.setattr(process, "run", run)
    call_borg(config, borg.list_argv())

    assert keys == [str(config.ssh_key)]


def test_what_ssh_says_reaches_the_log_the_tail_and_the_one_line_message(config, monkeypatch, caplog):
    said = "@@@@@@@\nPermissions 0644 for '/k' are too open.\nssh: Could not resolve hostname srv: Name unknown\n"
    closed = '{"type": "log_message", "levelname": "ERROR", "msgid": "ConnectionClosedWithHint", "message": "x"}'

    def run(command, env, render_line, **options):
        Path(ssh_options(env)["-E"]).write_text(said)  # ssh -E writes there, not to borg
        return process.Result(returncode=2, stdout="", tail=[render_line(closed)])

    monkeypatch.setattr(process, "run", run)
    call = call_borg(config, borg.list_argv())

    assert call.tail[-2:] == (
        "ssh: Permissions 0644 for '/k' are too open.",
        "ssh: Could not resolve hostname srv: Name unknown",
    )
    assert "ssh: Could not resolve hostname srv: Name unknown" in caplog.text
    assert explain(call, "borg list failed").startswith(
        "borg list failed (exit 2): ssh refused the private key: others may read it, and no private copy of it could "
        "be made in /dev/shm (see the warning before it in the log) (ssh: Permissions 0644 for '/k' are too open.)"
    )


def test_a_repository_borg_knows_elsewhere_says_how_to_accept_a_move_or_read_a_replica(config, monkeypatch, caplog):
    refused = '{"type": "log_message", "levelname": "ERROR", "msgid": "Cache.RepositoryAccessAborted", "message": "x"}'

    def run(command, render_line, **options):
        render_line(refused)
        return process.Result(returncode=62, stdout="", tail=[])

    monkeypatch.setattr(process, "run", run)
    call_borg(config, borg.list_argv())
    assert (
        "borg knew this repository at another address (its security record): if it moved on purpose (a promoted "
        "replica, a changed BORG_SERVER_NAME), remove the old address once: rm "
        "/var/lib/borg-client/security/*/location (docs/how-to/promote-a-replica.md); to read a replica's copy for a "
        "restore, set RESTORE_FROM_REPLICA=yes instead (docs/how-to/primary-lost.md)"
    ) in caplog.text
    caplog.clear()
    call_borg(dataclasses.replace(config, from_replica=True), borg.list_argv())
    assert "RESTORE_FROM_REPLICA" not in caplog.text


def test_list_argv_lists_archives_or_one_archive_with_the_options_asked(config):
    assert borg.list_argv() == [*BORG, "list"]
    assert borg.list_argv("web-1", short=True, as_json=True, last=3) == [
        *BORG, "list", "--short", "--json", "--last", "3", "::web-1"
    ]  # fmt: skip


def test_check_argv_adds_only_the_checks_asked():
    assert borg.check_argv() == [*BORG, "check"]
    assert borg.check_argv(repository_only=True, verify_data=True) == [
        *BORG, "check", "--repository-only", "--verify-data"
    ]  # fmt: skip


def test_mount_argv_mounts_one_archive_or_all_in_the_foreground(tmp_path):
    assert borg.mount_argv("web-1", tmp_path) == [*BORG, "mount", "--foreground", "::web-1", str(tmp_path)]
    assert borg.mount_argv(None, tmp_path) == [*BORG, "mount", "--foreground", "::", str(tmp_path)]


def test_key_export_argv_adds_paper_only_when_asked(tmp_path, repo_url):
    assert borg.key_export_argv(repo_url, tmp_path / "k") == [*BORG, "key", "export", repo_url, str(tmp_path / "k")]
    assert borg.key_export_argv(repo_url, tmp_path / "k", paper=True) == [
        *BORG,
        "key",
        "export",
        "--paper",
        repo_url,
        str(tmp_path / "k"),
    ]


def test_archive_stats_reads_name_and_sizes_from_borg_creates_json():
    stdout = json.dumps({"archive": {"name": "web-1", "stats": {
        "original_size": 10, "compressed_size": 7, "deduplicated_size": 5, "nfiles": 2, "other": 1}},
        "cache": {"stats": {"unique_csize": 40, "unique_size": 60}}})  # fmt: skip

    assert borg.archive_stats(stdout) == (
        "web-1",
        {"original_size": 10, "compressed_size": 7, "deduplicated_size": 5, "nfiles": 2, "repository_size": 40},
    )


def test_archive_stats_without_borgs_cache_figures_has_no_repository_size():
    stdout = json.dumps({"archive": {"name": "web-1", "stats": {"original_size": 10}}})

    assert borg.archive_stats(stdout)[1]["repository_size"] is None


@pytest.mark.parametrize("stdout", ["", "not json", "[]", '{"repository": {}}'])
def test_archive_stats_of_output_without_an_archive_is_nothing(stdout):
    assert borg.archive_stats(stdout) == (None, {})


@pytest.mark.parametrize(
    ("returncode", "status"),
    [
        (0, "success"),
        (1, "warning"),
        (100, "warning"),
        (107, "warning"),
        (127, "warning"),
        (2, "failure"),
        (3, "failure"),
        (13, "failure"),
        (99, "failure"),
        (128, "failure"),
        (143, "failure"),
        (255, "failure"),
        (-9, "failure"),
    ],
)
def test_outcome_reads_borgs_modern_exit_codes(returncode, status):
    assert borg.outcome(returncode).status == status


def test_outcome_says_what_each_status_means():
    assert borg.outcome(0) == borg.Outcome("success", "borg finished without problems")
    assert borg.outcome(105) == borg.Outcome(
        "warning", "borg finished with warnings (exit 105); some files may be missing"
    )
    assert borg.outcome(2) == borg.Outcome("failure", "borg failed (exit 2)")


def log_message(level: str, message: str, msgid: str | None = None) -> str:
    entry = {"type": "log_message", "time": 1715000000.0, "levelname": level, "name": "borg.archiver"}
    return json.dumps(entry | {"message": message} | ({"msgid": msgid} if msgid else {}))


def test_log_json_renders_a_log_message_as_level_and_message():
    log = borg.LogJson()

    assert log.render(log_message("WARNING", "/backup/data/x: stat: Permission denied")) == (
        "WARNING: /backup/data/x: stat: Permission denied"
    )
    assert log.render(log_message("INFO", "Remote: Starting repository check")) == (
        "INFO: Remote: Starting repository check"
    )


def test_log_json_keeps_the_message_ids_in_order():
    log = borg.LogJson()

    log.render(log_message("WARNING", "a", "FileChangedWarning"))
    log.render(log_message("INFO", "b"))
    log.render(log_message("ERROR", "c", "Repository.DoesNotExist"))

    assert log.msgids == ["FileChangedWarning", "Repository.DoesNotExist"]


def test_log_json_keeps_an_expected_error_but_does_not_log_it():
    log = borg.LogJson(expected=frozenset({"KeyfileNotFoundError"}))

    assert log.render(log_message("ERROR", "No key file for repository", "KeyfileNotFoundError")) is None
    assert log.render(log_message("ERROR", "c", "Repository.DoesNotExist")) == "ERROR: c [Repository.DoesNotExist]"
    assert log.msgids == ["KeyfileNotFoundError", "Repository.DoesNotExist"]


def test_log_json_renders_a_file_status_as_status_and_path_and_counts_it():
    log = borg.LogJson()

    assert log.render(json.dumps({"type": "file_status", "status": "A", "path": "/backup/data/new"})) == (
        "A /backup/data/new"
    )
    assert log.render(json.dumps({"type": "file_status", "status": "M", "path": "/backup/data/changed"})) == (
        "M /backup/data/changed"
    )
    assert log.files == 2


def test_log_json_with_a_sink_sends_the_file_list_there_and_bounds_what_it_renders():
    sunk = []
    log = borg.LogJson(sink=sunk.append)
    files = [json.dumps({"type": "file_status", "status": "AM"[n % 2], "path": f"/backup/data/f{n}"})
             for n in range(3000)]  # fmt: skip
    warnings = [log_message("WARNING", f"/backup/data/w{n}: stat: Permission denied", "BackupError")
                for n in range(900)]  # fmt: skip
    errors = [log_message("ERROR", "Connection closed by remote host", "ConnectionClosed")] * 3

    rendered = [text for line in [*files, *warnings, *errors] if (text := log.render(line)) is not None]

    assert len(rendered) == LOG_LIMIT + 3
    assert rendered[-1] == "ERROR: Connection closed by remote host [ConnectionClosed]"
    assert sunk[:2] == ["A /backup/data/f0", "M /backup/data/f1"] and len(sunk) == 3000 + 900 - LOG_LIMIT
    assert sunk[-1] == "WARNING: /backup/data/w899: stat: Permission denied"
    assert len(log.msgids) == 903
    assert log.summary("borg create", "/state/logs/web.log") == (
        "borg create listed 3000 files (A 1500, M 1500); 400 more of borg's lines: every one is in the day log "
        "/state/logs/web.log"
    )


@pytest.mark.parametrize(
    "entry",
    [
        {"type": "archive_progress", "original_size": 10, "nfiles": 1, "path": "/backup/data/x"},
        {"type": "progress_message", "operation": 1, "msgid": "cache.sync", "message": "Syncing"},
        {"type": "progress_percent", "operation": 2, "current": 5, "total": 10, "message": "50%"},
    ],
)
def test_log_json_drops_progress_noise(entry):
    log = borg.LogJson()

    assert log.render(json.dumps(entry)) is None
    assert (log.msgids, log.files) == ([], 0)


@pytest.mark.parametrize("line", ["Remote: ssh: connect to host srv port 22: Connection refused", "", "42", "[1, 2]"])
def test_log_json_passes_anything_that_is_not_a_json_object_through(line):
    assert borg.LogJson().render(line) == line


def test_borg_environment_drops_inherited_borg_variables_and_keeps_the_rest(config, repo_url):
    base = {"PATH": "/usr/bin", "BORG_PASSPHRASE": "leaked", "BORG_REPO": "/elsewhere", "BORG_RSH": "ssh -v"}

    environment = borg.borg_environment(config, base)

    assert environment["PATH"] == "/usr/bin"
    assert "BORG_PASSPHRASE" not in environment
    assert environment["BORG_REPO"] == repo_url
    assert environment["BORG_RSH"] != "ssh -v"


def test_borg_environment_passes_the_borg_variables_a_user_may_set(config):
    base = {"BORG_FILES_CACHE_TTL": "60", "BORG_DELETE_I_KNOW_WHAT_I_AM_DOING": "YES", "BORG_BASE_DIR": "/x"}

    environment = borg.borg_environment(config, base)

    assert (environment["BORG_FILES_CACHE_TTL"], environment["BORG_DELETE_I_KNOW_WHAT_I_AM_DOING"]) == ("60", "YES")
    assert "BORG_BASE_DIR" not in environment


def test_borg_environment_pins_the_server_host_key(config, pairing):
    environment = borg.borg_environment(config, {})

    assert shlex.split(environment["BORG_RSH"]) == [
        "ssh",
        "-i",
        str(pairing / "id_ed25519"),
        "-o",
        f"UserKnownHostsFile={pairing / 'known_hosts'}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=15",
        "-o",
        "ServerAliveInterval=10",
        "-o",
        "ServerAliveCountMax=30",
    ]
    assert all("StrictHostKeyChecking=no" not in value for value in environment.values())


def test_borg_environment_keeps_everything_borg_stores_in_the_state_volume(config, repo_url):
    environment = borg.borg_environment(config, {})
    state = config.state

    assert {name: environment[name] for name in environment if name != "BORG_RSH"} == {
        "BORG_REPO": repo_url,
        "BORG_EXIT_CODES": "modern",
        "BORG_HOST_ID": (state / "host_id").read_text().strip(),
        "BORG_KEYS_DIR": str(state / "keys"),
        "BORG_SECURITY_DIR": str(state / "security"),
        "BORG_CACHE_DIR": str(state / "cache"),
        "BORG_CONFIG_DIR": str(state / "config"),
        "BORG_RELOCATED_REPO_ACCESS_IS_OK": "no",
        "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "no",
        "BORG_DISPLAY_PASSPHRASE": "no",
        "LANG": "C.UTF-8",
        "BORG_PASSCOMMAND": f"cat {config.passphrase_file}",
    }


def test_restoring_from_a_replica_keeps_borgs_record_of_it_apart_from_the_primarys(config):
    environment = borg.borg_environment(dataclasses.replace(config, from_replica=True), {})
    state = config.state

    assert environment["BORG_SECURITY_DIR"] == str(state / "replica" / "security")
    assert environment["BORG_CACHE_DIR"] == str(state / "replica" / "cache")
    assert environment["BORG_KEYS_DIR"] == str(state / "keys")  # the same key reads the copy
    assert environment["BORG_RELOCATED_REPO_ACCESS_IS_OK"] == "yes"
    assert environment["BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK"] == "no"


def test_borg_environment_reads_a_passphrase_file_with_a_passcommand_not_a_passphrase(config, passphrase_file):
    environment = borg.borg_environment(config, {"BORG_PASSPHRASE": "inherited"})

    assert environment["BORG_PASSCOMMAND"] == shlex.join(["cat", str(passphrase_file)])
    assert "BORG_PASSPHRASE" not in environment
    assert "correct horse" not in json.dumps(environment)


def test_borg_environment_quotes_a_passphrase_file_path_with_spaces(config, tmp_path):
    config = dataclasses.replace(config, passphrase_file=tmp_path / "my secrets" / "pass")

    assert shlex.split(borg.borg_environment(config, {})["BORG_PASSCOMMAND"]) == [
        "cat",
        str(tmp_path / "my secrets" / "pass"),
    ]


def test_borg_environment_passes_a_configured_passcommand_as_it_is(config):
    config = dataclasses.replace(config, passphrase_file=None, passcommand="vault read -field=p secret/borg")

    environment = borg.borg_environment(config, {})

    assert environment["BORG_PASSCOMMAND"] == "vault read -field=p secret/borg"
    assert "BORG_PASSPHRASE" not in environment


def test_borg_environment_passes_a_configured_passphrase(config):
    config = dataclasses.replace(config, passphrase_file=None, passphrase="s3cret")

    environment = borg.borg_environment(config, {})

    assert environment["BORG_PASSPHRASE"] == "s3cret"
    assert "BORG_PASSCOMMAND" not in environment


def test_host_id_is_made_once_and_kept_in_the_state_volume(tmp_path):
    first = borg.host_id(tmp_path / "host_id", "web")

    assert first.startswith("borg-appliance-web@")
    assert len(first) == len("borg-appliance-web@") + 32
    assert (tmp_path / "host_id").read_text() == first + "\n"
    assert borg.host_id(tmp_path / "host_id", "web") == first
    assert borg.host_id(tmp_path / "host_id", "other") == first


def test_host_id_differs_between_state_volumes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    assert borg.host_id(tmp_path / "a" / "host_id", "web") != borg.host_id(tmp_path / "b" / "host_id", "web")


def test_borg_environment_uses_the_same_host_id_on_every_call(config):
    assert borg.borg_environment(config, {})["BORG_HOST_ID"] == borg.borg_environment(config, {})["BORG_HOST_ID"]
