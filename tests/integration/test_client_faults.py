"""Sidecar faults: bad settings, a wrong passphrase, an unreachable or impersonated server; restore and mount."""

from __future__ import annotations

import os

import pytest

from tests.harness.containers import CLIENT_IMAGE, Sandbox, docker, health, wait_until
from tests.harness.stack import client_command, fill_volume, make_client, start_server
from tests.harness.tables import run_table

BAD_SETTINGS = {
    "bad cron": ({"BACKUP_CRON": "every day"}, "BACKUP_CRON"),
    "unknown compression": ({"BORG_COMPRESSION": "zip"}, "BORG_COMPRESSION"),
    "unknown encryption": ({"BORG_ENCRYPTION": "rot13"}, "BORG_ENCRYPTION"),
    "no passphrase": ({"BORG_PASSPHRASE_FILE": ""}, "BORG_PASSPHRASE_FILE: no passphrase"),
    "two passphrase sources": ({"BORG_PASSCOMMAND": "cat /etc/hostname"}, "BORG_PASSPHRASE_FILE: set only one"),
    "missing passphrase file": ({"BORG_PASSPHRASE_FILE": "/run/secrets/nope"}, "BORG_PASSPHRASE_FILE"),
    "X and X_FILE": ({"BORG_REPO": "ssh://borg@h:22/./main", "BORG_REPO_FILE": "/etc/hostname"}, "BORG_REPO"),
    "malformed repository": ({"BORG_REPO": "/local/path"}, "BORG_REPO"),
    "archive name with hostname": ({"ARCHIVE_NAME": "{hostname}-{now}"}, "ARCHIVE_NAME"),
    "archive name without placeholder": ({"ARCHIVE_NAME": "fixed"}, "ARCHIVE_NAME"),
    "bad boolean": ({"EXCLUDE_CACHES": "maybe"}, "EXCLUDE_CACHES"),
    "bad jitter": ({"BACKUP_JITTER": "soon"}, "BACKUP_JITTER"),
    "bad client name": ({"CLIENT_NAME": "Web!"}, "CLIENT_NAME"),
    "missing ssh key": ({"BORG_SSH_KEY_FILE": "/nope"}, "BORG_SSH_KEY_FILE"),
    "bad report URL": ({"REPORT_URLS": "ftp://example.org/x"}, "REPORT_URLS"),
    "unknown time zone": ({"TZ": "Mars/Olympus"}, "TZ"),
    "stop label without socket": ({"BACKUP_STOP_LABEL": "backup.stop"}, "BACKUP_STOP_LABEL"),
    "dump label without socket": ({"BACKUP_DUMP_LABEL": "backup.dump"}, "BACKUP_DUMP_LABEL: needs the Docker socket"),
    "misspelled report URLs": (
        {"REPORT_URL": "http://receiver/hook"},
        "REPORT_URL: is not a setting of the sidecar; did you mean REPORT_URLS?",
    ),
    "misspelled keep": ({"KEEP_DAILY": "7", "KEEP_MONTLY": "6"}, "KEEP_MONTLY: is not a setting of the sidecar; did"),
    "borg variable the sidecar sets": ({"BORG_CACHE_DIR": "/tmp/cache"}, "BORG_CACHE_DIR: is set by the sidecar"),
}


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    sandbox = Sandbox()
    try:
        server = start_server(sandbox, ["web"])
        web = make_client(sandbox, server, "web", tmp_path_factory.mktemp("faults"))
        fill_volume(sandbox, web.data, "echo one > /data/file")
        yield sandbox, server, web
    finally:
        sandbox.cleanup()


@pytest.fixture(scope="module")
def refusals(paired, tmp_path_factory):
    """check-config with every bad setting, one after another, in one sidecar container."""
    sandbox, _server, web = paired
    cases = [{"id": case, "set": env} for case, (env, _) in BAD_SETTINGS.items()]
    directory = tmp_path_factory.mktemp("bad")
    return run_table(sandbox, CLIENT_IMAGE, web.options(), cases, directory, [], ["borg-client", "check-config"])


@pytest.mark.parametrize("case", BAD_SETTINGS)
def test_a_bad_setting_is_refused_naming_it(refusals, case):
    _env, setting = BAD_SETTINGS[case]
    outcome = refusals.outcomes[case]
    assert outcome["rc"] == 2, outcome
    problems = [line.strip() for line in outcome["stderr"].splitlines() if line.startswith("  ")]
    assert any(problem.startswith(setting) for problem in problems), outcome["stderr"]
    assert "Traceback" not in outcome["stderr"]


def test_an_empty_backup_directory_is_refused_unless_allowed(sandbox, tmp_path):
    server = start_server(sandbox, ["web"])
    web = make_client(sandbox, server, "web", tmp_path)
    empty = client_command(sandbox, web, ["run"])
    assert empty.returncode == 2 and "/backup/data is empty" in empty.stderr
    allowed = client_command(sandbox, web, ["run"], env={"BACKUP_ALLOW_EMPTY": "yes"})
    assert allowed.returncode == 0, allowed.stderr
    plain = sandbox.run("plain", CLIENT_IMAGE, [*web.options({"BACKUP_ALLOW_EMPTY": "yes"}), "--entrypoint", "sh"],
                        ["-c", "mkdir /backup/plain && borg-client run"], detach=False, check=False)  # fmt: skip
    assert plain.returncode == 2
    assert "/backup/plain is not a mount point" in plain.stderr


def test_a_wrong_passphrase_fails_clearly_and_initialises_nothing(paired):
    sandbox, server, web = paired
    assert client_command(sandbox, web, ["run"]).returncode in (0, 2)
    config_before = server.exec("cat", "/srv/borg/web/main/config").stdout
    wrong = web.passphrase_file.with_name("wrong")
    wrong.write_text("not the passphrase\n")
    result = client_command(sandbox, web, ["run"], env={"BORG_PASSPHRASE_FILE": "/run/secrets/wrong"},
                            extra=["-v", f"{wrong}:/run/secrets/wrong:ro"])  # fmt: skip
    assert result.returncode == 2
    assert "borg create failed (exit 52): the passphrase does not open the repository key; BORG_PASSPHRASE_FILE " \
           "(or BORG_PASSCOMMAND, BORG_PASSPHRASE) must give the passphrase the repository was initialised with " \
           "(borg: passphrase supplied in BORG_PASSPHRASE, by BORG_PASSCOMMAND or via BORG_PASSPHRASE_FD is " \
           "incorrect. [PassphraseWrong])" in result.stderr, result.stderr  # fmt: skip
    assert "initialising" not in result.stderr
    assert server.exec("cat", "/srv/borg/web/main/config").stdout == config_before


def test_an_unreachable_server_fails_clearly_and_initialises_nothing(paired):
    sandbox, server, web = paired
    docker("stop", server.container)
    try:
        result = client_command(sandbox, web, ["run"])
    finally:
        docker("start", server.container)
        wait_until(lambda: health(server.container) == "healthy", 60, "the server to be back")
    assert result.returncode == 2
    assert f"cannot reach the backup server {server.container} on port 22" in result.stderr
    assert "initialising" not in result.stderr


def test_an_impersonated_server_gets_no_borg_session(paired, tmp_path):
    sandbox, server, web = paired
    impostor = tmp_path / "known_hosts"
    other_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMMGMDr32o+fZxuauSbaUuQBkW91mKBRRZDT2daWDXcK"
    impostor.write_text(f"{server.container} {other_key}\n")
    sessions_before = server.exec("cat", "/var/lib/borg-server/audit/sessions.jsonl").stdout
    result = client_command(
        sandbox, web, ["run"], env={"BORG_KNOWN_HOSTS_FILE": "/pins/known_hosts"}, extra=["-v", f"{tmp_path}:/pins:ro"]
    )
    assert result.returncode == 2
    assert "not the one pinned" in result.stderr and "no backup was sent" in result.stderr
    # ssh refused the server before any session (borg does not always pass on ssh's own message)
    assert server.exec("cat", "/var/lib/borg-server/audit/sessions.jsonl").stdout == sessions_before
    assert "Accepted publickey" not in docker("logs", "--since", "30s", server.container).stderr


def test_restore_keeps_bytes_permissions_and_mtimes(world, sandbox):
    web = world.web
    archive = client_command(sandbox, web, ["list", "--short"]).stdout.split()[0]
    stat = "cd {} && find . -mindepth 1 | sort | xargs stat -c '%n %a %Y %s'"
    script = (
        f"borg-client restore {archive} --target /tmp/r >&2 && {stat.format('/tmp/r/backup/data')} && echo --- && "
        f"{stat.format('/backup/data')} && cmp /tmp/r/backup/data/a.bin /backup/data/a.bin"
    )
    result = sandbox.run("restore", CLIENT_IMAGE, [*web.options(), "--entrypoint", "sh"], ["-c", script],
                         detach=False, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    restored, original = result.stdout.split("---\n")
    assert restored == original and "./a.bin 640 981173106" in restored
    refused = client_command(sandbox, web, ["restore", archive, "--target", "/backup/data"])
    assert refused.returncode == 2 and "would write over the live volumes" in refused.stderr


@pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="this machine has no /dev/fuse for borg mount")
def test_mount_shows_the_archive_files(world, sandbox):
    web = world.web
    fuse = ["--device", "/dev/fuse", "--cap-add", "SYS_ADMIN", "--security-opt", "apparmor=unconfined"]
    sandbox.run("mounter", CLIENT_IMAGE, [*web.options(), *fuse], ["mount", "--target", "/mnt/borg"])
    found = wait_until(
        lambda: docker(
            "exec", sandbox.name("mounter"), "sh", "-c", "cat /mnt/borg/*/backup/data/file 2>/dev/null", check=False
        ).stdout,  # fmt: skip
        60,
        "the archive to appear under /mnt/borg",
    )
    assert found == "mounted\n"
