"""Tests for replication without Docker: the settings, the primary's reader, and how the replica judges a listing."""

import dataclasses
import hashlib
import io
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from borg_common.settings import ConfigError
from borg_server.config.reader import load
from borg_server.provision import authorized_keys, start
from borg_server.records import state_file
from borg_server.records.client_state import ClientState, DeleteGroup, ManifestShrink, SegmentPrint, Tampering
from borg_server.records.replica_state import Held, ReplicaState, from_json, to_json
from borg_server.replica import alerts, copy, held
from borg_server.replica import primary as replica_primary
from borg_server.repository import deletes, segments, watch
from borg_server.sessions import read_only, replica_source, session
from borg_server.system.paths import Paths
from borg_server.system.ssh_keys import parse_public_key
from tests.unit.borg_server.borg_files import MANIFEST_KEY, init_create_create_delete, put, write_repository
from tests.unit.borg_server.sample_keys import ED25519, ED25519_OTHER


def replica_environment(tmp_path, **extra) -> dict[str, str]:
    key = tmp_path / "id_replica"
    key.write_text("private\n")
    return {"REPLICATE_FROM": "ssh://borg@primary:2222", "REPLICATE_HOST_KEY": f"primary {ED25519}",
            "REPLICATE_SSH_KEY_FILE": str(key), **extra}  # fmt: skip


def problems_of(environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load(environ, "backup")
    return error.value.problems


def test_a_replica_needs_no_client_and_reads_its_settings_with_their_defaults(tmp_path):
    config = load(replica_environment(tmp_path), "replica")
    settings = config.replication
    assert config.clients == () and (settings.user, settings.host, settings.port) == ("borg", "primary", 2222)
    assert settings.host_key.blob == parse_public_key(ED25519).blob
    assert (settings.cron, settings.keep_removed, settings.max_lag) == ("0 * * * *", 7 * 86400, 26 * 3600)
    assert settings.known_hosts_line == f"[primary]:2222 {ED25519.rsplit(' ', 1)[0]}\n"


def test_a_replica_may_be_configured_in_the_yaml_file(tmp_path):
    environ = replica_environment(tmp_path)
    config_file = tmp_path / "server.yaml"
    config_file.write_text(
        f"replicate_from: {environ['REPLICATE_FROM']}\nreplicate_host_key: {ED25519}\n"
        "replica_keep_removed: 1h\nclients: {}\n"
    )
    environ = {"BORG_SERVER_CONFIG": str(config_file), "REPLICATE_SSH_KEY_FILE": environ["REPLICATE_SSH_KEY_FILE"]}
    settings = load(environ, "replica").replication
    assert (settings.host, settings.port, settings.keep_removed) == ("primary", 2222, 3600)


def test_the_keep_period_may_be_seconds_for_tests_and_zero(tmp_path):
    assert load(replica_environment(tmp_path, REPLICA_KEEP_REMOVED="20s"), "r").replication.keep_removed == 20
    assert load(replica_environment(tmp_path, REPLICA_KEEP_REMOVED="0"), "r").replication.keep_removed == 0


def test_bad_replica_settings_are_each_one_line_naming_the_setting(tmp_path):
    environ = replica_environment(tmp_path, REPLICATE_FROM="http://primary", REPLICATE_CRON="every hour",
                                  REPLICA_MAX_LAG="10s", REPLICATE_HOST_KEY="not a key",
                                  BORG_CLIENTS="web", BORG_CLIENT_WEB_ADMIN_KEY="generate")  # fmt: skip
    problems = problems_of(environ)
    assert problems[0] == "REPLICATE_FROM: is not ssh://user@host[:port] (e.g. ssh://replica@primary:22)"
    assert any(p.startswith("REPLICATE_HOST_KEY: ") for p in problems)
    assert any(p.startswith("REPLICATE_CRON: 'every hour' is not a cron expression") for p in problems)
    assert "REPLICA_MAX_LAG: 10s is out of range 1m..52w" in problems
    assert "BORG_CLIENT_WEB_ADMIN_KEY: is set on a replica; no key can write to a replica" in problems


def test_replica_settings_without_replicate_from_are_a_mistake():
    problems = problems_of({"BORG_CLIENTS": "web", "REPLICA_KEEP_REMOVED": "1d"})
    assert problems == ["REPLICA_KEEP_REMOVED: is set, but REPLICATE_FROM is not: this server is no replica"]


def test_a_replica_serves_the_status_page_with_the_same_checks_as_a_primary(tmp_path):
    environ = replica_environment(tmp_path, STATUS_PORT="8080", STATUS_NO_PASSWORD="yes")
    assert load(environ, "replica").status_port == 8080
    assert problems_of(replica_environment(tmp_path, STATUS_PORT="8080")) == [
        "STATUS_PORT: the status page needs a password: set STATUS_PASSWORD_FILE (a secret), or STATUS_NO_PASSWORD=yes "
        "if only trusted hosts can reach this port (e.g. behind a reverse proxy that asks for one)"
    ]


def test_the_replica_key_is_forced_into_the_reader_with_restrict():
    key = parse_public_key(ED25519)
    line = authorized_keys.replica_line(key)
    assert (
        line
        == f'restrict,command="/usr/local/bin/borg-server serve-replica --fingerprint {key.fingerprint}" {key.line}'
    )
    assert load({"BORG_CLIENTS": "web", "BORG_REPLICA_KEY": "generate"}, "b").replica_key.generate


def test_on_a_replica_a_client_key_only_reads(paths):
    client = load({"BORG_CLIENTS": "web", "BORG_CLIENT_WEB_KEY": ED25519_OTHER}, "b").clients[0]
    grants = authorized_keys.grants_for(client, client.key, replica=True)
    assert [grant.role for grant in grants] == ["read"]
    assert session.serve_argv("web", "read", None, paths) == [
        "/usr/local/bin/borg-server", "serve-read", str(paths.client_directory("web"))
    ]  # fmt: skip


def test_the_read_only_serve_allows_no_method_that_writes():
    writing = {"put", "delete", "commit", "destroy", "save_key", "check", "break_lock",
               "commit_nonce_reservation", "get_free_nonce", "inject_exception"}  # fmt: skip
    assert not writing & set(read_only.READ_METHODS)


def ask(paths, server, *requests: dict) -> list:
    """Send requests to the reader; return its answers: (header, body bytes) each."""
    reader = io.BytesIO(b"".join(json.dumps(request).encode() + b"\n" for request in requests))
    writer = io.BytesIO()
    code = replica_source.serve(server, paths, reader, writer)
    output, answers = io.BytesIO(writer.getvalue()), []
    while line := output.readline():
        header = json.loads(line)
        answers.append((header, output.read(header["size"]) if header.get("ok") else b""))
    return [code, *answers]


LAST = len(init_create_create_delete()) - 1  # the last committed segment


@pytest.fixture
def primary(paths):
    repository = paths.client_repository("web")
    write_repository(repository, [*init_create_create_delete(), [put(MANIFEST_KEY)]])  # the last: not committed
    for name in ("config", f"index.{LAST}", f"hints.{LAST}", f"integrity.{LAST}"):
        (repository / name).write_text(name)
    return load({"BORG_CLIENTS": "web"}, "b")


def test_the_reader_lists_only_committed_segments_and_sends_them(paths, primary):
    code, (header, body), (sent, data) = ask(paths, primary, {"op": "list"}, {"op": "get", "client": "web",
                                                                              "file": "segment:2"})  # fmt: skip
    listing = json.loads(body)["web"]
    assert code == 0 and listing["last_commit"] == LAST and listing["complete"]
    assert sorted(map(int, listing["segments"])) == list(range(LAST + 1))  # the next is after the last commit
    assert data == (paths.client_repository("web") / "data" / "0" / "2").read_bytes()
    assert listing["segments"]["2"][0] == len(data)


def test_the_reader_sends_nothing_it_did_not_list(paths, primary):
    answers = ask(paths, primary, {"op": "get", "client": "web", "file": "config"}, {"op": "list"},
                  {"op": "get", "client": "web", "file": f"segment:{LAST + 1}"},
                  {"op": "get", "client": "web", "file": "../../../etc/passwd"},
                  {"op": "get", "client": "../web", "file": "config"})  # fmt: skip
    refused = [header for header, _ in answers[1:] if not header["ok"]]
    assert [header["error"] for header in refused] == ["not a file of the last list"] * 4


def test_the_reader_never_follows_a_symlink_and_stops_at_a_malformed_request(paths, primary, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("secret")
    readme = paths.client_repository("web") / "README"
    readme.symlink_to(secret)
    code, _listing, (header, _) = ask(paths, primary, {"op": "list"}, {"op": "get", "client": "web", "file": "README"})
    assert header == {"ok": False, "error": "gone"}
    code, (header, _) = ask(paths, primary, {"op": "put", "file": "config"})
    assert code == 2 and not header["ok"]


def prints(**content) -> dict[int, SegmentPrint]:
    return {int(n[1:]): SegmentPrint(size, sha, 0, 0, 0) for n, (size, sha) in content.items()}


def test_a_changed_shrunk_or_vanished_segment_is_a_mismatch_and_never_set_aside():
    found = ClientState(first_seen="t", segments=prints(s1=(10, "a"), s2=(10, "b"), s3=(10, "c"), s4=(10, "d")))
    found.replica = ReplicaState(compacted_at="2026-01-01T00:00:00+00:00")
    listed = {"segments": {"1": [10, "a"], "2": [10, "x"], "3": [9, "c"]}, "append_only": True,
              "compacted_at": "2026-01-01T00:00:00+00:00"}  # fmt: skip
    assert copy.judge(found, listed, accept=False) == ({2: "changed", 3: "truncated", 4: "removed"}, [])
    assert copy.judge(found, listed, accept=True) == ({}, [2, 3, 4])


def test_a_segment_removed_by_a_new_compaction_is_set_aside():
    found = ClientState(first_seen="t", segments=prints(s1=(10, "a"), s2=(10, "b")))
    found.replica = ReplicaState(compacted_at=None)
    listed = {"segments": {"2": [10, "b"], "5": [3, "e"]}, "append_only": True, "compacted_at": "2026-12-01T00:00:00"}
    assert copy.judge(found, listed, accept=False) == ({}, [1])


def test_the_ssh_command_pins_the_host_key_and_uses_only_the_replica_key(tmp_path):
    config = load(replica_environment(tmp_path), "replica").replication
    argv = replica_primary.ssh_argv(config, Path("/run/k"), Path("/run/known"))
    assert argv[:6] == ["ssh", "-T", "-i", "/run/k", "-p", "2222"] and argv[-2:] == ["borg@primary", "replica"]
    assert "StrictHostKeyChecking=yes" in argv and "UserKnownHostsFile=/run/known" in argv
    assert "IdentitiesOnly=yes" in argv and "BatchMode=yes" in argv


@pytest.mark.parametrize(("mode", "copied"), [(0o444, True), (0o644, True), (0o400, False)])
def test_the_replica_key_ssh_would_refuse_is_read_from_a_private_copy_on_the_tmpfs_for_the_session(
    tmp_path, monkeypatch, mode, copied
):
    config = load(replica_environment(tmp_path), "replica").replication
    config.ssh_key_file.chmod(mode)
    paths = Paths(repositories=tmp_path / "srv", state=tmp_path / "state", runtime=tmp_path / "run",
                  volatile=tmp_path / "shm")  # fmt: skip
    paths.volatile.mkdir()
    seen = {}

    def converse(argv, errors):
        key = Path(argv[argv.index("-i") + 1])
        seen.update(key=key, mode=key.stat().st_mode & 0o777, text=key.read_text())
        return SimpleNamespace(stdin=io.BytesIO(), wait=lambda timeout: 0)

    monkeypatch.setattr(replica_primary, "converse", converse)
    session = replica_primary.Primary(config, paths)
    assert seen["text"] == "private\n" and (seen["key"].parent == paths.volatile) is copied
    assert seen["mode"] == (0o600 if copied else mode) and seen["key"].exists()
    session.close()
    assert list(paths.volatile.iterdir()) == [] and not (paths.replica_ssh / "id_replica").exists()


def test_the_replica_state_survives_its_json():
    replica = ReplicaState("a", 3, 4, "b", 1, "c", 99, {2: "changed"}, (Held(1, "t", "1.t"),))
    assert from_json(json.loads(json.dumps(to_json(replica)))) == replica


def test_a_copy_behind_its_max_lag_and_a_mismatch_are_alerts():
    from datetime import UTC, datetime

    found = ClientState(first_seen="2026-11-01T00:00:00+00:00")
    found.replica = ReplicaState(last_copy_at="2026-11-30T00:00:00+00:00", mismatch={7: "changed"})
    active = alerts.conditions("web", found, datetime(2026, 12, 1, 3, tzinfo=UTC), 26 * 3600)
    assert sorted(active) == ["replica_lag", "replica_mismatch"]
    assert active["replica_mismatch"][1] == {"segments": {"7": "changed"}, "count": 1}
    assert "27h" in active["replica_lag"][0] or "1d 3h" in active["replica_lag"][0]


def test_a_set_aside_segment_the_state_lost_is_still_deleted_after_the_keep_period(paths):
    from datetime import UTC, datetime

    directory = paths.replica_held("web")
    directory.mkdir(parents=True)
    (directory / held.held_name(5, "2026-12-01T13:30:00+00:00")).write_bytes(b"segment")
    kept = held.expire_held(paths, "web", (), 20, datetime(2026, 12, 1, 13, 30, 10, tzinfo=UTC))
    assert kept == (Held(5, "2026-12-01T13:30:00+00:00", "5.2026-12-01T13-30-00+00-00"),)
    assert held.expire_held(paths, "web", kept, 20, datetime(2026, 12, 1, 13, 31, tzinfo=UTC)) == ()
    assert list(directory.iterdir()) == []


def test_the_replica_login_has_a_file_of_its_own_with_the_replica_key_alone():
    key = parse_public_key(ED25519)
    text = authorized_keys.render_replica(key)
    assert text.splitlines()[1:] == [authorized_keys.replica_line(key)]
    assert authorized_keys.render_replica(None).splitlines()[1:] == []
    template = (Path(start.__file__).parent / "sshd_config.template").read_text()
    assert "\nAllowUsers borg replica\n" in template
    assert template.rstrip().endswith("Match User replica\n    AuthorizedKeysFile ${replica_authorized_keys}")


def test_a_primary_exports_the_replica_login_as_replicate_from():
    from borg_server.provision import pairing

    config = load({"BORG_CLIENTS": "web", "BORG_REPLICA_KEY": "generate", "BORG_SERVER_NAME": "primary"}, "b")
    assert pairing.replicate_url(config) == "ssh://replica@primary:22"
    assert load(replica_environment_with("ssh://replica@primary:22"), "r").replication.user == "replica"


def replica_environment_with(url: str) -> dict[str, str]:
    return {"REPLICATE_FROM": url, "REPLICATE_HOST_KEY": ED25519, "REPLICATE_SSH_KEY_FILE": __file__}


def test_the_broker_gives_the_replica_login_the_reader_and_nothing_else(paths, monkeypatch, caplog):
    import os
    import socket

    from borg_server.sessions import broker

    monkeypatch.setattr(session, "run", lambda *_arguments: pytest.fail("a client session ran"))
    pipes = [os.pipe() for _ in range(3)]
    left, right = socket.socketpair()
    with left:
        request = {"client": "web", "role": "append", "fingerprint": "x", "quota": None}
        broker.send(left, request, fds=(pipes[0][0], pipes[1][1], pipes[2][1]))
        broker.handle(right, paths, os.geteuid() + 4242, replica_uid=os.geteuid())
        assert left.recv(100) == b""
    for reader, writer in pipes:
        os.close(reader)
        os.close(writer)
    assert "broker: refused a request: the replica login may only read for the replica, not append" in caplog.text


def test_the_reader_reads_again_and_lists_what_its_monitor_finds_damaged_and_where_its_review_is(paths, primary):
    repository = paths.client_repository("web")
    two = repository / "data" / "0" / "2"
    stale = replica_source.baseline.stat_print(two)
    two.write_bytes(two.read_bytes()[:-1] + b"!")  # damaged; the monitor's print of it still has the old stat
    found = ClientState(first_seen="t", scanned=LAST, segments={2: dataclasses.replace(stale, sha256="old")})
    found.tampering = Tampering(changed=(2,), unreadable=f"{repository}/data/0/4: crc32 mismatch at offset 8")
    found.deletes = [DeleteGroup(10, 1, {"delete": 1}, (), None, "t")]
    state_file.save(paths.monitor_state("web"), found)
    _code, (_header, body) = ask(paths, primary, {"op": "list"})
    listing = json.loads(body)["web"]
    assert listing["damaged"] == {"2": "changed", "4": "unreadable"}
    assert listing["segments"]["2"][1] == hashlib.sha256(two.read_bytes()).hexdigest()
    assert listing["reviewed_through"] == 9  # the first pending delete is in segment 10


def test_the_monitor_review_is_where_its_first_pending_delete_or_manifest_shrink_begins():
    found = ClientState(first_seen="t")
    assert replica_source.reviewed_through(found) is None  # never scanned
    found.scanned = 13
    assert replica_source.reviewed_through(found) == 13
    found.manifest_shrinks = [ManifestShrink(8, 4, 100, 50, "t")]
    found.deletes = [DeleteGroup(10, 1, {"delete": 1}, (), None, "t")]
    assert replica_source.reviewed_through(found) == 7


def test_a_segment_the_primary_finds_damaged_is_a_mismatch_though_its_listed_hash_is_the_copy_s():
    found = ClientState(first_seen="t", segments=prints(s1=(10, "a"), s2=(10, "b")))
    found.replica = ReplicaState()
    listed = {"segments": {"1": [10, "a"], "2": [10, "b"]}, "damaged": {"2": "unreadable", "1": "bogus"}}
    assert copy.judge(found, listed, accept=False) == ({2: "unreadable"}, [])
    assert copy.judge(found, listed, accept=True) == ({}, [2])
    listed["segments"]["2"] = [10, "x"]  # where the hash tells, it names the kind
    assert copy.judge(found, listed, accept=False) == ({2: "changed"}, [])


def test_the_copy_records_the_primary_review_no_further_than_its_own_commit():
    assert copy.reviewed({"reviewed_through": 9}, 13) == 9
    assert copy.reviewed({"reviewed_through": 20}, 13) == 13
    assert copy.reviewed({"reviewed_through": "9"}, 13) is None
    assert copy.reviewed({"reviewed_through": True}, 13) is None
    assert copy.reviewed({}, 13) is None


def test_a_promoted_copy_reviews_only_the_deletes_its_old_primary_had_not(paths):
    repository = write_repository(paths.client_repository("web"), init_create_create_delete())
    for reviewed, found_deletes in ((10, []), (9, [10])):  # the delete of archive one is in segment 10
        found = ClientState(first_seen="t")
        found.replica = ReplicaState(copied_commit=LAST, reviewed_through=reviewed)
        assert watch.adopt_copy(found, repository) == reviewed
        assert found.replica is None and found.scanned == reviewed
        deletes.scan_deletes(found, repository, "t")
        assert [group.segment for group in found.deletes] == found_deletes


def test_a_copy_that_does_not_say_where_the_review_was_is_reviewed_whole(paths):
    repository = write_repository(paths.client_repository("web"), init_create_create_delete())
    found = ClientState(first_seen="t")
    found.replica = ReplicaState(copied_commit=LAST)
    assert watch.adopt_copy(found, repository) is None
    assert found.replica is None and found.scanned is None
    deletes.scan_deletes(found, repository, "t")
    assert [group.segment for group in found.deletes] == [10]


def test_a_start_as_primary_adopts_the_copies_a_replica_left_and_says_so(paths, caplog):
    caplog.set_level(logging.INFO)
    write_repository(paths.client_repository("web"), init_create_create_delete())
    found = ClientState(first_seen="t")
    found.replica = ReplicaState(copied_commit=LAST, reviewed_through=LAST)
    state_file.save(paths.monitor_state("web"), found)
    start.adopt_promoted_copies(load({"BORG_CLIENTS": "web db"}, "b"), paths)
    adopted = state_file.load(paths.monitor_state("web"))
    assert adopted.replica is None and adopted.scanned == LAST
    assert (
        f"client web: a replica's copy, now this primary's; the deletes the old primary reviewed through segment "
        f"{LAST} are not reported again"
    ) in caplog.text


def unreachable_round(paths, server, error, capsys) -> list[dict]:
    alerts.watch_primary(server, paths, error, datetime(2026, 12, 1, 3, tzinfo=UTC))
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_a_replica_raises_replica_unreachable_after_three_rounds_in_a_row_and_clears_it_at_the_next_good_one(
    paths, tmp_path, capsys
):
    server = load(replica_environment(tmp_path), "replica")
    error = "the primary closed the session: ssh: Could not resolve hostname primary: Name or service not known"
    assert unreachable_round(paths, server, error, capsys) == []
    assert unreachable_round(paths, server, None, capsys) == []  # a good round starts the count again
    assert unreachable_round(paths, server, error, capsys) == []
    assert unreachable_round(paths, server, error, capsys) == []
    (raised,) = unreachable_round(paths, server, error, capsys)
    assert (raised["alert"], raised["state"], raised["client"]) == ("replica_unreachable", "raised", None)
    assert raised["message"] == (
        "server: the replica could not reach its primary primary:2222 in 3 replication rounds in a row (since "
        f"2026-12-01T03:00:00+00:00): {error}; the copies stay as they were. Check that the primary runs and that "
        "this replica reaches it (REPLICATE_FROM), then run borg-server replicate"
    )
    assert raised["details"]["failed_rounds"] == 3
    assert unreachable_round(paths, server, error, capsys) == []  # raised once, not at every round
    (cleared,) = unreachable_round(paths, server, None, capsys)
    assert cleared["state"] == "cleared"
    assert cleared["message"] == "server: cleared: the replica cannot reach its primary"
    assert alerts.load_contact(paths) == alerts.PrimaryContact(last_round_at="2026-12-01T03:00:00+00:00")


def test_the_replica_metrics_count_the_rounds_that_could_not_reach_the_primary(paths, tmp_path, capsys):
    from borg_server.replica import status as replica_status

    server = load(replica_environment(tmp_path), "replica")
    for _ in range(3):
        unreachable_round(paths, server, "the primary closed the session: ssh: Connection refused", capsys)
    text = replica_status.metrics(paths)
    assert "\nborg_appliance_replica_primary_failed_rounds 3\n" in text
    assert '\nborg_appliance_replica_server_alert{alert="replica_unreachable"} 1\n' in text
    unreachable_round(paths, server, None, capsys)
    text = replica_status.metrics(paths)
    assert "\nborg_appliance_replica_primary_failed_rounds 0\n" in text
    assert '\nborg_appliance_replica_server_alert{alert="replica_unreachable"} 0\n' in text


def test_a_segment_error_names_its_segment():
    assert segments.segment_named("/srv/borg/web/main/data/1/1234: crc32 mismatch at offset 8") == 1234
    assert segments.segment_named("/srv/borg/web/main/config is missing") is None
