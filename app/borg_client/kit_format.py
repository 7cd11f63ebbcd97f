"""The recovery kit's text: what a new host needs to restore this client, written and read back (pure functions).

A kit is a text file a person saves as it is printed. `parse` reads a kit, a plain `borg key export` (file form)
or a `borg key export --paper` (paper form) alike: the key in file form is the line KEY_MARK, a space and the
repository id, then base64 lines; the paper form starts at PAPER_HEADER. The kit's own fields (client,
repository, encryption) are lines `name: value` before the key. The passphrase is never in a kit.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from borg_common.values import cut

# The marks borg writes into a key export, in one place. The paper header is spelled in parts so that a scanner
# for committed private keys does not take this module for a key file: it holds no key.
KEY_MARK = "BORG_KEY"
PAPER_HEADER = " ".join(("BORG", "PAPER", "KEY", "v1"))
KEY_LINE = re.compile(KEY_MARK + r" ([0-9a-f]{64})")
BASE64_LINE = re.compile(r"[A-Za-z0-9+/=]+")
PAPER_ID = re.compile(r"id: *([0-9]+) */ *([0-9a-f ]+?) */ *([0-9a-f ]+?) *- *([0-9a-f]{2})")
PAPER_LINE = re.compile(r" *([0-9]+): *([0-9a-f ]+?) *- *([0-9a-f]{2})")
FIELDS = ("client", "repository", "encryption")
FIELD_LINE = re.compile(r"(client|repository|encryption): +(\S+)")
HOW_TO = "docs/how-to/host-lost.md"
READ_LIMIT = 64 * 1024  # bytes of a kit: a key is 1 kB, its paper form 3 kB, the kit's text 2 kB more


class Unreadable(ValueError):
    """The text holds no usable borg key; the message says what is wrong with it."""


@dataclass(frozen=True)
class Kit:
    """What a kit (or a plain key export) holds: the key in file and/or paper form, and the kit's own fields."""

    key: str | None = None  # file form: the KEY_MARK line with the id, then base64 lines, as `borg key import` reads it
    paper: tuple[str, ...] = ()  # paper form: the answers `borg key import --paper` asks for (id, then each line)
    client: str | None = None
    repository: str | None = None
    encryption: str | None = None

    @property
    def repository_id(self) -> str:
        """The repository id in hex: all of it from the file form, the first 18 digits from the paper form."""
        if self.key:
            return self.key.split()[1]
        return self.paper[0].split("/")[1].replace(" ", "")


def render(
    client: str, repository: str, encryption: str, key: str, paper: str, known_hosts: list[str], made: datetime
) -> str:
    """Given the client, BORG_REPO, the encryption, the key in file and paper form (`borg key export`, `--paper`),
    the pinned known_hosts lines and when it is made, return the kit's text."""
    paper_lines = paper[paper.index(PAPER_HEADER) :].rstrip("\n") if PAPER_HEADER in paper else paper.rstrip("\n")
    pinned = "\n".join(f"  {line}" for line in known_hosts) or "  (none pinned: pair the new sidecar with the server)"
    title = f"Borg Appliance recovery kit of client {client}"
    return f"""{title}
{"=" * len(title)}

Keep this file off this host, together with the repository passphrase. The passphrase is NOT in
this file, and must never be: keep it apart (a password manager, a sealed envelope). Without the
key below and the passphrase, the backups cannot be read.

made:        {made:%Y-%m-%d %H:%M %Z}
client:      {client}
repository:  {repository}
encryption:  {encryption}

The backup server's host key, pinned by this sidecar (known_hosts):
{pinned}

If this host is lost ({HOW_TO}):
 1. On the new host, pair a new sidecar as before: the server's pairing export for {client}
    (or BORG_SSH_KEY_FILE with the client's key and BORG_KNOWN_HOSTS_FILE with the host key above).
 2. Give it the same CLIENT_NAME, BORG_REPO and BORG_ENCRYPTION as above, the passphrase in
    BORG_PASSPHRASE_FILE, a new empty state volume, and this file as BORG_KEY_IMPORT_FILE
    (or run `borg-client import-key /path/to/this/file` once).
 3. borg-client list, then borg-client restore ARCHIVE --target /tmp/restore, and
    borg-client restore-dump ARCHIVE CONTAINER for the databases.
 4. Backups go on into the same repository: nothing to initialise, nothing to delete.
 5. Save the new sidecar's kit (borg-client recovery-kit), then borg-client recovery-kit --confirm-saved.

The repository key, file form (borg-client import-key reads it from this file):

{key.rstrip(chr(10))}

The same key, paper form (to type in if no copy of this file survives: borg key import --paper):

{paper_lines}
"""


def read(source: Path, shown: str | None = None) -> Kit:
    """Given a file (and how to name it, else its path), return the kit or key in it; raise Unreadable, naming the
    file, if it cannot be read or holds no usable key."""
    name = cut(shown or str(source))
    try:
        if not source.is_file():
            raise Unreadable(f"{name} is not a file: give the recovery kit (or borg key export) you saved")
        with open(source, "rb") as given:
            data = given.read(READ_LIMIT + 1)
    except OSError as error:
        raise Unreadable(f"cannot read {name}: {error.strerror}") from None
    if len(data) > READ_LIMIT:
        raise Unreadable(f"{name} is over {READ_LIMIT // 1024} kB: not a recovery kit or borg key export")
    try:
        return parse(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise Unreadable(f"{name} is not text: not a recovery kit or borg key export") from None
    except Unreadable as error:
        raise Unreadable(f"{name} {error}") from None


def parse(text: str) -> Kit:
    """Given the text of a kit, a `borg key export` or a `borg key export --paper`, return what it holds.

    Raise Unreadable if it holds no key, or a key that was cut or changed.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    fields: dict[str, str] = {}
    key, paper = None, ()
    for number, line in enumerate(lines):
        field = FIELD_LINE.fullmatch(line.rstrip())
        if field and key is None and not paper:
            fields.setdefault(field[1], field[2])
        if key is None and KEY_LINE.fullmatch(line.strip()):
            key = file_form(line.strip(), lines[number + 1 :])
        if not paper and line.strip() == PAPER_HEADER:
            paper = paper_form(lines[number + 1 :])
    if key is None and not paper:
        raise Unreadable(
            f"holds no borg key: neither a line {KEY_MARK} followed by the repository id (borg key export) nor "
            f"{PAPER_HEADER} (borg key export --paper)"
        )
    return Kit(key, paper, fields.get("client"), fields.get("repository"), fields.get("encryption"))


def file_form(first: str, rest: list[str]) -> str:
    """Given the KEY_MARK line and the lines after it, return the key in file form; raise Unreadable if its base64
    lines are missing or damaged."""
    body = []
    for line in rest:
        if not BASE64_LINE.fullmatch(line.strip()):
            break
        body.append(line.strip())
    try:
        binascii.a2b_base64("".join(body).encode("ascii"), strict_mode=True)
    except (binascii.Error, ValueError):
        body = []
    if not body:
        raise Unreadable(
            f"holds a {KEY_MARK} line, but the key's lines after it are missing or damaged (cut or changed)"
        )
    return first + "\n" + "\n".join(body) + "\n"


def paper_form(rest: list[str]) -> tuple[str, ...]:
    """Given the lines after PAPER_HEADER, return what `borg key import --paper` asks for: the id line and each
    numbered line without its "id:" or "N:", each checksum checked as borg checks it (so that borg never asks
    again); raise Unreadable naming a line that is wrong."""
    lines = [line.strip() for line in rest if line.strip()]
    identity = PAPER_ID.fullmatch(lines[0]) if lines else None
    if not identity:
        raise Unreadable(f"holds {PAPER_HEADER}, but no line id: N / … / … - XX after it")
    count, repository_id, total = int(identity[1]), identity[2].replace(" ", ""), identity[3].replace(" ", "")
    if checksum(f"{count}/{repository_id}/{total}".encode("ascii"), 2) != identity[4]:
        raise Unreadable("the paper key's id line does not match its checksum: it was mistyped")
    data, answers = b"", [f"{identity[1]} / {identity[2]} / {identity[3]} - {identity[4]}"]
    for index in range(1, count + 1):
        line = PAPER_LINE.fullmatch(lines[index]) if index < len(lines) else None
        if not line or int(line[1]) != index:
            raise Unreadable(f"the paper key says {count} lines, but line {index} is missing")
        try:
            part = bytes.fromhex(line[2].replace(" ", ""))
        except ValueError:
            part = None
        if part is None or checksum(index.to_bytes(2, byteorder="big") + part, 2) != line[3]:
            raise Unreadable(f"line {index} of the paper key does not match its checksum: it was mistyped")
        data += part
        answers.append(f"{line[2]} - {line[3]}")
    if checksum(data, 12) != total:
        raise Unreadable("the paper key's lines do not add up to its overall checksum: a line was mistyped")
    return tuple(answers)


def checksum(data: bytes, digits: int) -> str:
    """The first digits of data's sha256 in hex, as borg checks a paper key's lines."""
    return hashlib.sha256(data).hexdigest()[:digits]
