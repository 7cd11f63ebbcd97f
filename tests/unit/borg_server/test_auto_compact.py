"""Tests for the monitor's automatic compaction: what holds it back besides the deletes, and expiring snapshots."""

from datetime import UTC, datetime

from borg_server.monitor import auto_compact
from borg_server.records import state_file
from borg_server.records.client_state import Acknowledgement, CheckResult, ClientState
from borg_server.records.compaction_state import Compacted, Retention
from borg_server.records.configuration import ClientSpec

WEB = ClientSpec("web", "WEB", None, None, None, True, 86400)
NOW = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)


def test_nothing_found_holds_the_automatic_compaction_back(paths):
    assert auto_compact.blocker(WEB, ClientState("2024-05-01T00:00:00+00:00"), paths.client_repository("web")) is None


def test_a_failed_repository_check_holds_the_automatic_compaction_back():
    found = ClientState("2024-05-01T00:00:00+00:00", check=CheckResult("2024-05-06T03:00:00+00:00", False, 1, "bad"))

    assert auto_compact.blocker(WEB, found, None) == (
        "the repository check at 2024-05-06T03:00:00+00:00 failed; compact by hand once the repository is sound"
    )


def test_a_failed_automatic_compaction_or_a_client_that_may_delete_holds_it_back():
    failed = Compacted("2024-05-06T03:00:00+00:00", 0, 0, True, failed="borg compact failed (exit 2)")
    found = ClientState("2024-05-01T00:00:00+00:00", retention=Retention(last=failed))

    assert auto_compact.blocker(WEB, found, None) == (
        "the automatic compaction at 2024-05-06T03:00:00+00:00 failed (borg compact failed (exit 2)); "
        "compact by hand once it is fixed"
    )
    deleting = ClientSpec("web", "WEB", None, None, None, False, 86400)
    assert auto_compact.blocker(deleting, ClientState("2024-05-01T00:00:00+00:00"), None).startswith(
        "APPEND_ONLY is no"
    )


def test_only_acknowledgements_of_deletes_after_the_last_compaction_count():
    last = Compacted("2024-05-05T00:00:00+00:00", 10, 5, True)
    found = ClientState("2024-05-01T00:00:00+00:00", retention=Retention(last=last))
    found.acknowledged = [Acknowledgement("2024-05-04T00:00:00+00:00", 3, 1, False),
                          Acknowledgement("2024-05-06T00:00:00+00:00", 5, 0, True),
                          Acknowledgement("2024-05-06T01:00:00+00:00", 6, 2, False)]  # fmt: skip

    assert auto_compact.acknowledged_since(found) == "2024-05-06T01:00:00+00:00"


def test_snapshots_are_removed_once_their_time_is_up_and_only_below_the_snapshot_directory(paths):
    directory = paths.snapshot_directory("web")
    old, young, elsewhere = directory / "old", directory / "young", paths.repositories / "web" / "main"
    for path in (old, young, elsewhere):
        (path / "data").mkdir(parents=True)
    with state_file.locked(paths.monitor_state("web")) as found:
        kept = {str(old): "2024-05-06T11:00:00+00:00", str(young): "2024-05-07T00:00:00+00:00",
                str(elsewhere): "2024-05-06T11:00:00+00:00"}  # fmt: skip
        found.retention = Retention(snapshots=kept)

    auto_compact.expire_snapshots(WEB, paths, NOW)

    assert (old.exists(), young.exists(), elsewhere.exists()) == (False, True, True)
    assert state_file.load(paths.monitor_state("web")).retention.snapshots == {str(young): "2024-05-07T00:00:00+00:00"}
