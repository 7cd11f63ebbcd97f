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
        ("https://user:secret@/hook", "https://***@/hook"),
        ("mailto:ops@example.org", "mailto:ops@example.org"),
        ("htps://hc-ping.com/5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278/fail", "htps://hc-ping.com/…/fail"),
        ("ftp://a.example/hook?token=abc#part", "ftp://a.example/hook?…"),
        ("ftp://a.example/hook#token", "ftp://a.example/hook#…"),
        ("http://[bad", "http://[bad"),
    ],
)
def test_a_url_in_a_problem_is_shown_as_written_without_credentials_tokens_or_query(text, shown):
    assert shown_url(text) == shown


def test_a_url_in_a_log_line_drops_user_info_and_hides_tokens_and_query():
    assert redact_url("https://u:pw@hc-ping.com/5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278?x=1") == "https://hc-ping.com/…?…"
