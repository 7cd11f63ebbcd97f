"""Session fixtures: both images built once; a sandbox per test that removes what the test made."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.docker_helpers import Sandbox

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(items) -> None:
    """Mark every scenario here `integration`, so `pytest -m "not integration"` runs without Docker.

    Under `make test` (two pytest-xdist workers, --dist loadgroup) the scenarios that work the two cores run
    one after another in one group; only those marked `waits` run beside them, on the other worker."""
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)
            if item.get_closest_marker("waits") is None:
                item.add_marker(pytest.mark.xdist_group("cores"))


@pytest.fixture(scope="session", autouse=True)
def images() -> None:
    """Build both images once per session (make images skips the base image when it exists)."""
    subprocess.run(["make", "-C", str(ROOT), "images"], check=True, capture_output=True)


@pytest.fixture(scope="session")
def database_images() -> None:
    """Build the PostgreSQL and MariaDB images of the dump scenarios once, when a scenario needs them."""
    subprocess.run(["make", "-C", str(ROOT), "test-images"], check=True, capture_output=True)


@pytest.fixture
def sandbox():
    box = Sandbox()
    yield box
    box.cleanup()
