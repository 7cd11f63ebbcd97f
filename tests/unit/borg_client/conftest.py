"""Fixtures for the sidecar's tests: a pairing export as the server writes it, a passphrase file, a config."""

import dataclasses

import pytest

from borg_client.config import load

REPO_URL = "ssh://borg@srv:22/./main"


@pytest.fixture
def pairing(tmp_path):
    """A pairing directory with the files the server exports for client web."""
    directory = tmp_path / "pairing"
    directory.mkdir()
    (directory / "id_ed25519").write_text("key")
    (directory / "known_hosts").write_text("srv ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID26CUVU\n")
    (directory / "repo_url").write_text(REPO_URL + "\n")
    (directory / "client_name").write_text("web\n")
    return directory


@pytest.fixture
def passphrase_file(tmp_path):
    path = tmp_path / "passphrase"
    path.write_text("correct horse battery staple\n")
    return path


@pytest.fixture
def repo_url():
    return REPO_URL


@pytest.fixture
def config(pairing, passphrase_file, tmp_path):
    """Client web paired with the server, its state and sources in a temporary directory."""
    state = tmp_path / "state"
    state.mkdir()
    loaded = load({"BORG_PASSPHRASE_FILE": str(passphrase_file)}, pairing=pairing, hostname="web")
    return dataclasses.replace(loaded, state=state, sources=tmp_path / "backup")
