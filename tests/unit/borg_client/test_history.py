"""Tests for what the sidecar knows of its repository: the record of backups, and when it has backed up before."""

import pytest

from borg_client import history, journal
from tests.unit.borg_client.samples import REPO_ID, create_json


def test_a_fresh_state_volume_has_not_backed_up_before(config):
    assert history.evidence(config.paths) is None
    assert history.read(config.paths) is None


def test_each_backup_is_recorded_and_counted_while_the_repository_id_stays(config):
    paths = config.paths
    history.record_backup(paths, create_json("web-1"))
    known = history.record_backup(paths, create_json("web-2", end="2024-05-07T03:00:00"))

    assert known == history.Known("ssh://borg@srv:22/./main", REPO_ID, "web-2", "2024-05-07T03:00:00", 2)
    assert history.read(paths) == known
    assert paths.repository_record.stat().st_mode & 0o777 == 0o600
    assert history.evidence(paths) == f"its repository record {paths.repository_record}"


def test_a_new_repository_id_starts_the_count_again(config):
    paths = config.paths
    history.record_backup(paths, create_json("web-1"))
    assert history.record_backup(paths, create_json("web-2", repository_id="f" * 64)).archives_written == 1


def test_output_without_repository_or_archive_keeps_the_record(config):
    paths = config.paths
    history.record_backup(paths, create_json("web-1"))
    assert history.record_backup(paths, '{"archive": {"name": "x"}}') is None
    assert history.read(paths).last_archive == "web-1"


def test_a_successful_run_in_the_journal_a_security_dir_or_a_key_export_each_show_backups_before(config):
    paths = config.paths
    journal.record_run(paths, {"status": "failure"})
    assert history.evidence(paths) is None
    journal.record_run(paths, {"status": "warning"})
    assert history.evidence(paths) == f"a successful backup in its run journal {paths.runs}"
    paths.runs.unlink()
    (paths.security / REPO_ID).mkdir(parents=True)
    assert history.evidence(paths) == f"borg's security dir {paths.security}"
    (paths.security / REPO_ID).rmdir()
    paths.key_export.mkdir()
    paths.key_file.write_text("BORG_KEY\n")
    assert history.evidence(paths) == f"its key export {paths.key_file}"


def test_a_vanished_repository_is_explained_with_what_it_held(config):
    paths = config.paths
    for name in ("web-1", "web-2", "web-3"):
        history.record_backup(paths, create_json(name))

    assert history.vanished(paths, config.repository) == (
        "the repository ssh://borg@srv:22/./main (id 0123456789abcdef…) held the 3 archives this sidecar wrote "
        "into it, the last web-3 on 2024-05-06 03:00; it is gone from the server. Nothing was initialised and "
        "the key export was kept. Restore the server's repository volume if you can; if its data is really "
        "lost, start a new repository with `borg-client init --new-repository`"
    )


def test_a_borg_repo_that_differs_from_where_backups_went_is_called_a_changed_location_not_a_loss(config):
    paths = config.paths
    history.record_backup(paths, create_json("web-1"))

    assert history.vanished(paths, "ssh://borg@srv:22/./mian") == (
        "there is no repository at BORG_REPO ssh://borg@srv:22/./mian, and this sidecar has backed up to another "
        "location, ssh://borg@srv:22/./main (the last archive web-1 on 2024-05-06 03:00): is BORG_REPO mistyped? "
        "Nothing was initialised. Set BORG_REPO back to ssh://borg@srv:22/./main; only if this is a new repository "
        "on purpose, run `borg-client init --new-repository`"
    )


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("ssh://borg@srv:22/./main", "ssh://borg@srv/./main", True),
        ("ssh://borg@SRV:22/./main", "ssh://borg@srv:22/./main", True),
        ("ssh://borg@srv:22/./main", "ssh://borg@srv:2222/./main", False),
        ("ssh://borg@srv:22/./main", "ssh://borg@other:22/./main", False),
        ("ssh://borg@[::1]:22/./main", "ssh://borg@[::1]/./main", True),
        ("/local/path", "ssh://borg@srv:22/./main", None),
    ],
)
def test_two_urls_name_the_same_repository_whatever_the_default_port_or_the_host_s_case(first, second, same):
    assert history.same_location(first, second) is same


def test_a_vanished_repository_without_a_record_names_the_evidence(config):
    paths = config.paths
    journal.record_run(paths, {"status": "success"})
    assert history.vanished(paths, config.repository).startswith(
        f"the repository ssh://borg@srv:22/./main is gone from the server, though a successful backup in its run "
        f"journal {paths.runs} shows backups into it. Nothing was initialised"
    )


def test_set_aside_keeps_record_and_key_export_under_time_suffixed_names(config):
    paths = config.paths
    history.record_backup(paths, create_json("web-1"))
    paths.key_export.mkdir()
    paths.key_file.write_text("OLD KEY\n")
    paths.paper_key_file.write_text("OLD PAPER\n")

    moved = history.set_aside(paths)

    assert not paths.repository_record.exists() and not paths.key_file.exists()
    assert [path.read_text() for path in moved[1:]] == ["OLD KEY\n", "OLD PAPER\n"]
    assert [path.name.split(".replaced-")[0] for path in moved] == ["repository.json", "web.key", "web.key.txt"]
    assert all(path.name.endswith("Z") for path in moved)
