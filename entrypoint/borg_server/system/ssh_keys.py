"""Parse the OpenSSH public keys users give the server, refusing anything it should not trust.

A key arrives as one authorized_keys-style line ("type base64-data comment"). It is canonicalised
(surrounding white space dropped, separators normalised to one space, the comment kept) and checked
the way OpenSSH would check it, so that a bad key is refused at start with a message saying what
to give instead, rather than silently failing to log in later. A message never quotes the text: it
may come from a file that holds a secret by mistake.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass

# Key types OpenSSH 10 accepts, with the number of length-prefixed fields that follow the type
# name in each one's binary form (RFC 4253 6.6, RFC 5656 3.1, OpenSSH PROTOCOL.u2f).
FIELD_COUNTS = {
    "ssh-ed25519": 1,
    "ssh-rsa": 2,
    "ecdsa-sha2-nistp256": 2,
    "ecdsa-sha2-nistp384": 2,
    "ecdsa-sha2-nistp521": 2,
    "sk-ssh-ed25519@openssh.com": 2,
    "sk-ecdsa-sha2-nistp256@openssh.com": 3,
}
KNOWN_TYPES = tuple(FIELD_COUNTS)
REFUSED_TYPES = {"ssh-dss": "DSA keys (ssh-dss) are no longer accepted by OpenSSH 10; use an ed25519 key"}
RSA_MINIMUM_BITS, RSA_MAXIMUM_BITS = 2048, 16384  # OpenSSH refuses RSA keys over 16384 bits
MAXIMUM_LENGTH = 8192  # an RSA 16384-bit key with a long comment is about 2,900 characters
BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # ASCII control characters but tab


class KeyProblem(Exception):
    """Raised with a one-line, user-facing message saying what is wrong with a public key."""


@dataclass(frozen=True)
class PublicKey:
    """An OpenSSH public key: its type, its data as base64 text and its comment ("" if none)."""

    type: str
    blob: str
    comment: str = ""

    @property
    def line(self) -> str:
        """Return the canonical form: type, data and comment (if any) separated by one space."""
        return " ".join(part for part in (self.type, self.blob, self.comment) if part)

    @property
    def fingerprint(self) -> str:
        """Return the fingerprint as `ssh-keygen -lf` shows it: SHA256: and unpadded base64."""
        digest = hashlib.sha256(base64.b64decode(self.blob)).digest()
        return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")

    @property
    def identity(self) -> tuple[str, str]:
        """Return what makes two keys the same key, whatever their comments: (type, blob)."""
        return (self.type, self.blob)


def parse_public_key(text: str) -> PublicKey:
    """Given the text of one public key, return it canonicalised; raise KeyProblem if it is not
    exactly one OpenSSH public key of an accepted type (RSA keys need at least 2048 bits)."""
    text = text.strip()
    if not text:
        raise KeyProblem("is empty; give an OpenSSH public key (the contents of a .pub file)")
    if len(text) > MAXIMUM_LENGTH:
        raise KeyProblem(f"is {len(text)} characters long; an OpenSSH public key has at most {MAXIMUM_LENGTH}")
    if "PRIVATE KEY" in text or text.startswith("PuTTY-User-Key-File"):
        raise KeyProblem("looks like a private key; give the public key (the .pub file)")
    if text.startswith("---- BEGIN SSH2 PUBLIC KEY"):
        raise KeyProblem("is in SSH2 (RFC 4716) format; convert it with ssh-keygen -i -f FILE")
    if "\n" in text:
        raise KeyProblem(f"has {text.count(chr(10)) + 1} lines; a key is one line")
    if not text.isascii():
        character = next(character for character in text if not character.isascii())
        raise KeyProblem(f"contains the non-ASCII character U+{ord(character):04X}; a key is plain ASCII")
    control = CONTROL.search(text)
    if control is not None:
        raise KeyProblem(f"contains the control character 0x{ord(control[0]):02X}")
    tokens = text.split()
    key_type = tokens[0]
    if key_type not in KNOWN_TYPES and key_type not in REFUSED_TYPES:
        start = next((i for i, token in enumerate(tokens) if token in KNOWN_TYPES or token in REFUSED_TYPES), 0)
        if start:
            raise KeyProblem("starts with options; give only the key: the server writes the options itself")
        raise KeyProblem(f"does not start with a known key type; use one of {', '.join(KNOWN_TYPES)}")
    if key_type in REFUSED_TYPES:
        raise KeyProblem(REFUSED_TYPES[key_type])
    if len(tokens) < 2:
        raise KeyProblem(f"has no key data after {key_type}")
    fields = _fields(tokens[1])
    if fields[0] != key_type.encode("ascii"):
        inner = fields[0].decode("ascii", "replace")
        raise KeyProblem(f"says {key_type} but its key data is for {inner if inner in KNOWN_TYPES else 'another type'}")
    if len(fields) != 1 + FIELD_COUNTS[key_type]:
        raise KeyProblem(
            f"has damaged key data: {len(fields) - 1} fields where {key_type} has {FIELD_COUNTS[key_type]}"
        )
    if key_type == "ssh-rsa":
        bits = int.from_bytes(fields[2], "big").bit_length()
        if bits < RSA_MINIMUM_BITS:
            raise KeyProblem(f"is an RSA key of {bits} bits; use at least {RSA_MINIMUM_BITS} bits, or an ed25519 key")
        if bits > RSA_MAXIMUM_BITS:
            raise KeyProblem(f"is an RSA key of {bits} bits; OpenSSH accepts at most {RSA_MAXIMUM_BITS}")
    return PublicKey(type=key_type, blob=tokens[1], comment=" ".join(tokens[2:]))


def _fields(blob: str) -> list[bytes]:
    """Given base64 key data, return its length-prefixed fields (uint32 big-endian length, then
    bytes); raise KeyProblem if it is not base64 or a length runs past the end."""
    try:
        if not BASE64.fullmatch(blob):
            raise ValueError(blob)
        data = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        raise KeyProblem("has key data that is not valid base64") from None
    fields, offset = [], 0
    while offset < len(data):
        if offset + 4 > len(data):
            raise KeyProblem("has damaged key data: it ends in the middle of a field")
        (length,) = struct.unpack_from(">I", data, offset)
        offset += 4 + length
        if offset > len(data):
            raise KeyProblem("has damaged key data: it ends in the middle of a field")
        fields.append(data[offset - length : offset])
    return fields
