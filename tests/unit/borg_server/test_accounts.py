"""Tests for client accounts: uids derived from the name, recorded, never reused; their passwd lines."""

import json
import os

import pytest

from borg_server.system import accounts
from borg_server.system.accounts import Account, assign, derived_uid
from borg_server.system.commands import CommandFailed


def test_a_derived_uid_is_stable_and_within_the_range_below_65536():
    assert derived_uid("web") == derived_uid("web")
    assert derived_uid("web") != derived_uid("db")
    for name in ("web", "db", "a", "z" * 32):
        assert 10000 <= derived_uid(name) < 60000


def test_a_new_client_gets_its_derived_uid():
    assert assign(["web"], {}, set()) == {"web": Account("web", derived_uid("web"))}


def test_a_recorded_client_keeps_its_uid_even_if_it_would_derive_another():
    recorded = {"web": Account("web", 12345, reowned=True)}

    assert assign(["web"], recorded, set()) == recorded


def test_a_uid_recorded_for_another_client_is_never_reused():
    recorded = {"old": Account("old", derived_uid("web"))}  # a removed client keeps its record

    assigned = assign(["web"], recorded, set())

    assert assigned["old"] == Account("old", derived_uid("web"))
    assert assigned["web"].uid == derived_uid("web") + 1


def test_a_uid_taken_by_puid_or_a_system_account_probes_the_next_free_one():
    first = derived_uid("web")

    assert assign(["web"], {}, {first, first + 1})["web"].uid == first + 2


def test_probing_wraps_around_at_the_end_of_the_range():
    taken = {uid for uid in range(10000, 60000) if uid != 10003}

    assert assign(["web"], {}, taken)["web"].uid == 10003


def test_two_new_clients_never_get_the_same_uid(monkeypatch):
    monkeypatch.setattr(accounts, "derived_uid", lambda _name: 20000)

    assigned = assign(["web", "db"], {}, set())

    assert (assigned["web"].uid, assigned["db"].uid) == (20000, 20001)


def test_the_registry_is_written_root_only_and_read_back(paths):
    registry = {"web": Account("web", 12345, reowned=True), "db": Account("db", 23456)}

    assert accounts.save(paths.accounts, registry) is True
    assert accounts.save(paths.accounts, registry) is False

    assert accounts.load(paths.accounts) == registry
    assert paths.accounts.stat().st_mode & 0o777 == 0o600
    assert json.loads(paths.accounts.read_text())["clients"]["db"] == {"uid": 23456, "reowned": False}


def test_ensure_keeps_a_removed_client_in_the_registry(paths):
    paths.state.mkdir(exist_ok=True)
    first = accounts.ensure(paths, ["web", "old"], 1000, 1000)

    second = accounts.ensure(paths, ["web"], 1000, 1000)

    assert second == first
    assert accounts.load(paths.accounts)["old"] == first["old"]


def test_an_unreadable_registry_stops_the_start_instead_of_changing_uids(paths):
    paths.state.mkdir(exist_ok=True)
    paths.accounts.write_text("{not json")

    with pytest.raises(OSError, match="uids must not change"):
        accounts.load(paths.accounts)


def test_lookup_of_a_client_without_an_account_says_so(paths):
    with pytest.raises(accounts.UnknownClient, match="client web has no account on this server yet"):
        accounts.lookup(paths, "web")


def test_passwd_and_group_lines_name_every_client_account_without_login(paths, tmp_path):
    passwd, group = tmp_path / "passwd", tmp_path / "group"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\nborg-gone:!:15000:15000::/x:/usr/sbin/nologin\n")
    group.write_text("root:x:0:\nborg:x:1000:\n")

    accounts.write_entries([Account("web", 12345)], paths, passwd, group)
    accounts.write_entries([Account("web", 12345)], paths, passwd, group)

    assert passwd.read_text() == (
        "root:x:0:0:root:/root:/bin/bash\n"
        f"borg-web:!:12345:12345:borg-appliance client web:{paths.client_home('web')}:/usr/sbin/nologin\n"
    )
    assert group.read_text() == "root:x:0:\nborg:x:1000:\nborg-web:!:12345:\n"


def test_a_puid_that_is_a_clients_uid_stops_the_start_with_a_message_naming_puid(paths):
    paths.state.mkdir(exist_ok=True)
    accounts.save(paths.accounts, {"web": Account("web", 12345)})

    with pytest.raises(CommandFailed, match=r"PUID/PGID 12345/1000: 12345 is the uid of client web's account"):
        accounts.ensure(paths, ["web"], 12345, 1000)


def test_an_unreadable_registry_stops_the_start_without_a_traceback(paths):
    paths.state.mkdir(exist_ok=True)
    paths.accounts.write_text("[]")

    with pytest.raises(CommandFailed, match="accounts.json cannot be read"):
        accounts.ensure(paths, ["web"], 1000, 1000)


@pytest.mark.skipif(os.geteuid() != 0, reason="client directories owned by client uids need root")
@pytest.mark.parametrize("registry", ["missing", "symlink", "directory", "fifo"])
def test_without_a_usable_registry_the_uids_are_recovered_from_the_client_directories_owners(paths, registry):
    paths.state.mkdir(exist_ok=True)
    for name, uid in (("web", 23456), ("gone", derived_uid("new"))):  # gone: removed, its data kept
        paths.client_directory(name).mkdir(parents=True)
        os.chown(paths.client_directory(name), uid, uid)
    if registry == "symlink":
        paths.accounts.symlink_to("/etc/shadow")
    elif registry == "directory":
        paths.accounts.mkdir()
    elif registry == "fifo":
        os.mkfifo(paths.accounts)  # reading it would block the start for ever

    assigned = accounts.ensure(paths, ["web", "new"], 1000, 1000)

    assert assigned["web"].uid == 23456
    assert assigned["gone"].uid == derived_uid("new") != assigned["new"].uid
    assert accounts.load(paths.accounts) == assigned
    assert len(list(paths.state.glob("accounts.json.unexpected-*"))) == (registry != "missing")
