"""Fixtures shared by the server's unit tests: the server's tree below a temporary directory."""

import pytest

from borg_server.system.paths import Paths


@pytest.fixture
def empty_paths(tmp_path) -> Paths:
    """The server's directories below tmp_path; none of them exists yet."""
    return Paths(
        repositories=tmp_path / "srv", state=tmp_path / "state", runtime=tmp_path / "run", volatile=tmp_path / "shm"
    )


@pytest.fixture
def paths(empty_paths) -> Paths:
    """The server's directories below tmp_path, with the directory of the audit log (the rest is made on use)."""
    empty_paths.audit_log.parent.mkdir(parents=True)
    return empty_paths
