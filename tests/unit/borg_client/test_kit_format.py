"""The recovery kit's text: exact as printed, and read back (kit, plain key export, paper form) by import-key."""

import base64
from datetime import UTC, datetime

import pytest

from borg_client import kit_format

REPOSITORY_ID = "a1876e6e7891af358db31f931be2e718e556785df44632e577023a8c4c128abd"
# The shape of a `borg key export` with no key in it: borg's msgpack {"algorithm": "sha256", "data": …} around test
# bytes. Made here, not written out, so that this file holds nothing a scanner takes for a key.
KEY = f"{kit_format.KEY_MARK} {REPOSITORY_ID}\n" + base64.encodebytes(
    b"\x86\xa9algorithm\xa6sha256\xa4data\xc4\x76" + b"test bytes for the recovery kit's tests; no borg key here." * 2
).decode("ascii")
PAPER = f"""To restore key use borg key import --paper /path/to/repo

{kit_format.PAPER_HEADER}
id: 2 / a1876e 6e7891 af358d / 6b5f4b 1c0d53 - 44
 1: 86a961 6c676f 726974 686da6 736861 323536 - 14
 2: a46461 7461 - 8b
"""
MADE = datetime(2026, 12, 6, 1, 23, tzinfo=UTC)
MARK, HEADER = kit_format.KEY_MARK, kit_format.PAPER_HEADER  # a key export's marks, as messages name them
HOSTS = ["[srv]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID26CUVU"]


def paper(lines: list[bytes]) -> str:
    """Return a paper key of the given 18-byte lines with correct checksums, as borg prints it."""
    data = b"".join(lines)
    repository_id, total = "a1876e6e7891af358d", kit_format.checksum(data, 12)
    identity = kit_format.checksum(f"{len(lines)}/{repository_id}/{total}".encode(), 2)
    text = f"{kit_format.PAPER_HEADER}\nid: {len(lines)} / {repository_id} / {total} - {identity}\n"
    for number, line in enumerate(lines, 1):
        text += f"{number:2d}: {line.hex()} - {kit_format.checksum(number.to_bytes(2, 'big') + line, 2)}\n"
    return text


GOOD_PAPER = paper([b"borg paper key 1..", b"line two"])


def test_the_kit_says_what_restores_the_client_and_never_holds_the_passphrase():
    text = kit_format.render("app", "ssh://borg@srv:22/./main", "keyfile-blake2", KEY, PAPER, HOSTS, MADE)

    assert (
        text
        == f"""Borg Appliance recovery kit of client app
=========================================

Keep this file off this host, together with the repository passphrase. The passphrase is NOT in
this file, and must never be: keep it apart (a password manager, a sealed envelope). Without the
key below and the passphrase, the backups cannot be read.

made:        2026-12-06 01:23 UTC
client:      app
repository:  ssh://borg@srv:22/./main
encryption:  keyfile-blake2

The backup server's host key, pinned by this sidecar (known_hosts):
  [srv]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID26CUVU

If this host is lost (docs/how-to/host-lost.md):
 1. On the new host, pair a new sidecar as before: the server's pairing export for app
    (or BORG_SSH_KEY_FILE with the client's key and BORG_KNOWN_HOSTS_FILE with the host key above).
 2. Give it the same CLIENT_NAME, BORG_REPO and BORG_ENCRYPTION as above, the passphrase in
    BORG_PASSPHRASE_FILE, a new empty state volume, and this file as BORG_KEY_IMPORT_FILE
    (or run `borg-client import-key /path/to/this/file` once).
 3. borg-client list, then borg-client restore ARCHIVE --target /tmp/restore, and
    borg-client restore-dump ARCHIVE CONTAINER for the databases.
 4. Backups go on into the same repository: nothing to initialise, nothing to delete.
 5. Save the new sidecar's kit (borg-client recovery-kit), then borg-client recovery-kit --confirm-saved.

The repository key, file form (borg-client import-key reads it from this file):

{KEY}
The same key, paper form (to type in if no copy of this file survives: borg key import --paper):

{kit_format.PAPER_HEADER}
id: 2 / a1876e 6e7891 af358d / 6b5f4b 1c0d53 - 44
 1: 86a961 6c676f 726974 686da6 736861 323536 - 14
 2: a46461 7461 - 8b
"""
    )


def test_a_printed_kit_reads_back_to_its_key_client_repository_and_encryption():
    text = kit_format.render("app", "ssh://borg@srv:22/./main", "keyfile-blake2", KEY, GOOD_PAPER, HOSTS, MADE)

    kit = kit_format.parse(text)

    assert (kit.key, kit.client, kit.repository, kit.encryption) == (
        KEY, "app", "ssh://borg@srv:22/./main", "keyfile-blake2"
    )  # fmt: skip
    assert kit.repository_id == "a1876e6e7891af358db31f931be2e718e556785df44632e577023a8c4c128abd"  # REPOSITORY_ID
    assert len(kit.paper) == 3


def test_a_kit_saved_from_a_terminal_with_crlf_line_ends_reads_back_the_same():
    text = kit_format.render("app", "ssh://borg@srv:22/./main", "keyfile-blake2", KEY, GOOD_PAPER, HOSTS, MADE)

    assert kit_format.parse(text.replace("\n", "\r\n")) == kit_format.parse(text)


def test_a_plain_borg_key_export_reads_as_a_key_without_the_kits_fields():
    kit = kit_format.parse(KEY)

    assert kit == kit_format.Kit(key=KEY)


def test_a_paper_key_reads_as_the_answers_borg_key_import_paper_asks_for():
    kit = kit_format.parse(GOOD_PAPER)

    lines = GOOD_PAPER.splitlines()
    assert kit.key is None
    assert kit.paper == (lines[1].removeprefix("id: "), lines[2].split(": ", 1)[1], lines[3].split(": ", 1)[1])
    assert kit.repository_id == "a1876e6e7891af358d"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("my passphrase is elsewhere\n", f"holds no borg key: neither a line {MARK} followed by the repository id "
         f"(borg key export) nor {HEADER} (borg key export --paper)"),
        (KEY.split("\n")[0] + "\n\n", f"holds a {MARK} line, but the key's lines after it are missing or damaged "
         "(cut or changed)"),
        (KEY[:-3] + "\n", f"holds a {MARK} line, but the key's lines after it are missing or damaged "
         "(cut or changed)"),
        (GOOD_PAPER.replace("id: 2 ", "id: 3 "), "the paper key's id line does not match its checksum: "
         "it was mistyped"),
        (GOOD_PAPER.replace(" 1: 626f", " 1: 636f"), "line 1 of the paper key does not match its checksum: it was "
         "mistyped"),
        ("\n".join(GOOD_PAPER.splitlines()[:3]) + "\n", "the paper key says 2 lines, but line 2 is missing"),
        (f"{HEADER}\n", f"holds {HEADER}, but no line id: N / … / … - XX after it"),
    ],
    ids=["no key", "key lines missing", "key cut", "paper id mistyped", "paper line mistyped", "paper line missing",
         "paper without id"],
)  # fmt: skip
def test_a_file_with_no_usable_key_is_refused_saying_what_is_wrong(text, message):
    with pytest.raises(kit_format.Unreadable) as refused:
        kit_format.parse(text)

    assert str(refused.value) == message


def test_reading_a_file_names_it_and_refuses_what_is_no_kit(tmp_path):
    big, binary, kit = tmp_path / "big", tmp_path / "binary", tmp_path / "kit.txt"
    big.write_text("x" * (kit_format.READ_LIMIT + 1))
    binary.write_bytes(b"\xff\xfe\x00")
    kit.write_text(KEY)

    assert kit_format.read(kit).key == KEY
    for path, message in (
        (tmp_path, f"{tmp_path} is not a file: give the recovery kit (or borg key export) you saved"),
        (big, f"{big} is over 64 kB: not a recovery kit or borg key export"),
        (binary, f"{binary} is not text: not a recovery kit or borg key export"),
        (tmp_path / "none", f"{tmp_path / 'none'} is not a file: give the recovery kit (or borg key export) you saved"),
    ):
        with pytest.raises(kit_format.Unreadable) as refused:
            kit_format.read(path)
        assert str(refused.value) == message
