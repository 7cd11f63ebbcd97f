"""Tests for the URL rules both images share: what is a report URL, and how a URL is shown without secrets."""

import pytest

from borg_common.urls import is_http_url, redact_url, shown_url


@pytest.mark.parametrize("url", ["https://a.example/hook", "http://10.0.0.9:8080/alert", "http://[::1]/x"])
def test_an_http_or_https_url_with_a_host_is_a_report_url(url):
    assert is_http_url(url)


@pytest.mark.parametrize(
    "url", ["ftp://a.example/x", "mailto:ops@example.org", "https:///hook", "https://u:p@/hook", "http://[bad", ""]
)
def test_anything_else_is_not_a_report_url(url):
    assert not is_http_url(url)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("ftp://files.example.org", "ftp://files.example.org"),
        ("https://user:secret@/hook", "https://***@/…"),
        ("mailto:ops@example.org", "mailto:ops@example.org"),
        ("htps://hc-ping.com/5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278/fail", "htps://hc-ping.com/…"),
        ("ftp://a.example/hook?token=abc#part", "ftp://a.example/…"),
        ("ftp://a.example/hook#token", "ftp://a.example/…"),
        ("ftp://a.example/", "ftp://a.example/"),
        ("http://[bad", "http://[bad"),
        ("no scheme/secret-path", "no scheme/…"),
    ],
)
def test_a_url_in_a_problem_is_shown_as_scheme_and_host_with_user_info_as_stars(text, shown):
    assert shown_url(text) == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:pw@hc-ping.com/5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278?x=1", "https://hc-ping.com/…"),
        ("http://u:p@host:8080/secret-token", "http://host:8080/…"),
        ("https://hc.example/ping/uuid-secret", "https://hc.example/…"),
        ("http://[::1]:8080/api/v1/reports#top", "http://[::1]:8080/…"),
        ("http://receiver:8080", "http://receiver:8080"),
        ("http://receiver:8080/?token=x", "http://receiver:8080/…"),
    ],
)
def test_a_url_in_a_log_line_is_scheme_host_and_port_only(url, shown):
    assert redact_url(url) == shown


def test_no_part_of_a_secret_path_or_password_survives_redaction():
    shown = redact_url("http://alice:hunter2@reports.example:8443/hooks/team/secret-token?sig=abc")
    assert shown == "http://reports.example:8443/…"
    assert not any(word in shown for word in ("alice", "hunter2", "hooks", "team", "secret", "sig", "abc"))
