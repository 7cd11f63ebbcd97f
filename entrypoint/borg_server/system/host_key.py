"""The server's host key given as a setting (BORG_HOST_KEY_FILE, e.g. a Docker or Kubernetes secret).

So that clients can pin the host key before the server ever starts, the server takes an OpenSSH
ed25519 private key from a secret instead of generating one. It is checked here, without OpenSSH and
without decrypting anything, the way sshd would read it: one unencrypted ed25519 key whose public and
private parts agree. A message never quotes the text: it is a secret.
"""

from __future__ import annotations

import base64
import binascii
import logging
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from borg_common.files import atomic_write, describe, move_aside, read_regular
from borg_server.system import commands
from borg_server.system.ssh_keys import KeyProblem, PublicKey, parse_public_key

LABEL = "OPENSSH " + "PRIVATE KEY"  # split, so this source does not itself look like a private key
BEGIN, END = f"-----BEGIN {LABEL}-----", f"-----END {LABEL}-----"
MAGIC = b"openssh-key-v1\0"
KEY_TYPE = "ssh-ed25519"
MAKE_ONE = "make one with: borg-server new-host-key"
COMMENT = "borg-appliance host key"
HOST_KEY_SETTING = "BORG_HOST_KEY"  # read as BORG_HOST_KEY_FILE (a secret) or, not recommended, the key's text itself
HOST_KEY_LIMIT = 4096  # an ed25519 private key is about 400 characters

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GivenHostKey:
    """The host key a setting gives: the private key's text and its public key (never logged: the text)."""

    text: str = field(repr=False)
    public: PublicKey
    label: str  # the setting as the user wrote it, e.g. BORG_HOST_KEY_FILE


def parse_private_key(text: str) -> PublicKey:
    """Given the text of an OpenSSH private key, return its public key; raise KeyProblem unless it is exactly
    one ed25519 key without a passphrase, undamaged (its public and private parts agree)."""
    text = text.strip()
    if not text:
        raise KeyProblem(f"is empty; give an OpenSSH ed25519 private key ({MAKE_ONE})")
    if text.startswith(("ssh-", "ecdsa-", "sk-")):
        raise KeyProblem("is a public key; give the private key (the server derives its public key)")
    if "PRIVATE KEY-----" in text and not text.startswith(BEGIN):
        raise KeyProblem(f"is a PEM private key, not in OpenSSH's format; {MAKE_ONE}")
    if not text.startswith(BEGIN) or not text.endswith(END):
        raise KeyProblem(f"is not an OpenSSH private key ({BEGIN} ... {END}); {MAKE_ONE}")
    try:
        data = base64.b64decode("".join(text[len(BEGIN) : -len(END)].split()), validate=True)
    except (binascii.Error, ValueError):
        raise KeyProblem("is damaged: its body is not base64") from None
    if not data.startswith(MAGIC):
        raise KeyProblem("is damaged: it does not start as an OpenSSH key (openssh-key-v1)")
    reader = _Reader(data, len(MAGIC))
    cipher, _kdf, _options = reader.string(), reader.string(), reader.string()
    if cipher != b"none":
        raise KeyProblem("is protected by a passphrase, which sshd cannot ask for; remove it (ssh-keygen -p -N '')")
    (count,) = reader.unpack(">I")
    if count != 1:
        raise KeyProblem(f"holds {count} keys; give exactly one")
    public_blob = reader.string()
    key_type = _Reader(public_blob).string().decode("ascii", "replace")
    if key_type != KEY_TYPE:
        shown = key_type if key_type.isprintable() and len(key_type) < 40 else "another type"
        raise KeyProblem(f"is a {shown} key; the host key is {KEY_TYPE} ({MAKE_ONE})")
    private = _Reader(reader.string())
    check, again = private.unpack(">II")
    if check != again:
        raise KeyProblem("is damaged: its check numbers differ")
    inner_type, inner_public, secret = private.string(), private.string(), private.string()
    comment = private.string()
    if inner_type != KEY_TYPE.encode() or len(inner_public) != 32 or len(secret) != 64:
        raise KeyProblem("is damaged: its private part is not an ed25519 key")
    if public_blob != struct.pack(">I", len(inner_type)) + inner_type + struct.pack(">I", 32) + inner_public:
        raise KeyProblem("is damaged: its public and private parts differ")
    if secret[32:] != inner_public:
        raise KeyProblem("is damaged: its private key does not hold its public key")
    return PublicKey(KEY_TYPE, base64.b64encode(public_blob).decode("ascii"), comment.decode("utf-8", "replace"))


def repair_kept_host_key(private_key: Path) -> None:
    """Given where the host key is kept in the state volume, leave only a usable key pair there (or nothing).

    A private key that is not a regular file sshd can use (a symlink, directory, FIFO, garbage) is moved
    aside with its public key, with a warning, so that a new host key is made; a public key that is not
    the private key's own is rewritten from the private key. Nothing is read through a symlink.
    """
    public = Path(f"{private_key}.pub")
    try:
        key = parse_private_key(read_regular(private_key, HOST_KEY_LIMIT).decode(errors="replace"))
    except FileNotFoundError:
        key = None
    except (OSError, KeyProblem) as problem:
        logger.warning("host key: %s cannot be used (%s); moved it to %s and a new host key is made: clients "
                       "must pin the new one", private_key, problem, move_aside(private_key))  # fmt: skip
        key = None
    if key is not None and _kept_public(public) == key.identity:
        return
    if describe(public) != "nothing":
        logger.warning("host key: %s is not the host key's public key; moved it to %s", public, move_aside(public))
    if key is not None:
        atomic_write(public, PublicKey(key.type, key.blob, COMMENT).line + "\n", 0o644)


def _kept_public(public: Path) -> tuple[str, str] | None:
    """Return the identity of the public key kept at public, or None if it is none (not read through a symlink)."""
    try:
        return parse_public_key(read_regular(public, HOST_KEY_LIMIT).decode(errors="replace")).identity
    except (OSError, KeyProblem):
        return None


def new_private_key() -> str:
    """Return the text of a new ed25519 host key without passphrase (ssh-keygen in a private temporary directory)."""
    with tempfile.TemporaryDirectory(prefix="borg-host-key.") as directory:
        private_key = Path(directory) / "ssh_host_ed25519_key"
        commands.generate_keypair(private_key, COMMENT)
        return private_key.read_text()


class _Reader:
    """Reads an OpenSSH binary structure: uint32-length-prefixed strings and packed numbers; KeyProblem past its end."""

    def __init__(self, data: bytes, offset: int = 0):
        self.data, self.offset = data, offset

    def unpack(self, layout: str) -> tuple[int, ...]:
        size = struct.calcsize(layout)
        if self.offset + size > len(self.data):
            raise KeyProblem("is damaged: it ends in the middle of a field")
        values = struct.unpack_from(layout, self.data, self.offset)
        self.offset += size
        return values

    def string(self) -> bytes:
        (length,) = self.unpack(">I")
        if self.offset + length > len(self.data):
            raise KeyProblem("is damaged: it ends in the middle of a field")
        self.offset += length
        return self.data[self.offset - length : self.offset]
