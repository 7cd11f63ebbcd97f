"""Tests for the authorized_keys file: every key forced into borg serve with its client's restrictions."""

from borg_server.config.reader import load
from borg_server.provision.authorized_keys import Grant, grants_for, key_line, render
from borg_server.system.ssh_keys import parse_public_key

# Public keys generated for these tests with `ssh-keygen -t ed25519`; fingerprints from `ssh-keygen -lf`.
WEB_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID26CUVU/8m/Dk6cyWmnuBbX1SpdBW8FFXYWWvdh1+ST web@example"
WEB_FINGERPRINT = "SHA256:MAb/VODAa8tKOLwshsHjcTx7Be4UQ9nAMExtk8h9oz8"
ADMIN_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBr7sUCQtIm2AM3sdJyEky3WfpWogDmIKh2BDebHD1g5 web-admin@example"
ADMIN_FINGERPRINT = "SHA256:Zxr048EIsKhPtKcChkVsyxa8e9b3yCZkFtcq6QcjfZw"
SERVE = "/usr/local/bin/borg-server serve"
HEADER = "# Written by borg-server at every start from the configuration; edits here are lost.\n"


def web(**variables: str):
    """Given BORG_CLIENT_WEB_* settings (without the prefix), return the loaded client web."""
    environ = {"BORG_CLIENTS": "web"} | {f"BORG_CLIENT_WEB_{name}": value for name, value in variables.items()}
    return load(environ, "backup").clients[0]


def test_the_test_keys_have_the_fingerprints_ssh_keygen_shows():
    assert parse_public_key(WEB_KEY).fingerprint == WEB_FINGERPRINT
    assert parse_public_key(ADMIN_KEY).fingerprint == ADMIN_FINGERPRINT


def test_key_line_forces_append_only_by_default():
    (grant,) = grants_for(web(KEY=WEB_KEY), parse_public_key(WEB_KEY))

    assert key_line(grant) == (
        f'restrict,command="{SERVE} --client web --role append --fingerprint {WEB_FINGERPRINT} --max-sessions 8" '
        f"{WEB_KEY}"
    )


def test_key_line_gives_the_full_role_when_append_only_is_off():
    (grant,) = grants_for(web(KEY=WEB_KEY, APPEND_ONLY="no"), parse_public_key(WEB_KEY))

    assert grant.role == "full"
    assert key_line(grant) == (
        f'restrict,command="{SERVE} --client web --role full --fingerprint {WEB_FINGERPRINT} --max-sessions 8" '
        f"{WEB_KEY}"
    )


def test_key_line_adds_the_quota_in_bytes_for_an_append_key():
    (grant,) = grants_for(web(KEY=WEB_KEY, QUOTA="50G"), parse_public_key(WEB_KEY))

    assert key_line(grant) == (
        f'restrict,command="{SERVE} --client web --role append --fingerprint {WEB_FINGERPRINT} '
        f'--quota 50000000000 --max-sessions 8" {WEB_KEY}'
    )


def test_key_line_adds_the_quota_for_a_full_key():
    grant = Grant("web", "full", parse_public_key(WEB_KEY), quota=1000)

    assert key_line(grant) == (
        f'restrict,command="{SERVE} --client web --role full --fingerprint {WEB_FINGERPRINT} --quota 1000" {WEB_KEY}'
    )


def test_key_line_never_adds_a_quota_for_an_admin_key():
    grant = Grant("web", "admin", parse_public_key(ADMIN_KEY), quota=1000)

    assert key_line(grant) == (
        f'restrict,command="{SERVE} --client web --role admin --fingerprint {ADMIN_FINGERPRINT}" {ADMIN_KEY}'
    )


def test_key_line_keeps_the_canonical_key_line_whatever_the_spacing_given():
    key = parse_public_key("  ssh-ed25519\t" + WEB_KEY.split()[1] + "   web@example  \n")

    assert key_line(Grant("web", "append", key)).endswith(f'" {WEB_KEY}')


def test_grants_for_a_client_without_admin_key_is_only_its_own_key():
    key = parse_public_key(WEB_KEY)

    assert grants_for(web(QUOTA="2G"), key) == [Grant("web", "append", key, 2_000_000_000, 8)]


def test_grants_for_a_client_with_admin_key_adds_an_admin_grant_without_quota():
    key = parse_public_key(WEB_KEY)

    grants = grants_for(web(KEY=WEB_KEY, ADMIN_KEY=ADMIN_KEY, QUOTA="2G"), key)

    assert grants == [
        Grant("web", "append", key, 2_000_000_000, 8),
        Grant("web", "admin", parse_public_key(ADMIN_KEY), None, 8),
    ]


def test_render_writes_the_header_then_one_line_per_grant():
    client = web(KEY=WEB_KEY, ADMIN_KEY=ADMIN_KEY)
    grants = grants_for(client, client.key)

    assert render(grants) == (
        HEADER
        + f'restrict,command="{SERVE} --client web --role append --fingerprint {WEB_FINGERPRINT} --max-sessions 8" '
        f"{WEB_KEY}\n"
        + f'restrict,command="{SERVE} --client web --role admin --fingerprint {ADMIN_FINGERPRINT} --max-sessions 8" '
        f"{ADMIN_KEY}\n"
    )


def test_render_of_no_grants_is_only_the_header():
    assert render([]) == HEADER


def test_every_key_of_a_client_carries_its_max_sessions_the_global_default_or_its_own():
    key = parse_public_key(WEB_KEY)

    assert [g.max_sessions for g in grants_for(web(KEY=WEB_KEY, ADMIN_KEY=ADMIN_KEY, MAX_SESSIONS="3"), key)] == [3, 3]
    assert key_line(grants_for(web(KEY=WEB_KEY, MAX_SESSIONS="3"), key)[0]).endswith(f' --max-sessions 3" {WEB_KEY}')
