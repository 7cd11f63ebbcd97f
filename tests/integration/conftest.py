"""Session fixtures: both images built once; a sandbox per test that removes what the test made; the shared
world per worker; how `make test` spreads the scenarios over its workers, and how long one may take."""

from __future__ import annotations

import fcntl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.containers import Sandbox
from tests.harness.worlds import World, build_world

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SCENARIO_TIMEOUT = 600  # seconds; the slowest scenario takes about 3 minutes on 2 busy cores
LOG_TAIL = 80  # lines of each container's log that a failed scenario's report shows


def module_scoped(item: pytest.Item) -> bool:
    """Return whether the scenario uses a fixture made once per module (its module's tests share a world)."""
    definitions = item._fixtureinfo.name2fixturedefs  # pytest's own record of the fixtures a test uses
    return any(defs[-1].scope == "module" for defs in definitions.values())


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(items) -> None:
    """Mark every scenario here `integration`, so `pytest -m "not integration"` runs without Docker, and give
    each a time limit (pytest-timeout fails it by name, with its stack, instead of CI's limit ending the run).

    Under `make test` (pytest-xdist, --dist loadgroup) scenarios spread freely over the workers, except: those
    that read the shared world run on one worker (so it is made once), those of a module with a module-scoped
    fixture stay on one worker (the fixture is made once, not once per worker), and those marked `cores`
    (they keep both cores busy on purpose) run one after another. Those marked `long` are handed out first."""
    for item in items:
        if HERE not in Path(item.path).resolve().parents:
            continue
        item.add_marker(pytest.mark.integration)
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(SCENARIO_TIMEOUT))
        if item.get_closest_marker("cores") is not None:
            item.add_marker(pytest.mark.xdist_group("cores"))
        elif "world" in item.fixturenames:
            item.add_marker(pytest.mark.xdist_group("world"))
        elif module_scoped(item):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
    # pytest-xdist hands out the groups with most scenarios first, then the single scenarios in this order: the
    # `long` ones go first, so that no worker starts a scenario of several minutes when the others are done.
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """When a scenario fails, add the end of each of its containers' logs to the report: CI shows only the
    report, and the containers are gone once the sandbox is cleaned up."""
    outcome = yield
    report = outcome.get_result()
    box = item.funcargs.get("sandbox") if report.failed and call.when == "call" else None
    if isinstance(box, Sandbox):
        for name, text in box.log_tails(LOG_TAIL):
            report.sections.append((f"log of {name} (last {LOG_TAIL} lines)", text))


def make(target: str) -> None:
    """Run `make target` (an image build), one worker at a time: workers that need the same image wait for
    the first one's build and then find it in Docker's cache, instead of downloading its packages side by side.
    Under `make test` every image is built before the scenarios start, so this is a cache hit."""
    lock = ROOT / ".build" / "images.lock"
    lock.parent.mkdir(exist_ok=True)
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        subprocess.run(["make", "-C", str(ROOT), target], check=True, capture_output=True)


@pytest.fixture(scope="session", autouse=True)
def images() -> None:
    """Build both images once per session (make images skips the base image when it exists)."""
    make("images")


@pytest.fixture(scope="session")
def database_images() -> None:
    """Build the test-only images (databases, receivers, browser) once, when a scenario needs them."""
    make("test-images")


@pytest.fixture(scope="session")
def browser_image() -> None:
    """Build the headless Chromium image of the status page scenario once, when a scenario needs it."""
    make("browser-image")


@pytest.fixture
def sandbox():
    box = Sandbox()
    yield box
    box.cleanup()


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> Iterator[World]:
    """The shared world (tests/harness/worlds.py), for the scenarios that only read it; they run on one worker."""
    box = Sandbox()
    try:
        yield build_world(box, tmp_path_factory.mktemp("world"))
    finally:
        box.cleanup()
