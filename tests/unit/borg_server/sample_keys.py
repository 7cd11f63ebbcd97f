"""Sample public keys for the server's tests (shared data, not a test file); private host keys built by hand."""

import base64
import struct

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# Public keys generated with ssh-keygen (OpenSSH 9.2); fingerprints from `ssh-keygen -lf`.
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOxYbhQWClist4OOwLuWVGFsFXWLyurigRdBRFTavFh1 ed25519@example"
ED25519_OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFQViR1ws2NOR+fM+PNgbbVv/j+Fxit9USvf8LyHVzBU ed25519b@example"
RSA_2048 = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCo0jcnjs7K+aBmTgpecXAKURJMx7eDnhcdJAXvLxPSqTLfSg+o5YLZEHi/olu5M46kHmwP"
    "DUJKdWoUT87DNNXdIbE6+yp1iQzCQPHeNyXYSEIyPsV4lKPUQAK8v4vmT9EFsP6tJVuR6u7Wr1xW537qPtBaUc7l22GDh/TTjpdd+upIFWCup"
    "NqUK5hcO+PdIXhVm3Bhm3XjJ0Qd7SkpLwT81EmTJmXYitJcxM4fUpxCB71BdQJpmI3lw0jH5Cry43SIbrnt4ZeSo0ZKEES7tNi2bGIgHeKZcl"
    "WwELfSqqv7a20XuigJjYCmc0dyvHdkYcuVzD9vasojVv3zTuv+FAX5 rsab2048@example"
)
RSA_1024 = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDmwLlplK4n2HHzcA004wtUQsIUqANiDHAdUovzUkwcmYWfYpgCXvIDPOPfipOISkN1QlquU"
    "/JYmfGa4J19dpcZpMYNYmq7FZYD1lC2ijDHp6LJOlGqQ6/GRN33nCpduh7kqCuSBEckjXhs31HbQji6GbpYa9QDzrJIRVXpuKadpQ== "
    "rsab1024@example"
)
ECDSA_256 = (
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFExnb5y055x1K2plTD8FBe+nve9xajTMRQAL4"
    "d0U6QjbPOji6B4SnJQFIlEds4FcMPZHRoNvt9aTXE6lX5k1Q8= ecdsab256@example"
)
ECDSA_384 = (
    "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBAts/uEKddOdtzUn2RFvwlFTRgLqXjsuew2zjE"
    "03gnW4wC21HmtHDI55uC0H2cqZCfkB1RrF62WFgsH+0DjxQ710OURtZAug62jRgXNjS8nz2DIpkAdNt7hl+sPJZcXi5w== ecdsab384@example"
)
ECDSA_521 = (
    "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAHsQONc3u9fsKwdHLv+PB4SdBwE2I9XHHc3Pr"
    "0Oe7SlzIthoh5hqg06+gtbGz6nu626qBK9QebWcRSMvOoR0z9osQFQB2ab1Q+srHvUtp27B4MMNzNkQTyeHIUaYmGA649T7zfumVBz9YwHEiMD6"
    "2D8hM9XQQnklZDprICzwasm+tcWnw== ecdsab521@example"
)
# A security-key (FIDO) public key built by hand: type, 32-byte key, application "ssh:"; ssh-keygen accepts it.
SK_ED25519 = (
    "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"
    "Hh8gAAAABHNzaDo= sk@example"
)
ED25519_BLOB = ED25519.split()[1]
ED25519_BLOB = ED25519.split()[1]


# An ed25519 private key in OpenSSH's format, built by hand from a made-up seed (no real key is tracked).
SEED = bytes(range(32))
PUBLIC = Ed25519PrivateKey.from_private_bytes(SEED).public_key().public_bytes_raw()
ARMOUR = ("-----BEGIN OPENSSH" + " PRIVATE KEY-----", "-----END OPENSSH" + " PRIVATE KEY-----")  # split: no key here


def string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def private_key(cipher=b"none", count=1, key_type=b"ssh-ed25519", checks=(7, 7), secret=None, header=PUBLIC) -> str:
    """Return an OpenSSH private key's text built by hand (its fields as OpenSSH's PROTOCOL.key lays them out)."""
    public_blob = string(key_type) + string(header)
    private = struct.pack(">II", *checks) + string(key_type) + string(PUBLIC)
    private += string(secret if secret is not None else SEED + PUBLIC) + string(b"host@example")
    body = b"openssh-key-v1\0" + string(cipher) + string(b"none") + string(b"") + struct.pack(">I", count)
    body += string(public_blob) + string(private + bytes(range(1, 8 - len(private) % 8 + 1)))
    text = base64.b64encode(body).decode()
    return "\n".join([ARMOUR[0], *(text[i : i + 70] for i in range(0, len(text), 70)), ARMOUR[1]]) + "\n"
