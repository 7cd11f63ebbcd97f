"""The server's host key given as a setting (BORG_HOST_KEY_FILE, e.g. a Docker or Kubernetes secret).

So that clients can pin the host key before the server ever starts, the server takes an OpenSSH
ed25519 private key from a secret instead of generating one. It is checked here without OpenSSH, read by
cryptography's OpenSSH loader as sshd would read it: one unencrypted ed25519 key whose public and
private parts agree; the public key published is the one its private key
makes. A message never quotes the text: it is a secret.
"""

from __future__ import annotations

import base64
import binascii
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from borg_common.files import atomic_write, describe, move_aside, read_regular
from borg_server.system import commands
from borg_server.system.ssh_keys import KeyProblem, PublicKey, parse_public_key

LABEL = "OPENSSH " + "PRIVATE KEY"  # split, so this source does not itself look like a private key
BEGIN, END = f"-----BEGIN {LABEL}-----", f"-----END {LABEL}-----"
KEY_TYPE = "ssh-ed25519"
MAKE_ONE = "make one with: borg-server new-host-key"
COMMENT = "borg-appliance host key"
HOST_KEY_SETTING = "BORG_HOST_KEY"  # read as BORG_HOST_KEY_FILE (a secret) or, not recommended, the key's text itself
DAMAGE = {  # cryptography's words for a damaged key, and what they mean here
    "Corrupt data: broken checksum": "its check numbers differ",
    "Corrupt data: key type mismatch": "its public and private parts differ",
    "Corrupt data: ed25519 field mismatch": "its public and private parts differ",
    "Invalid data": "it ends in the middle of a field",
}
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
    one ed25519 key without a passphrase, undamaged (cryptography reads it, the way sshd would)."""
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
    if not data.startswith(b"openssh-key-v1\0"):
        raise KeyProblem("is damaged: it does not start as an OpenSSH key (openssh-key-v1)")
    try:
        key = serialization.load_ssh_private_key(text.encode("ascii", "replace"), password=None)
    except (TypeError, UnsupportedAlgorithm, ValueError) as error:
        raise KeyProblem(_problem(error)) from None
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    key_type, blob = public.decode("ascii").split()[:2]
    if key_type != KEY_TYPE:
        raise KeyProblem(f"is a {key_type} key; the host key is {KEY_TYPE} ({MAKE_ONE})")
    return PublicKey(KEY_TYPE, blob, COMMENT)


def _problem(error: Exception) -> str:
    """Return what a refusal of cryptography's loader means to the person who gave the key (never the key)."""
    reason = str(error)
    if reason.startswith(("Unsupported cipher", "Unsupported KDF", "Key is password-protected")):
        return "is protected by a passphrase, which sshd cannot ask for; remove it (ssh-keygen -p -N '')"
    if reason.startswith("Unsupported key type"):
        return f"is of a type sshd cannot use as a host key; the host key is {KEY_TYPE} ({MAKE_ONE})"
    if reason == "Only one key supported":
        return "holds more than one key; give exactly one"
    return f"is damaged: {DAMAGE.get(reason, 'OpenSSH cannot read it')} ({reason})"


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
