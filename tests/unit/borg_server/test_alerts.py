"""Tests for alerts: which conditions hold for a client, raised once and cleared once, and how they are sent."""

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from borg_common import outbox
from borg_common.notify import DEFAULT_ON, Notify
from borg_server.compaction.policy import Group
from borg_server.monitor.alerts import (
    conditions,
    document,
    emit,
    refusals,
    still_being_written,
    transitions,
)
from borg_server.monitor.alerts import (
    notice as notice_of,
)
from borg_server.records import state_file as client_state
from borg_server.records.client_state import ClientState, RaisedAlert, Refusals
from borg_server.records.configuration import ClientSpec
from borg_server.repository import deletes

NOW = datetime(2024, 5, 6, 3, 0, 0, tzinfo=UTC)
NOW_TEXT = "2024-05-06T03:00:00+00:00"
LATER_TEXT = "2024-05-06T03:15:00+00:00"
DAY_AND_TWO_HOURS = 26 * 3600
WEEK = 7 * 86400
TAMPERING = {
    "changed": [2],
    "truncated": [],
    "removed": [10],
    "config": False,
    "seen_at": "2024-05-06T01:00:00+00:00",
}
PASSED = {"at": "2024-05-06T01:00:00+00:00", "ok": True, "returncode": 0, "message": "no problems found"}
BASELINE = {"0": [17, "ab" * 32, 1, 1, 1]}  # a repository the monitor has seen


def client(name: str = "web", **fields) -> ClientSpec:
    defaults = dict(key=None, admin_key=None, quota=None, append_only=True, max_age=DAY_AND_TWO_HOURS)
    return ClientSpec(name=name, env_name=name.upper(), **(defaults | fields))


def state(**fields) -> ClientState:
    """Return a state of a client first seen an hour ago that backed up five minutes ago, with fields changed.

    fields are given as the state file holds them (version 2 JSON).
    """
    new = client_state.to_json(ClientState(first_seen="2024-05-06T02:00:00+00:00"))
    return client_state.from_json(new | {"last_backup": "2024-05-06T02:55:00+00:00"} | fields, NOW_TEXT)


def deletes_in(segment: int, **kinds: int) -> dict:
    """Return the group of deletes the monitor records for one segment, counted by kind."""
    return {
        "segment": segment,
        "count": sum(kinds.values()),
        "kinds": kinds,
        "keys": ["01" * 32] * min(sum(kinds.values()), deletes.KEYS_KEPT),
        "committed_at": None,
        "seen_at": NOW_TEXT,
    }


APPEND_KEY, ADMIN_KEY = "SHA256:append0000", "SHA256:admin00000"


def written(segment: int, *writers: tuple[str, str]) -> Group:
    """Return a pending delete group as auto_compact.groups gives it: its writers (role, key fingerprint)."""
    return Group(segment, 1, NOW_TEXT, tuple(sorted({role for role, _ in writers})), writers=tuple(writers))


def conditions_of(
    state_now: ClientState, client_spec: ClientSpec | None = None, size: int = 0, groups: list | None = None
) -> dict:
    """Return the conditions of the client (web, append-only) at NOW, with repository checks due weekly."""
    return conditions(client_spec or client(), state_now, size, NOW, WEEK, False, groups)


CLIENT_DELETES_NEXT = (
    ", not by the admin key: the client's own key only ever adds backups, so the client may be compromised. "
    "Nothing is lost yet (append-only: the data stays until a compaction, and nothing compacts by itself). "
    "Next: see what was deleted with borg-server audit web; if nobody meant to, roll back as "
    "docs/how-to/roll-back-a-compromised-client.md says and replace the client's key; "
    "if someone did, acknowledge it as the audit says"
)


def test_a_client_that_backed_up_recently_and_has_no_findings_has_no_condition():
    assert conditions_of(state()) == {}


def test_a_client_whose_last_backup_is_older_than_max_age_is_stale():
    active = conditions_of(state(last_backup="2024-05-05T00:00:00+00:00"))

    assert active == {
        "stale": (
            "client web: no backup for 1d 3h (MAX_AGE 1d 2h); its last backup ended 2024-05-05T00:00:00+00:00",
            {"last_backup": "2024-05-05T00:00:00+00:00", "age_s": 97200, "max_age_s": DAY_AND_TWO_HOURS},
        )
    }


def test_a_backup_exactly_max_age_old_is_not_stale_yet():
    assert conditions_of(state(last_backup="2024-05-06T02:00:00+00:00"), client(max_age=3600)) == {}


def test_a_client_that_never_backed_up_is_stale_max_age_after_it_was_first_seen():
    never = state(first_seen="2024-05-04T03:00:00+00:00", last_backup=None)

    assert conditions_of(never) == {
        "stale": (
            "client web: no backup for 2d (MAX_AGE 1d 2h); it never backed up",
            {"last_backup": None, "age_s": 172800, "max_age_s": DAY_AND_TWO_HOURS},
        )
    }
    assert conditions_of(state(first_seen="2024-05-06T00:00:00+00:00", last_backup=None)) == {}


def test_deletes_by_the_append_only_key_are_their_own_alert_naming_the_key_and_the_next_step():
    found = [
        deletes_in(6, checkpoint=1),
        deletes_in(10, delete=2),
        deletes_in(14, delete=1),
        deletes_in(15, checkpoint=1),
    ]
    groups = [written(segment, ("append", APPEND_KEY)) for segment in (6, 10, 14, 15)]

    assert conditions_of(state(deletes=found), groups=groups) == {
        "client_deletes": (
            "client web: 3 object(s) deleted in segments 10..14 by the client's own append-only key "
            f"SHA256:append0000{CLIENT_DELETES_NEXT}",
            {"count": 3, "overwrites": 0, "first_segment": 10, "last_segment": 14, "keys": [APPEND_KEY]},
        )
    }


def test_deletes_by_the_admin_key_are_the_deletes_alert_naming_the_admin_key():
    groups = [written(10, ("admin", ADMIN_KEY)), written(12, ("admin", ADMIN_KEY))]

    assert conditions_of(state(deletes=[deletes_in(10, delete=5), deletes_in(12, delete=1)]), groups=groups) == {
        "deletes": (
            "client web: 6 object(s) deleted in segments 10..12 by the admin key SHA256:admin00000 (a prune); "
            "see borg-server audit web before any compaction",
            {"count": 6, "overwrites": 0, "first_segment": 10, "last_segment": 12, "keys": [ADMIN_KEY]},
        )
    }


def test_an_admin_prune_and_a_delete_by_the_append_key_raise_both_alerts_each_with_its_segments():
    found = [deletes_in(10, delete=1), deletes_in(12, delete=4)]
    groups = [written(10, ("append", APPEND_KEY)), written(12, ("admin", ADMIN_KEY))]

    active = conditions_of(state(deletes=found), groups=groups)

    assert active["client_deletes"][0].startswith("client web: 1 object(s) deleted in segments 10..10 by the client's")
    assert active["deletes"][0].startswith("client web: 4 object(s) deleted in segments 12..12 by the admin key")


def test_deletes_no_session_is_known_for_are_the_loud_alert():
    assert conditions_of(state(deletes=[deletes_in(10, delete=1)]), groups=[written(10)]) == {
        "client_deletes": (
            f"client web: 1 object(s) deleted in segments 10..10 by a session the audit log does not name"
            f"{CLIENT_DELETES_NEXT}",
            {"count": 1, "overwrites": 0, "first_segment": 10, "last_segment": 10, "keys": []},
        )
    }
    assert list(conditions_of(state(deletes=[deletes_in(10, delete=1)]))) == ["client_deletes"]  # nothing known


def test_deletes_no_session_is_logged_for_wait_while_a_session_writes_for_at_most_fifteen_minutes():
    def unknown(segment: int, minutes_ago: int) -> Group:
        return Group(segment, 1, (NOW - timedelta(minutes=minutes_ago)).isoformat(), ())

    written_now = [unknown(10, 20), unknown(11, 1), written(12, ("admin", ADMIN_KEY))]

    assert still_being_written(written_now, True, NOW) == {11}
    assert still_being_written(written_now, False, NOW) == frozenset()  # no session runs: its record would be there
    found = state(deletes=[deletes_in(11, delete=1), deletes_in(12, delete=2)])
    assert list(conditions(client(), found, 0, NOW, WEEK, False, written_now, frozenset({11}))) == ["deletes"]


def test_a_segment_written_by_the_admin_and_the_append_key_at_once_is_the_loud_alert():
    both = written(10, ("admin", ADMIN_KEY), ("append", APPEND_KEY))

    active = conditions_of(state(deletes=[deletes_in(10, delete=1)]), groups=[both])

    assert list(active) == ["client_deletes"]
    assert (
        "by the admin key SHA256:admin00000, the client's own append-only key SHA256:append0000, not"
        in (active["client_deletes"][0])
    )


def test_overwrites_are_counted_with_the_deletes_and_named_in_the_message():
    found = [deletes_in(10, overwrite=1, checkpoint=4), deletes_in(12, delete=2, overwrite=1)]
    groups = [written(10, ("admin", ADMIN_KEY)), written(12, ("admin", ADMIN_KEY))]

    assert conditions_of(state(deletes=found), groups=groups) == {
        "deletes": (
            "client web: 4 object(s) deleted in segments 10..12 (2 of them overwrites of stored objects) by the "
            "admin key SHA256:admin00000 (a prune); see borg-server audit web before any compaction",
            {"count": 4, "overwrites": 2, "first_segment": 10, "last_segment": 12, "keys": [ADMIN_KEY]},
        )
    }


def test_a_rename_by_the_append_key_raises_no_alert():
    groups = [written(10, ("append", APPEND_KEY))]

    assert conditions_of(state(deletes=[deletes_in(10, rename=1)]), groups=groups) == {}


def test_compaction_held_for_a_person_is_a_condition_saying_why():
    retention = {"blocked": "the admin key's 3 delete(s) in segments 9..9 take every archive (2), ...", "held": True,
                 "pending_admin": 3}  # fmt: skip

    assert conditions_of(state(retention=retention)) == {
        "compaction_held": (
            "client web: the automatic compaction waits for a person: the admin key's 3 delete(s) in segments 9..9 "
            "take every archive (2), ...",
            {"pending_admin_deletes": 3},
        )
    }
    assert conditions_of(state(retention=retention | {"held": False})) == {}


def test_checkpoint_clean_ups_alone_raise_no_deletes_condition():
    assert conditions_of(state(deletes=[deletes_in(6, checkpoint=1), deletes_in(10, checkpoint=3)])) == {}


def test_tampering_in_an_append_only_repository_is_a_condition_describing_the_segments():
    assert conditions_of(state(tampering=TAMPERING)) == {
        "tampering": (
            "client web: segments changed 2; segments removed 10 "
            "(borg never rewrites committed files of an append-only repository)",
            TAMPERING,
        )
    }


def test_a_changed_repository_config_is_a_tampering_condition():
    tampering = TAMPERING | {"changed": [], "removed": [], "config": True}

    assert conditions_of(state(tampering=tampering)) == {
        "tampering": (
            "client web: the repository config changed (a replaced repokey or settings) "
            "(borg never rewrites committed files of an append-only repository)",
            tampering,
        )
    }


def test_a_client_allowed_to_delete_gets_no_deletes_nor_tampering_condition():
    findings_of_a_full_client = state(deletes=[deletes_in(10, delete=1)], tampering=TAMPERING)

    assert conditions_of(findings_of_a_full_client, client(append_only=False)) == {}


def test_a_failed_repository_check_is_a_condition_quoting_borg():
    check = {"at": "2024-05-06T01:00:00+00:00", "ok": False, "returncode": 2, "message": "ERROR: segment 6 is bad"}

    assert conditions_of(state(check=check)) == {
        "check_failed": (
            "client web: borg check --repository-only failed at 2024-05-06T01:00:00+00:00: ERROR: segment 6 is bad",
            check,
        )
    }


def test_a_passed_repository_check_is_no_condition():
    assert conditions_of(state(check=PASSED, segments=BASELINE)) == {}


def test_a_check_that_could_not_run_for_twice_the_interval_is_an_overdue_check_condition():
    check = PASSED | {"at": "2024-04-21T00:00:00+00:00"}

    assert conditions_of(state(check=check, segments=BASELINE)) == {
        "check_failed": (
            "client web: no repository check could run for 15d 3h (the repository was always busy?)",
            {"last_check_at": "2024-04-21T00:00:00+00:00", "overdue_s": 15 * 86400 + 3 * 3600},
        )
    }


def test_a_check_exactly_twice_the_interval_old_is_not_overdue_yet():
    check = PASSED | {"at": "2024-04-22T03:00:00+00:00"}

    assert conditions_of(state(check=check, segments=BASELINE)) == {}


def test_a_repository_never_checked_is_overdue_twice_the_interval_after_the_client_was_first_seen():
    never_checked = state(first_seen="2024-04-20T03:00:00+00:00", segments=BASELINE)

    assert conditions_of(never_checked)["check_failed"] == (
        "client web: no repository check could run for 16d (the repository was always busy?)",
        {"last_check_at": None, "overdue_s": 16 * 86400},
    )
    assert conditions_of(state(first_seen="2024-04-23T03:00:00+00:00", segments=BASELINE)) == {}


def test_a_client_without_a_repository_nor_a_check_is_never_overdue():
    assert conditions_of(state(first_seen="2024-01-01T00:00:00+00:00", last_backup=NOW_TEXT)) == {}


def test_a_checked_client_allowed_to_delete_is_overdue_too():
    check = PASSED | {"at": "2024-04-21T00:00:00+00:00"}

    assert list(conditions_of(state(check=check), client(append_only=False))) == ["check_failed"]


def test_a_failed_check_is_reported_as_failed_however_old_it_is():
    check = {"at": "2024-04-01T00:00:00+00:00", "ok": False, "returncode": 2, "message": "ERROR: bad"}

    assert conditions_of(state(check=check, segments=BASELINE))["check_failed"][0] == (
        "client web: borg check --repository-only failed at 2024-04-01T00:00:00+00:00: ERROR: bad"
    )


def test_a_repository_above_nine_tenths_of_its_quota_is_a_condition():
    active = conditions_of(state(), client(quota=20_000_000), 19_000_000)

    assert active == {
        "quota": (
            "client web: repository uses 95% of its quota (19000000 of 20000000 bytes)",
            {"bytes": 19_000_000, "quota_bytes": 20_000_000, "ratio": 0.95},
        )
    }


def test_a_repository_at_nine_tenths_of_its_quota_or_without_one_is_no_condition():
    assert conditions_of(state(), client(quota=20_000_000), 18_000_000) == {}
    assert conditions_of(state(), client(), 10**15) == {}


def test_every_condition_can_hold_at_once():
    check = {"at": NOW_TEXT, "ok": False, "returncode": 2, "message": "bad"}
    everything = state(
        last_backup=None,
        first_seen="2024-05-01T00:00:00+00:00",
        deletes=[deletes_in(10, delete=1), deletes_in(11, delete=1)],
        tampering=TAMPERING,
        check=check,
        retention={"blocked": "the admin key's ...", "held": True},
    )
    groups = [written(10, ("admin", ADMIN_KEY)), written(11, ("append", APPEND_KEY))]

    active = conditions_of(everything, client(quota=20_000_000), 20_000_000, groups)

    assert sorted(active) == [
        "check_failed", "client_deletes", "compaction_held", "deletes", "quota", "stale", "tampering"
    ]  # fmt: skip


def test_a_condition_is_raised_once_with_one_document():
    alerts_state = state()
    active = {"stale": ("client web: no backup for 1d 3h", {"age_s": 97200})}

    documents = transitions(alerts_state, active, "web", "backup.example.org", NOW_TEXT)

    assert [{k: v for k, v in d.items() if k != "id"} for d in documents] == [
        {
            "event": "borg-appliance-alert",
            "alert": "stale",
            "state": "raised",
            "client": "web",
            "server": "backup.example.org",
            "message": "client web: no backup for 1d 3h",
            "details": {"age_s": 97200},
            "since": NOW_TEXT,
            "at": NOW_TEXT,
        }
    ]
    assert alerts_state.alerts == {
        "stale": RaisedAlert(since=NOW_TEXT, message="client web: no backup for 1d 3h", extent=0)
    }


def test_a_condition_that_still_holds_is_not_raised_again_even_if_its_message_changes():
    alerts_state = state()
    transitions(alerts_state, {"stale": ("client web: no backup for 1d 3h", {})}, "web", "backup", NOW_TEXT)

    assert (
        transitions(alerts_state, {"stale": ("client web: no backup for 1d 4h", {})}, "web", "backup", LATER_TEXT) == []
    )
    assert alerts_state.alerts["stale"].since == NOW_TEXT


def test_a_condition_that_stops_holding_is_cleared_with_one_document_naming_when_it_began():
    alerts_state = state()
    transitions(alerts_state, {"deletes": ("client web: 1 object(s) deleted", {})}, "web", "backup", NOW_TEXT)

    documents = transitions(alerts_state, {}, "web", "backup", LATER_TEXT)

    assert [{k: v for k, v in d.items() if k != "id"} for d in documents] == [
        {
            "event": "borg-appliance-alert",
            "alert": "deletes",
            "state": "cleared",
            "client": "web",
            "server": "backup",
            "message": "client web: cleared: deletes by the admin key",
            "details": {},
            "since": NOW_TEXT,
            "at": LATER_TEXT,
        }
    ]
    assert alerts_state.alerts == {}
    assert transitions(alerts_state, {}, "web", "backup", LATER_TEXT) == []


def test_one_condition_can_clear_while_another_is_raised():
    alerts_state = state()
    transitions(alerts_state, {"quota": ("near", {})}, "web", "backup", NOW_TEXT)

    documents = transitions(alerts_state, {"check_failed": ("failed", {})}, "web", "backup", LATER_TEXT)

    assert [(d["alert"], d["state"]) for d in documents] == [("check_failed", "raised"), ("quota", "cleared")]
    assert list(alerts_state.alerts) == ["check_failed"]


def test_every_alert_document_has_its_own_id_for_receivers_to_drop_duplicates():
    first = document("stale", "raised", "web", "backup", "m", {}, NOW_TEXT, NOW_TEXT)
    second = document("stale", "raised", "web", "backup", "m", {}, NOW_TEXT, NOW_TEXT)

    assert len(first["id"]) == 32
    assert int(first["id"], 16) >= 0
    assert first["id"] != second["id"]
    assert {k: v for k, v in first.items() if k != "id"} == {k: v for k, v in second.items() if k != "id"}


def server_with(urls: tuple[str, ...], notify_urls: tuple[str, ...] = (), on=DEFAULT_ON) -> SimpleNamespace:
    """Return what emit reads of a server's configuration: REPORT_URLS and NOTIFY_URLS, NOTIFY_ON."""
    return SimpleNamespace(report_urls=urls, notify=Notify(notify_urls, frozenset(on)))


def places(tmp_path) -> SimpleNamespace:
    """Return what emit reads of the server's paths: the reports' and the notifications' outboxes."""
    return SimpleNamespace(monitor_outbox=tmp_path / "outbox", notify_outbox=tmp_path / "notify-outbox")


def test_emit_prints_each_document_as_one_sorted_json_line_and_without_urls_stores_nothing(tmp_path, capsys):
    documents = [{"id": "a", "alert": "stale", "client": "web"}, {"id": "b", "alert": "quota", "client": "db"}]

    emit(documents, server_with(()), places(tmp_path))

    assert capsys.readouterr().out == (
        '{"alert": "stale", "client": "web", "id": "a"}\n{"alert": "quota", "client": "db", "id": "b"}\n'
    )
    assert not (tmp_path / "outbox").exists()


def test_emit_with_urls_stores_each_document_in_the_outbox_for_every_url(tmp_path, capsys):
    documents = [{"id": "a", "alert": "stale"}, {"id": "b", "alert": "quota"}]
    urls = ("https://hooks.example.org/borg", "http://10.0.0.9:8080/alert")

    emit(documents, server_with(urls), places(tmp_path))

    stored = outbox.entries(tmp_path / "outbox")
    assert [(entry.document, entry.pending) for entry in stored] == [
        ({"id": "a", "alert": "stale"}, urls),
        ({"id": "b", "alert": "quota"}, urls),
    ]
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_emit_of_no_documents_prints_and_stores_nothing(tmp_path, capsys):
    emit([], server_with(("https://hooks.example.org/borg",)), places(tmp_path))

    assert capsys.readouterr().out == ""
    assert outbox.size(tmp_path / "outbox") == 0


def test_stale_details_are_json_with_the_last_backup_and_ages_in_whole_seconds():
    assert json.dumps(conditions_of(state(), client(max_age=60))["stale"][1]) == (
        '{"last_backup": "2024-05-06T02:55:00+00:00", "age_s": 300, "max_age_s": 60}'
    )


def test_a_repository_of_a_client_that_may_delete_is_overdue_without_a_baseline_or_a_check():
    old = state(first_seen="2024-01-01T00:00:00+00:00", last_backup=NOW_TEXT)

    active = conditions(client(append_only=False), old, 0, NOW, WEEK, has_repository=True)

    assert list(active) == ["check_failed"]


def test_more_deletes_while_the_deletes_alert_is_raised_are_sent_as_an_update_and_fewer_are_not():
    alerts_state = state()
    transitions(alerts_state, {"deletes": ("3 deleted", {"count": 3})}, "web", "server", NOW_TEXT)

    more = transitions(alerts_state, {"deletes": ("5 deleted", {"count": 5})}, "web", "server", NOW_TEXT)
    same = transitions(alerts_state, {"deletes": ("5 deleted", {"count": 5})}, "web", "server", NOW_TEXT)

    assert [(d["alert"], d["state"], d["message"]) for d in more] == [("deletes", "updated", "5 deleted")]
    assert same == []


def test_a_stale_alert_is_not_sent_again_while_it_holds():
    alerts_state = state()
    transitions(alerts_state, {"stale": ("1d", {"age_s": 1})}, "web", "server", NOW_TEXT)

    assert transitions(alerts_state, {"stale": ("2d", {"age_s": 2})}, "web", "server", NOW_TEXT) == []


def test_tampering_is_sent_again_only_when_more_committed_files_changed():
    alerts_state = state()
    changed = TAMPERING | {"removed": []}
    transitions(alerts_state, {"tampering": ("changed 2", changed)}, "web", "server", NOW_TEXT)

    unreadable = transitions(
        alerts_state,
        {"tampering": ("changed 2; unreadable", changed | {"unreadable": "bad"})},
        "web",
        "server",
        NOW_TEXT,
    )
    more = transitions(
        alerts_state, {"tampering": ("changed 2, 3", changed | {"changed": [2, 3]})}, "web", "server", NOW_TEXT
    )

    assert unreadable == []  # counted as the status counts tampered files: the one changed segment
    assert [(d["alert"], d["state"], d["message"]) for d in more] == [("tampering", "updated", "changed 2, 3")]


def refused_session(at: str, source: str = "10.0.0.5") -> dict:
    return {"event": "borg-session", "client": "web", "refused": "max_sessions", "finished_at": at, "source": source}


def test_refused_sessions_are_counted_on_and_start_afresh_after_an_hour_without_one():
    first = refusals(None, [refused_session("2024-05-06T02:50:00+00:00"), refused_session(NOW_TEXT, "10.0.0.6")], NOW)
    assert first == Refusals("2024-05-06T02:50:00+00:00", NOW_TEXT, 2, "10.0.0.6")
    assert refusals(first, [], NOW) == first
    later = datetime(2024, 5, 6, 3, 30, tzinfo=UTC)
    assert refusals(first, [refused_session(LATER_TEXT)], later) == Refusals(first.first_at, LATER_TEXT, 3, "10.0.0.5")
    quiet = datetime(2024, 5, 6, 4, 0, tzinfo=UTC)
    assert refusals(first, [], quiet) is None
    assert refusals(first, [refused_session("2024-05-06T04:00:00+00:00")], quiet).count == 1


def test_refused_sessions_are_a_condition_for_an_hour_naming_the_count_the_limit_and_the_host():
    found = state(refused={"first_at": "2024-05-06T01:50:00+00:00", "last_at": "2024-05-06T01:59:59+00:00",
                           "count": 5, "source": "10.0.0.5"})  # fmt: skip
    assert "sessions_refused" not in conditions_of(found)  # the last one is more than an hour ago
    found.refused = Refusals("2024-05-06T02:50:00+00:00", "2024-05-06T02:55:00+00:00", 5, "10.0.0.5")

    message, details = conditions_of(found, client(max_sessions=4))["sessions_refused"]

    assert message == (
        "client web: 5 session(s) refused since 2024-05-06T02:50:00+00:00 (the last at 2024-05-06T02:55:00+00:00, "
        "from 10.0.0.5): 4 sessions of the client were open at once, as many as MAX_SESSIONS allows. A broken or "
        "compromised client is opening sessions in a loop: look at the host 10.0.0.5; its backups fail while this "
        "lasts, other clients' do not"
    )
    assert details["count"] == 5 and details["max_sessions"] == 4
    documents = transitions(found, {"sessions_refused": (message, details)}, "web", "backup", NOW_TEXT)
    assert [d["state"] for d in documents] == ["raised"]
    more = (message, details | {"count": 7})
    assert [d["state"] for d in transitions(found, {"sessions_refused": more}, "web", "backup", NOW_TEXT)] == [
        "updated"
    ]
    assert client_state.from_json(client_state.to_json(found), NOW_TEXT).refused == found.refused


def test_an_alert_is_sent_as_a_notification_a_person_reads_when_notify_on_has_alert(tmp_path, capsys):
    alert = document("stale", "raised", "web", "backup-host", "client web: no backup for 1d 2h (MAX_AGE 1d); "
                     "its last backup ended 2024-05-05T01:00:00+00:00", {}, NOW_TEXT, NOW_TEXT)  # fmt: skip

    emit([alert], server_with((), ("json://n.example.org/x",)), places(tmp_path))

    [entry] = outbox.entries(tmp_path / "notify-outbox")
    assert entry.document == {
        "id": alert["id"], "event": "borg-appliance-notification", "kind": "alert",
        "title": "no recent backup: client web on backup-host",
        "body": "No backup for 1d 2h (MAX_AGE 1d); its last backup ended 2024-05-05T01:00:00+00:00.\n"
                f"At {NOW_TEXT}.\nHow to answer it: docs/how-to/answer-an-alert.md",
    }  # fmt: skip
    assert not (tmp_path / "outbox").exists()
    capsys.readouterr()


def test_a_cleared_alert_says_how_long_it_held_and_a_server_alert_names_the_server(tmp_path, capsys):
    alert = document("disk", "cleared", None, "backup-host", "server: cleared: the disk is short", {}, NOW_TEXT,
                     LATER_TEXT)  # fmt: skip

    notice = notice_of(alert)

    assert notice.title == "cleared: the disk of the repositories is filling: backup-host"
    assert notice.body == f"Cleared: the disk is short.\nIt had held since {NOW_TEXT}; it cleared at {LATER_TEXT}."


def test_alerts_are_not_notified_when_notify_on_leaves_them_out(tmp_path, capsys):
    alert = document("stale", "raised", "web", "backup-host", "client web: stale", {}, NOW_TEXT, NOW_TEXT)

    emit([alert], server_with((), ("json://n.example.org/x",), on=("failure",)), places(tmp_path))

    assert outbox.size(tmp_path / "notify-outbox") == 0
    capsys.readouterr()
