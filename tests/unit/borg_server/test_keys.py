"""Tests for parsing public keys: canonical form, fingerprints as ssh-keygen shows them, and refusals."""

import base64
import shutil
import struct
import subprocess

import pytest

from borg_server.system import commands
from borg_server.system.ssh_keys import KNOWN_TYPES, KeyProblem, PublicKey, parse_public_key
from tests.unit.borg_server.sample_keys import (
    ECDSA_256,
    ECDSA_384,
    ECDSA_521,
    ED25519,
    ED25519_BLOB,
    ED25519_OTHER,
    RSA_1024,
    RSA_2048,
    SK_ED25519,
)


def blob(*fields: bytes) -> str:
    """Given raw fields, return the base64 of their SSH wire encoding (uint32 length, then bytes)."""
    return base64.b64encode(b"".join(struct.pack(">I", len(field)) + field for field in fields)).decode()


@pytest.mark.parametrize(
    ("text", "fingerprint"),
    [
        (ED25519, "SHA256:WfhA6UqjQohpq3OqPV4sVLCL8T34cQ4EQRv264HQxX8"),
        (ED25519_OTHER, "SHA256:1z/ouCPONT4YZEwCY0AuzdN++KQZCw254QtSWUt4Xj8"),
        (RSA_2048, "SHA256:nytLvt+q58E00yd+LovgxWOH003LhR8beMH8Ao7FCjE"),
        (ECDSA_256, "SHA256:7+bTLDhuof7QYrrf87My6zALYhBtm6i5ImV3D4HDLo4"),
        (ECDSA_384, "SHA256:HprGXfId2JQkN/3PzQJ3OV12GrGCY7hauzNHlQmCcI8"),
        (ECDSA_521, "SHA256:tV2wGVr6VfdbR5lIp9AXuixigjnQIl421YuE2wAULcM"),
        (SK_ED25519, "SHA256:nX0hpi5mKbTIJ10yBq5/sLQhiI1Y0RBAqN0drDdgJWs"),
    ],
)
def test_fingerprint_is_the_one_ssh_keygen_shows(text, fingerprint):
    assert parse_public_key(text).fingerprint == fingerprint


def test_a_key_is_parsed_into_type_data_and_comment():
    assert parse_public_key(ED25519) == PublicKey(type="ssh-ed25519", blob=ED25519_BLOB, comment="ed25519@example")


def test_canonical_line_normalises_white_space_and_keeps_the_comment():
    key = parse_public_key(f"  \tssh-ed25519\t {ED25519_BLOB}   backup  key\tof web-1 \r\n")
    assert key.line == f"ssh-ed25519 {ED25519_BLOB} backup key of web-1"


def test_canonical_line_of_a_key_without_comment_has_two_parts():
    assert parse_public_key(f"ssh-ed25519 {ED25519_BLOB}\n").line == f"ssh-ed25519 {ED25519_BLOB}"


def test_identity_ignores_the_comment():
    renamed = parse_public_key(f"ssh-ed25519 {ED25519_BLOB} another comment")
    assert renamed.identity == parse_public_key(ED25519).identity
    assert renamed.identity != parse_public_key(ED25519_OTHER).identity


def test_every_known_type_is_accepted():
    keys = [ED25519, RSA_2048, ECDSA_256, ECDSA_384, ECDSA_521, SK_ED25519]
    sk_ecdsa = "sk-ecdsa-sha2-nistp256@openssh.com " + blob(
        b"sk-ecdsa-sha2-nistp256@openssh.com", b"nistp256", b"\x04" + bytes(64), b"ssh:"
    )
    parsed = [parse_public_key(text) for text in [*keys, sk_ecdsa]]
    assert sorted(key.type for key in parsed) == sorted(KNOWN_TYPES)


PRIVATE_KEY = (
    "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH " + "PRIVATE KEY-----"
)
ALL_TYPES = ", ".join(KNOWN_TYPES)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty; give an OpenSSH public key (the contents of a .pub file)"),
        (" \n ", "is empty; give an OpenSSH public key (the contents of a .pub file)"),
        (f"{ED25519}\n{ED25519_OTHER}", "has 2 lines; a key is one line"),
        (f"{ED25519}\r\n\r\n{ED25519_OTHER}\n", "has 3 lines; a key is one line"),
        (PRIVATE_KEY, "looks like a private key; give the public key (the .pub file)"),
        ("PuTTY-User-Key-File-3: ssh-ed25519", "looks like a private key; give the public key (the .pub file)"),
        (
            '---- BEGIN SSH2 PUBLIC KEY ----\nComment: "x"\nAAAA\n---- END SSH2 PUBLIC KEY ----',
            "is in SSH2 (RFC 4716) format; convert it with ssh-keygen -i -f FILE",
        ),
        (f"ssh-ed25519 {ED25519_BLOB} café", "contains the non-ASCII character U+00E9; a key is plain ASCII"),
        (f"ssh-ed25519 {ED25519_BLOB} bell\x07", "contains the control character 0x07"),
        (f"ssh-ed25519 {ED25519_BLOB} del\x7f", "contains the control character 0x7F"),
        (
            f'command="borg serve",restrict {ED25519}',
            "starts with options; give only the key: the server writes the options itself",
        ),
        (f"ssh-foo {ED25519_BLOB}", f"does not start with a known key type; use one of {ALL_TYPES}"),
        (ED25519_BLOB, f"does not start with a known key type; use one of {ALL_TYPES}"),
        ("ssh-dss AAAAB3NzaC1kc3M= old", "DSA keys (ssh-dss) are no longer accepted by OpenSSH 10; use an ed25519 key"),
        ("ssh-ed25519", "has no key data after ssh-ed25519"),
        ("ssh-ed25519 AAAA!!!!", "has key data that is not valid base64"),
        (f"ssh-ed25519 {ED25519_BLOB[:-1]}", "has key data that is not valid base64"),
        (f"ssh-ed25519 AAAA={ED25519_BLOB}", "has key data that is not valid base64"),
        (f"ssh-rsa {ED25519_BLOB}", "says ssh-rsa but its key data is for ssh-ed25519"),
        (
            f"ssh-ed25519 {blob(b'ssh-ed25519', bytes(32))[:-8]}AA==",
            "has damaged key data: it ends in the middle of a field",
        ),
        (
            f"ssh-ed25519 {blob(b'ssh-ed25519', bytes(32), b'x')}",
            "has damaged key data: 2 fields where ssh-ed25519 has 1",
        ),
        (RSA_1024, "is an RSA key of 1024 bits; use at least 2048 bits, or an ed25519 key"),
    ],
)
def test_a_bad_key_is_refused_with_a_message_saying_what_to_give(text, message):
    with pytest.raises(KeyProblem) as problem:
        parse_public_key(text)
    assert str(problem.value) == message


def test_a_generated_keypair_is_an_ed25519_pair_in_openssh_formats(tmp_path):
    private = tmp_path / "id_ed25519"

    commands.generate_keypair(private, "borg-appliance client web")

    public = parse_public_key((tmp_path / "id_ed25519.pub").read_text())
    assert (public.type, public.comment) == ("ssh-ed25519", "borg-appliance client web")
    assert private.read_bytes().startswith(b"-----BEGIN OPENSSH")
    assert (private.stat().st_mode & 0o777, (tmp_path / "id_ed25519.pub").stat().st_mode & 0o777) == (0o600, 0o644)
    if shutil.which("ssh-keygen"):  # OpenSSH reads the private key and derives the same public key from it
        derived = subprocess.run(["ssh-keygen", "-y", "-f", str(private)], capture_output=True, text=True, check=True)
        assert parse_public_key(derived.stdout).identity == public.identity
    with pytest.raises(FileExistsError):
        commands.generate_keypair(private, "again")
