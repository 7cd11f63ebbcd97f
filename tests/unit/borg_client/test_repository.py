"""Tests for `borg-client init` and the key export: a new repository only when asked, no key export overwritten."""

import pytest

from borg_client import history, repository
from borg_client.paths import Paths
from tests.unit.borg_client.samples import create_json

BORG = ["borg", "--log-json", "--lock-wait", "600"]


def exports(paths: Paths) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(paths.key_export.iterdir())}


def test_init_on_a_fresh_sidecar_initialises_and_exports_the_key(config, fake_borg):
    assert repository.initialise_explicitly(config, new_repository=False) == []

    key_export = config.paths.key_export
    assert fake_borg.commands == [
        [*BORG, "init", "--encryption", "keyfile-blake2"],
        [*BORG, "key", "export", config.repository, str(key_export / "web.key.new")],
        [*BORG, "key", "export", "--paper", config.repository, str(key_export / "web.key.txt.new")],
    ]
    assert exports(config.paths) == {"web.key": "BORG_KEY\n", "web.key.txt": "BORG_KEY\n"}


def test_init_after_backups_refuses_without_new_repository_and_touches_nothing(config, fake_borg):
    paths = config.paths
    history.record_backup(paths, create_json("web-1"))

    with pytest.raises(repository.RunFailed) as refused:
        repository.initialise_explicitly(config, new_repository=False)

    assert str(refused.value) == (
        f"this sidecar has backed up to {config.repository} before (its repository record "
        f"{paths.repository_record} shows it), so `init` would start a new, empty history. If the old "
        "repository is really lost, run `borg-client init --new-repository`"
    )
    assert fake_borg.commands == []
    assert history.read(paths).last_archive == "web-1"


def test_init_new_repository_keeps_the_old_record_and_key_export_aside(config, fake_borg):
    paths = config.paths
    history.record_backup(paths, create_json("web-1"))
    paths.key_export.mkdir()
    paths.key_file.write_text("OLD KEY\n")
    paths.paper_key_file.write_text("OLD PAPER\n")

    moved = repository.initialise_explicitly(config, new_repository=True)

    assert [command[4] for command in fake_borg.commands] == ["init", "key", "key"]
    assert [path.read_text() for path in moved[1:]] == ["OLD KEY\n", "OLD PAPER\n"]
    assert paths.key_file.read_text() == "BORG_KEY\n"
    assert history.read(paths) is None
    assert moved[0].name.startswith("repository.json.replaced-")


def test_a_failed_init_new_repository_sets_nothing_aside(config, fake_borg, lines):
    paths = config.paths
    history.record_backup(paths, create_json("web-1"))
    paths.key_export.mkdir()
    paths.key_file.write_text("OLD KEY\n")
    fake_borg.answer("init", 2, "", [lines.log("ERROR", "Repository already exists.", "Repository.AlreadyExists")])

    with pytest.raises(repository.RunFailed) as failed:
        repository.initialise_explicitly(config, new_repository=True)

    assert str(failed.value) == (
        "borg init failed; nothing was changed (exit 2): ERROR: Repository already exists. [Repository.AlreadyExists]"
    )
    assert exports(paths) == {"web.key": "OLD KEY\n"}
    assert history.read(paths).last_archive == "web-1"


def test_an_export_that_differs_keeps_the_old_key_aside(config, fake_borg):
    paths = config.paths
    paths.key_export.mkdir()
    paths.key_file.write_text("OLD KEY\n")
    paths.paper_key_file.write_text("BORG_KEY\n")  # the same as the new one: replaced in place

    repository.export_key(config)

    names = sorted(exports(paths))
    assert names[:2] == ["web.key", "web.key.replaced-" + names[1].split(".replaced-")[1]]
    assert names[2:] == ["web.key.txt"]
    assert exports(paths)[names[1]] == "OLD KEY\n" and paths.key_file.read_text() == "BORG_KEY\n"


def test_a_failed_export_leaves_the_old_key_export_as_it_was(config, fake_borg, lines):
    paths = config.paths
    paths.key_export.mkdir()
    paths.key_file.write_text("OLD KEY\n")
    fake_borg.answer("key", 2, "", [lines.log("ERROR", "Connection closed by remote host")])

    with pytest.raises(repository.RunFailed):
        repository.export_key(config)

    assert exports(paths) == {"web.key": "OLD KEY\n"}
