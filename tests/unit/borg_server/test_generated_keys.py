"""Tests for the generated keys: forgetting the keys and exports of clients that were removed."""

import pytest

from borg_server.config.reader import load
from borg_server.provision.generated_keys import forget_removed_clients
from borg_server.system.paths import Paths


def config(clients: str):
    return load({"BORG_CLIENTS": clients}, "backup")


@pytest.fixture
def paths(empty_paths):
    """A server tree with keys and exports for web, db and old, and data for web and old."""
    paths = empty_paths
    for name in ("web", "db", "old"):
        paths.client_keys(name).mkdir(parents=True)
        (paths.client_keys(name) / "id_ed25519").write_text("key")
        paths.client_export(name).mkdir(parents=True)
        (paths.client_export(name) / "repo_url").write_text("ssh://borg@backup:22/./main\n")
    for name in ("web", "old"):
        paths.client_repository(name).mkdir(parents=True)
        (paths.client_repository(name) / "data").write_text("segments")
    return paths


def tree(paths: Paths) -> list[str]:
    """Return every file and directory below the tree's root, relative to it, sorted."""
    root = paths.state.parent
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


def test_forget_removed_clients_deletes_keys_and_exports_of_clients_no_longer_configured(paths):
    forget_removed_clients(config(clients="web db"), paths)

    assert tree(paths) == [
        "srv",
        "srv/old",
        "srv/old/main",
        "srv/old/main/data",
        "srv/web",
        "srv/web/main",
        "srv/web/main/data",
        "state",
        "state/clients",
        "state/clients/db",
        "state/clients/db/id_ed25519",
        "state/clients/web",
        "state/clients/web/id_ed25519",
        "state/export",
        "state/export/db",
        "state/export/db/repo_url",
        "state/export/web",
        "state/export/web/repo_url",
    ]


def test_forget_removed_clients_keeps_the_data_of_every_removed_client(paths):
    forget_removed_clients(config(clients="db"), paths)

    assert (paths.client_repository("web") / "data").read_text() == "segments"
    assert (paths.client_repository("old") / "data").read_text() == "segments"
    assert sorted(p.name for p in (paths.state / "clients").iterdir()) == ["db"]
    assert sorted(p.name for p in (paths.state / "export").iterdir()) == ["db"]


def test_forget_removed_clients_changes_nothing_when_every_client_is_still_configured(paths):
    before = tree(paths)

    forget_removed_clients(config(clients="web db old"), paths)

    assert tree(paths) == before


def test_forget_removed_clients_logs_one_line_per_deleted_directory(paths, caplog):
    caplog.set_level("INFO", logger="borg_server.provision.generated_keys")

    forget_removed_clients(config(clients="web db"), paths)

    assert caplog.messages == [
        f"client old: removed from the configuration; deleted {paths.client_keys('old')} (its data is kept)",
        f"client old: removed from the configuration; deleted {paths.client_export('old')} (its data is kept)",
    ]


def test_stray_files_and_symlinks_in_the_state_volume_are_skipped_with_one_warning_each(paths, tmp_path, caplog):
    outside = tmp_path / "etc"
    outside.mkdir()
    (outside / "shadow").write_text("secret")
    (paths.state / "export" / "notes.txt").write_text("notes")
    (paths.state / "clients" / "ghost").symlink_to(outside)
    (paths.client_export("old") / "sub").mkdir()

    forget_removed_clients(config(clients="web db"), paths)

    assert (outside / "shadow").read_text() == "secret"  # never followed
    assert (paths.state / "export" / "notes.txt").exists() and (paths.state / "clients" / "ghost").is_symlink()
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"{paths.state / 'clients' / 'ghost'}: a symlink is not a client's directory; skipped",
        f"{paths.state / 'export' / 'notes.txt'}: a file is not a client's directory; skipped",
        f"{paths.client_export('old') / 'sub'}: a directory where only files belong; skipped",
    ]


def test_a_half_written_export_a_crash_left_is_deleted_and_not_called_a_removed_client(paths, caplog):
    caplog.set_level("INFO")
    half = paths.state / "export" / ".web.k2j4x9"
    half.mkdir()
    (half / "id_ed25519").write_text("half")

    forget_removed_clients(config(clients="web db old"), paths)

    assert not half.exists()
    assert f"{half}: a half-written export left by an interrupted start; deleted" in caplog.messages
    assert not [message for message in caplog.messages if "removed from the configuration" in message]
