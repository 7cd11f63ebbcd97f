"""Session fixtures: both images built once; a sandbox per test that removes what the test made."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.docker_helpers import Sandbox

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", autouse=True)
def images() -> None:
    """Build both images once per session (make images skips the base image when it exists)."""
    subprocess.run(["make", "-C", str(ROOT), "images"], check=True, capture_output=True)


@pytest.fixture
def sandbox():
    box = Sandbox()
    yield box
    box.cleanup()
