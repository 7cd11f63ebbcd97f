"""Who the status page lets in (status/web.py): any user name with the password, compared in constant time.

The HTTP server itself (401, 405, the headers) is left to the integration scenario: unit tests use no network.
"""

from __future__ import annotations

import base64

import pytest

from borg_server.status.web import authorized

PASSWORD = "correct horse battery"


def basic(credentials: bytes) -> str:
    return "Basic " + base64.b64encode(credentials).decode()


@pytest.mark.parametrize("user", [b"", b"admin", b"anyone at all"])
def test_any_user_name_with_the_password_is_let_in(user):
    assert authorized(basic(user + b":" + PASSWORD.encode()), PASSWORD)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        basic(b"admin:wrong password"),
        basic(PASSWORD.encode()),  # no colon: a user name alone
        basic(b"admin:" + PASSWORD.encode() + b" "),
        "Bearer " + base64.b64encode(b"admin:" + PASSWORD.encode()).decode(),
        "Basic not*base64",
        "Basic",
    ],
)
def test_a_missing_malformed_or_wrong_password_is_refused(header):
    assert not authorized(header, PASSWORD)


def test_without_a_password_every_request_is_let_in():
    assert authorized(None, None)
