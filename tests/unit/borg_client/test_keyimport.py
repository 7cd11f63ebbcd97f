"""import-key and BORG_KEY_IMPORT_FILE: a key of this repository comes in; anything else is refused, nothing changed."""

import dataclasses
from pathlib import Path

import pytest

from borg_client import keyimport, kit_format, recovery_kit
from borg_common import process
from tests.unit.borg_client.test_kit_format import HOSTS, KEY, MADE

KEY_ID = KEY.split()[1]


def kit_for(tmp_path: Path, client: str = "web", repository: str = "ssh://borg@srv:22/./main") -> Path:
    path = tmp_path / f"{client}-kit.txt"
    path.write_text(kit_format.render(client, repository, "keyfile-blake2", KEY, "", HOSTS, MADE))
    return path


def held(config) -> list[str]:
    """Every file of the state volume, relative."""
    return sorted(str(path.relative_to(config.state)) for path in config.state.rglob("*") if path.is_file())


def test_a_kit_of_another_client_is_refused_naming_both(config, tmp_path, fake_borg):
    source = kit_for(tmp_path, client="db")

    with pytest.raises(keyimport.Refused) as refused:
        keyimport.import_key(config, source)

    assert str(refused.value) == (
        f"{source} is the recovery kit of client db (repository ssh://borg@srv:22/./main), but this sidecar is "
        "client web (BORG_REPO ssh://borg@srv:22/./main): nothing was imported. Give it the kit of client web; if "
        "this sidecar really replaces db, set CLIENT_NAME and BORG_REPO as the kit says"
    )
    assert fake_borg.commands == [] and held(config) == []


def test_a_kit_of_another_repository_url_is_refused(config, tmp_path, fake_borg):
    source = kit_for(tmp_path, repository="ssh://borg@other:22/./main")

    with pytest.raises(keyimport.Refused, match=r"repository ssh://borg@other:22/\./main\), but this sidecar is"):
        keyimport.import_key(config, source)


def test_the_same_key_already_in_the_state_volume_is_nothing_to_import(config, tmp_path, fake_borg):
    keys = config.paths.keys
    keys.mkdir()
    (keys / "srv__22___main").write_text(KEY)

    said = keyimport.import_key(config, kit_for(tmp_path))

    assert said == f"the state volume holds this key already ({keys / 'srv__22___main'}): nothing to import"
    assert fake_borg.commands == []


def test_another_key_of_the_repository_in_the_state_volume_is_refused(config, tmp_path, fake_borg):
    keys = config.paths.keys
    keys.mkdir()
    (keys / "srv__22___main").write_text(KEY.split("\n")[0] + "\nb3RoZXI=\n")
    source = kit_for(tmp_path)

    with pytest.raises(keyimport.Refused) as refused:
        keyimport.import_key(config, source)

    assert str(refused.value) == (
        f"the state volume holds another key of this repository ({keys / 'srv__22___main'}), not the one in "
        f"{source}: nothing was changed. The key here is the one backups use now; if the kit is older (the passphrase "
        "was changed since), save a new kit with `borg-client recovery-kit`"
    )
    assert fake_borg.commands == []


def test_a_key_of_another_repository_is_refused_and_leaves_nothing(config, tmp_path, fake_borg, lines):
    source = kit_for(tmp_path)
    fake_borg.answer("key", 2, lines=[lines.log("ERROR", "No key file", "KeyfileNotFoundError")])
    fake_borg.answer("key", 2, lines=[lines.log("ERROR", "different repository", "RepoIdMismatch")])

    with pytest.raises(keyimport.Refused) as refused:
        keyimport.import_key(config, source)

    assert str(refused.value) == (
        f"{source} holds the key of another repository (id {KEY_ID[:16]}…), not of BORG_REPO "
        "ssh://borg@srv:22/./main: nothing was imported. Give the key (or kit) saved from this client's repository"
    )
    assert [argv[4:6] for argv in fake_borg.commands] == [["key", "export"], ["key", "import"]]
    assert held(config) == ["run.lock"]  # the run lock's file; the staging state is gone


def test_a_key_the_passphrase_does_not_open_is_refused(config, tmp_path, monkeypatch, lines):
    source = kit_for(tmp_path)
    answers = iter([(2, "KeyfileNotFoundError"), (0, None), (2, "PassphraseWrong")])

    def borg(argv, *, render_line=None, env=None, **_options):
        code, msgid = next(answers)
        if argv[4:6] == ["key", "import"]:
            Path(env["BORG_KEYS_DIR"], "srv__22___main").write_text(KEY)
        tail = [render_line(lines.log("ERROR", "said", msgid))] if msgid else []
        return process.Result(code, "", tail)

    monkeypatch.setattr(process, "run", borg)

    with pytest.raises(keyimport.Refused) as refused:
        keyimport.import_key(config, source)

    assert str(refused.value) == (
        f"the key in {source} is this repository's, but the passphrase (BORG_PASSPHRASE_FILE) does not open it: "
        "nothing was imported. Give the passphrase that was saved with the kit"
    )
    assert not config.paths.keys.exists()


def test_a_key_that_opens_the_repository_moves_into_the_state_volume(config, tmp_path, monkeypatch, lines):
    source = kit_for(tmp_path)
    seen = []

    def borg(argv, *, render_line=None, env=None, **_options):
        seen.append((argv[4:6], env["BORG_KEYS_DIR"]))
        if argv[4:6] == ["key", "export"] and env["BORG_KEYS_DIR"] != str(config.paths.keys):
            return process.Result(2, "", [render_line(lines.log("ERROR", "No key file", "KeyfileNotFoundError"))])
        if argv[4:6] == ["key", "import"]:
            Path(env["BORG_KEYS_DIR"], "srv__22___main").write_text(KEY)
        if argv[4:6] == ["key", "export"]:
            Path(argv[-1]).write_text(KEY)
        return process.Result(0, "", [])

    monkeypatch.setattr(process, "run", borg)

    said = keyimport.import_key(config, source)

    keys = config.paths.keys
    assert said == (
        f"imported the key of ssh://borg@srv:22/./main from {source} into {keys / 'srv__22___main'}; the passphrase "
        "opens it. Backups go on into the same repository. Save this sidecar's kit: `borg-client recovery-kit`"
    )
    assert (keys / "srv__22___main").read_text() == KEY
    assert [what for what, _ in seen] == [["key", "export"], ["key", "import"], ["list", "--short"], ["key", "export"],
                                          ["key", "export"]]  # fmt: skip
    assert config.paths.key_file.read_text() == KEY
    assert not recovery_kit.saved(config.paths)


def test_at_start_a_refusal_names_the_setting(config, tmp_path, fake_borg):
    configured = dataclasses.replace(config, key_import_file=kit_for(tmp_path, client="db"))

    with pytest.raises(keyimport.Refused, match=r"^BORG_KEY_IMPORT_FILE: .* is the recovery kit of client db"):
        keyimport.at_start(configured)


def test_the_kit_is_confirmed_saved_once_a_person_says_so_until_the_key_changes(config):
    never = (
        "never confirmed saved: run borg-client recovery-kit, keep its output off this host, then "
        "borg-client recovery-kit --confirm-saved"
    )
    config.paths.key_export.mkdir()
    config.paths.key_file.write_text(KEY)
    assert recovery_kit.status_line(config.paths) == never and not recovery_kit.saved(config.paths)

    recovery_kit.confirm_saved(config.paths, MADE)

    assert recovery_kit.saved(config.paths)
    assert recovery_kit.status_line(config.paths) == "confirmed saved on 2026-12-06T01:23:00+00:00"
    config.paths.key_file.write_text(KEY.replace("hqlh", "hqlx"))  # a new repository's key, or a new passphrase's
    assert not recovery_kit.saved(config.paths)
    assert recovery_kit.status_line(config.paths) == (
        "the key changed since a kit was confirmed saved on 2026-12-06T01:23:00+00:00: run borg-client recovery-kit, "
        "keep its output off this host, then borg-client recovery-kit --confirm-saved"
    )


def test_a_repository_that_keeps_its_own_key_needs_no_import(config, tmp_path, monkeypatch):
    source = kit_for(tmp_path)
    seen = []

    def borg(argv, *, render_line=None, env=None, **_options):
        seen.append(argv[4:6])
        if argv[4:6] == ["key", "export"]:
            Path(argv[-1]).write_text(KEY)  # repokey: the repository gives its key without one here
        return process.Result(0, "", [])

    monkeypatch.setattr(process, "run", borg)

    said = keyimport.import_key(config, source)

    assert said == (
        f"the repository ssh://borg@srv:22/./main keeps its own key (repokey), the one in {source}: nothing to import"
    )
    assert seen == [["key", "export"], ["list", "--short"]]
    assert not config.paths.keys.exists()
