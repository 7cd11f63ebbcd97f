"""Tests for the pure parts of applying a configuration: what clients pin and connect to, and forgetting
clients that were removed."""

import pytest

from borg_server.config import load
from borg_server.keys import parse_public_key
from borg_server.paths import Paths
from borg_server.setup import forget_removed_clients, known_hosts_line, repository_url

HOST_BLOB = "AAAAC3NzaC1lZDI1NTE5AAAAID26CUVU/8m/Dk6cyWmnuBbX1SpdBW8FFXYWWvdh1+ST"
HOST_KEY = parse_public_key(f"ssh-ed25519 {HOST_BLOB} borg-appliance host key")


def config(server_name: str | None = None, clients: str = "web", **environ: str):
    """Given BORG_SERVER_NAME (None: unset), BORG_CLIENTS and other settings, return the loaded configuration."""
    environ = {"BORG_CLIENTS": clients} | environ
    if server_name is not None:
        environ["BORG_SERVER_NAME"] = server_name
    return load(environ, "backup")


@pytest.mark.parametrize(
    ("server_name", "line"),
    [
        (None, f"backup ssh-ed25519 {HOST_BLOB}\n"),
        ("backup.example", f"backup.example ssh-ed25519 {HOST_BLOB}\n"),
        ("backup.example:22", f"backup.example ssh-ed25519 {HOST_BLOB}\n"),
        ("backup.example:2222", f"[backup.example]:2222 ssh-ed25519 {HOST_BLOB}\n"),
        ("192.0.2.10:2222", f"[192.0.2.10]:2222 ssh-ed25519 {HOST_BLOB}\n"),
        ("[2001:db8::1]:2222", f"[2001:db8::1]:2222 ssh-ed25519 {HOST_BLOB}\n"),
        ("[2001:db8::1]", f"2001:db8::1 ssh-ed25519 {HOST_BLOB}\n"),
    ],
)
def test_known_hosts_line_names_the_host_as_ssh_looks_it_up(server_name, line):
    assert known_hosts_line(HOST_KEY, config(server_name)) == line


def test_known_hosts_line_uses_the_ssh_port_when_the_server_name_has_none():
    assert known_hosts_line(HOST_KEY, config("backup.example", SSH_PORT="2022")) == (
        f"[backup.example]:2022 ssh-ed25519 {HOST_BLOB}\n"
    )


def test_known_hosts_line_drops_the_host_key_comment():
    assert "host key" not in known_hosts_line(HOST_KEY, config())


@pytest.mark.parametrize(
    ("server_name", "url"),
    [
        (None, "ssh://borg@backup:22/./main"),
        ("backup.example", "ssh://borg@backup.example:22/./main"),
        ("backup.example:2222", "ssh://borg@backup.example:2222/./main"),
        ("192.0.2.10", "ssh://borg@192.0.2.10:22/./main"),
        ("[2001:db8::1]", "ssh://borg@[2001:db8::1]:22/./main"),
        ("[2001:db8::1]:2222", "ssh://borg@[2001:db8::1]:2222/./main"),
    ],
)
def test_repository_url_points_at_the_main_repository_relative_to_the_client_directory(server_name, url):
    assert repository_url(config(server_name)) == url


@pytest.fixture
def paths(tmp_path):
    """A server tree with keys and exports for web, db and old, and data for web and old."""
    paths = Paths(repositories=tmp_path / "srv", state=tmp_path / "state", runtime=tmp_path / "run")
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
    caplog.set_level("INFO", logger="borg_server.setup")

    forget_removed_clients(config(clients="web db"), paths)

    assert caplog.messages == [
        f"client old: removed from the configuration; deleted {paths.client_keys('old')} (its data is kept)",
        f"client old: removed from the configuration; deleted {paths.client_export('old')} (its data is kept)",
    ]
