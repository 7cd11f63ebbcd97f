"""Tests for the decision when a client's deletes compact by themselves, and for snapshot expiry."""

from datetime import UTC, datetime

from borg_server.compaction.policy import Decision, Group, decide, snapshots_expired
from borg_server.config.reader import load

NOW = datetime(2024, 5, 6, 3, 0, 0, tzinfo=UTC)
DAY = 86400
ADMIN = Group(10, 5, "2024-05-05T02:00:00+00:00", ("admin",))


def test_admin_deletes_older_than_the_delay_compact_now():
    assert decide("web", "admin", [ADMIN], None, None, NOW, DAY) == Decision(True, 5, "2024-05-06T02:00:00+00:00", None)


def test_admin_deletes_younger_than_the_delay_wait_until_it_is_over():
    young = Group(10, 5, "2024-05-06T02:00:00+00:00", ("admin",))

    assert decide("web", "admin", [young], None, None, NOW, DAY) == Decision(
        False, 5, "2024-05-07T02:00:00+00:00", None
    )


def test_one_group_by_the_append_key_holds_every_delete_back_and_says_where():
    append = Group(12, 2, "2024-05-05T02:00:00+00:00", ("append",))

    assert decide("web", "admin", [ADMIN, append], None, None, NOW, DAY) == Decision(
        False, 5, None, "2 delete(s) in segments 12..12 not written by an admin session; "
        "review them with borg-server audit web"
    )  # fmt: skip


def test_a_group_no_session_is_known_for_or_written_by_admin_and_append_together_holds_it_back():
    for roles in ((), ("admin", "append")):
        unknown = Group(12, 1, "2024-05-05T02:00:00+00:00", roles)
        assert decide("web", "admin", [unknown], None, None, NOW, DAY).compact is False


def test_tampering_or_a_failed_compaction_holds_it_back_with_its_reason():
    assert decide("web", "admin", [ADMIN], None, "committed files changed", NOW, DAY) == Decision(
        False, 5, None, "committed files changed"
    )


def test_with_auto_compact_off_nothing_compacts_by_itself():
    assert decide("web", "off", [ADMIN], None, None, NOW, DAY) == Decision(
        False, 5, None, "AUTO_COMPACT is off: compact by hand"
    )


def test_acknowledged_deletes_compact_one_delay_after_the_acknowledgement():
    acknowledged = "2024-05-06T01:00:00+00:00"

    assert decide("web", "admin", [], acknowledged, None, NOW, 3600) == Decision(
        True, 0, "2024-05-06T02:00:00+00:00", None
    )
    assert decide("web", "admin", [], acknowledged, None, NOW, 3 * 3600).compact is False


def test_nothing_pending_nor_acknowledged_is_nothing_to_do():
    assert decide("web", "admin", [], None, None, NOW, DAY) == Decision(False, 0, None, None)


def test_only_the_snapshots_whose_time_is_up_expire():
    kept = {
        "/s/web/b": "2024-05-06T03:00:00+00:00",
        "/s/web/a": "2024-05-01T00:00:00+00:00",
        "/s/web/c": "2024-05-07T00:00:00+00:00",
    }

    assert snapshots_expired(kept, NOW) == ["/s/web/a", "/s/web/b"]


def test_auto_compact_compact_delay_and_snapshot_keep_default_to_admin_a_day_and_a_week():
    config = load({"BORG_CLIENTS": "web"}, "backup")

    assert (config.clients[0].auto_compact, config.compact_delay, config.snapshot_keep) == ("admin", DAY, 7 * DAY)


def test_auto_compact_off_in_the_environment_or_unquoted_in_yaml_is_off(tmp_path):
    file = tmp_path / "server.yaml"
    file.write_text("clients: {db: {auto_compact: off}}\n")

    config = load({"BORG_CLIENTS": "web", "BORG_CLIENT_WEB_AUTO_COMPACT": "off", "BORG_SERVER_CONFIG": str(file)}, "b")

    assert [client.auto_compact for client in config.clients] == ["off", "off"]


def test_a_bad_auto_compact_or_a_delay_out_of_range_names_the_setting():
    import pytest

    from borg_common.settings import ConfigError

    with pytest.raises(ConfigError) as error:
        load({"BORG_CLIENTS": "web", "BORG_CLIENT_WEB_AUTO_COMPACT": "always", "COMPACT_DELAY": "1s",
              "SNAPSHOT_KEEP": "2y"}, "backup")  # fmt: skip

    problems = error.value.problems
    assert problems[0] == "BORG_CLIENT_WEB_AUTO_COMPACT: 'always' is not one of admin, off"
    assert [problem.split(":")[0] for problem in problems] == [
        "BORG_CLIENT_WEB_AUTO_COMPACT",
        "COMPACT_DELAY",
        "SNAPSHOT_KEEP",
    ]


# deletes no retention policy makes: they wait for a person

HELD_NEXT = (
    ", which a normal retention policy never does; nothing compacts until a person decides. If you ran them, approve "
    "them with borg-server audit web (it prints the --acknowledge command; they compact COMPACT_DELAY later). If "
    "not, the admin key may be stolen: do not compact, roll back as docs/how-to/roll-back-a-compromised-client.md "
    "says and replace the admin key"
)


def admin_deleting(archives: int, newest: bool = False, segment: int = 10) -> Group:
    return Group(segment, 5, "2024-05-05T02:00:00+00:00", ("admin",), archives, newest)


def test_admin_deletes_that_take_every_archive_wait_for_a_person():
    assert decide("web", "admin", [admin_deleting(2, True), admin_deleting(1, True, 12)], None, None, NOW, DAY,
                  0) == Decision(
        False, 10, None, f"the admin key's 10 delete(s) in segments 10..12 take every archive (3){HELD_NEXT}", True
    )  # fmt: skip


def test_admin_deletes_that_take_the_newest_archive_wait_for_a_person():
    decision = decide("web", "admin", [admin_deleting(1, True)], None, None, NOW, DAY, 5)

    assert (decision.compact, decision.held) == (False, True)
    assert decision.blocked == f"the admin key's 5 delete(s) in segments 10..10 take the newest archive{HELD_NEXT}"


def test_admin_deletes_that_take_more_archives_than_they_leave_wait_for_a_person():
    decision = decide("web", "admin", [admin_deleting(4), admin_deleting(2, segment=11)], None, None, NOW, DAY, 5)

    assert (decision.compact, decision.held) == (False, True)
    assert decision.blocked == f"the admin key's 10 delete(s) in segments 10..11 take 6 archives and leave 5{HELD_NEXT}"


def test_a_normal_prune_compacts_by_itself():
    for taken, left in ((1, 7), (3, 3), (0, 0)):  # older ones; half of them; chunks only
        assert decide("web", "admin", [admin_deleting(taken)], None, None, NOW, DAY, left).compact is True


def test_without_a_known_archive_count_the_rule_cannot_hold_anything_back():
    assert decide("web", "admin", [admin_deleting(3, True)], None, None, NOW, DAY, None).compact is True


def test_acknowledged_unusual_deletes_are_approved_and_compact_one_delay_later():
    acknowledged = "2024-05-06T01:00:00+00:00"

    assert decide("web", "admin", [], acknowledged, None, NOW, 3600, 0) == Decision(
        True, 0, "2024-05-06T02:00:00+00:00", None
    )
