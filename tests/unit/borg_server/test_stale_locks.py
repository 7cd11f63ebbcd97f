import os
import threading

from borg_server.sessions import stale_locks

HOLDER = "borg-server@2485378154498.72-0"


def fake_proc(tmp_path, processes):
    """Given {pid: (uids, state)}, return a /proc with a status file per process."""
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "self").mkdir()
    for pid, (uids, state) in processes.items():
        (proc / str(pid)).mkdir()
        (proc / str(pid) / "status").write_text(f"Name:\tborg\nState:\t{state}\nUid:\t{uids}\nGid:\t0\t0\t0\t0\n")
    return proc


def locked_repository(directory, name="main"):
    repository = directory / name
    (repository / "lock.exclusive").mkdir(parents=True)
    (repository / "lock.exclusive" / HOLDER).touch()
    (repository / "lock.roster").write_text('{"exclusive": [["borg-server@2485378154498", 72, 0]]}')
    (repository / "config").write_text("[repository]\n")
    return repository


def test_live_processes_are_those_with_the_uid_that_are_not_zombies(tmp_path):
    proc = fake_proc(tmp_path, {
        10: ("24930\t24930\t24930\t24930", "S (sleeping)"),
        11: ("0\t24930\t0\t0", "R (running)"),
        12: ("24930\t24930\t24930\t24930", "Z (zombie)"),
        13: ("1000\t1000\t1000\t1000", "S (sleeping)"),
    })  # fmt: skip
    assert sorted(stale_locks.live_processes(24930, proc)) == [10, 11]


def test_a_lock_is_removed_with_its_holder_named(tmp_path, caplog):
    repository = locked_repository(tmp_path / "c")
    assert stale_locks.remove_locks("c", tmp_path / "c") == [repository]
    assert sorted(path.name for path in repository.iterdir()) == ["config"]
    assert f"client c: removed the lock of {repository} left by a borg serve that is gone ({HOLDER})" in caplog.text


def test_locks_of_every_repository_in_the_client_directory_are_removed(tmp_path):
    first, second = locked_repository(tmp_path / "c"), locked_repository(tmp_path / "c", "old")
    (tmp_path / "c" / "unlocked").mkdir()
    assert stale_locks.remove_locks("c", tmp_path / "c") == [first, second]


def test_a_repository_that_is_a_symbolic_link_is_not_followed(tmp_path):
    elsewhere = locked_repository(tmp_path / "elsewhere")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "main").symlink_to(elsewhere)
    assert stale_locks.remove_locks("c", tmp_path / "c") == []
    assert (elsewhere / "lock.exclusive" / HOLDER).exists()


def test_a_lock_directory_that_is_a_symbolic_link_is_removed_not_followed(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "precious").touch()
    repository = tmp_path / "c" / "main"
    repository.mkdir(parents=True)
    (repository / "lock.exclusive").symlink_to(target)
    assert stale_locks.remove_locks("c", tmp_path / "c") == [repository]
    assert not os.path.lexists(repository / "lock.exclusive")
    assert (target / "precious").exists()


def test_a_client_without_a_directory_has_nothing_to_clear(tmp_path):
    assert stale_locks.remove_locks("c", tmp_path / "missing") == []


def enter_and_note(client, order):
    with stale_locks.start_guard(client):
        order.append(client)


def test_the_start_guard_lets_one_session_of_a_client_in_at_a_time():
    order = []
    with stale_locks.start_guard("g1"):
        thread = threading.Thread(target=enter_and_note, args=("g1", order))
        thread.start()
        thread.join(0.2)
        order.append("first")
    thread.join(5)
    assert order == ["first", "g1"]


def test_start_guards_of_different_clients_do_not_wait_for_each_other():
    order = []
    with stale_locks.start_guard("g2"):
        thread = threading.Thread(target=enter_and_note, args=("g3", order))
        thread.start()
        thread.join(5)
        assert order == ["g3"]
