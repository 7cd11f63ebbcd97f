"""Tests for what the command line prints: check-config without secrets, init refusing or saying what it did."""

import dataclasses
import json
import logging
from types import SimpleNamespace

from borg_client import __main__ as cli
from borg_client import history
from borg_client.borgcall import call_borg
from borg_common.notify import Notify
from tests.unit.borg_client.samples import create_json


def test_check_config_shows_report_urls_as_scheme_and_host_only(config, capsys):
    config = dataclasses.replace(
        config,
        report_urls=("http://u:p@host:8080/secret-token", "https://a.example/hook?sig=x"),
        healthchecks_url="https://hc.example/ping/uuid-secret",
        passcommand="cat /run/secrets/p",
    )

    assert cli.command_check_config(config, None) == 0

    out = capsys.readouterr().out
    shown = json.loads(out)
    assert shown["report_urls"] == "('http://host:8080/…', 'https://a.example/…')"
    assert shown["healthchecks_url"] == "https://hc.example/…"
    assert shown["passcommand"] == "***"
    assert not any(secret in out for secret in ("secret", "u:p", "sig", "ping", "/run/secrets/p"))


def test_check_config_shows_notify_urls_without_their_tokens(config, capsys):
    token = "123456:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"
    urls = (f"tgram://{token}/987654", "ntfys://user:pw-secret@ntfy.example.org/topic-secret")
    config = dataclasses.replace(config, notify=Notify(urls, frozenset({"failure", "alert"})))

    assert cli.command_check_config(config, None) == 0

    out = capsys.readouterr().out
    assert json.loads(out)["notify"] == {
        "urls": ["tgram://…", "ntfys://ntfy.example.org/…"],
        "on": ["alert", "failure"],
    }
    assert not any(secret in out for secret in (token, "pw-secret", "topic-secret", "987654"))


def test_check_config_never_prints_the_passphrase_files_content(config, capsys):
    cli.command_check_config(config, None)
    assert "correct horse" not in capsys.readouterr().out


def test_check_config_shows_where_a_text_setting_was_read_from_never_the_files_text(config, capsys, monkeypatch):
    monkeypatch.setenv("BACKUP_STOP_LABEL_FILE", "/run/secrets/borg_passphrase")  # a mistake: any text is a label
    config = dataclasses.replace(config, stop_label="Hunter2!Secret-passphrase")

    cli.command_check_config(config, None)

    out = capsys.readouterr().out
    assert json.loads(out)["stop_label"] == "(read from BACKUP_STOP_LABEL_FILE)"
    assert "Hunter2" not in out


def test_the_passphrase_files_content_is_masked_in_logged_borg_output(config, caplog):
    with caplog.at_level(logging.DEBUG):
        call = call_borg(config, ["echo", "oops: correct horse battery staple"])

    assert call.tail == ("oops: ***",)
    assert "correct horse" not in caplog.text


def test_init_after_backups_without_new_repository_exits_2_and_says_how(config, fake_borg, capsys):
    history.record_backup(config.paths, create_json("web-1"))

    assert cli.command_init(config, SimpleNamespace(new_repository=False)) == 2

    error = capsys.readouterr().err
    assert error.startswith("borg-client: this sidecar has backed up to ssh://borg@srv:22/./main before")
    assert error.rstrip().endswith("run `borg-client init --new-repository`")
    assert fake_borg.commands == []


def test_init_new_repository_says_where_the_old_record_and_key_export_are(config, fake_borg, capsys):
    paths = config.paths
    history.record_backup(paths, create_json("web-1"))

    assert cli.command_init(config, SimpleNamespace(new_repository=True)) == 0

    out = capsys.readouterr().out
    assert out.startswith(
        f"initialised a new repository ssh://borg@srv:22/./main; the old record and key export are kept as "
        f"{paths.state}/repository.json.replaced-"
    )


def test_init_is_a_command_with_a_new_repository_flag():
    arguments = cli.parser().parse_args(["init", "--new-repository"])
    assert (arguments.handler, arguments.new_repository) == (cli.command_init, True)
    assert cli.parser().parse_args(["init"]).new_repository is False
