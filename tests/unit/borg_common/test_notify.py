"""Tests for notifications: NOTIFY_URLS and NOTIFY_ON read and checked with Apprise, the outbox, delivery."""

import pytest

from borg_common import delivery, notify, outbox
from borg_common.notify import Message, Notify
from borg_common.settings import Settings

TOKEN = "AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"  # a Telegram bot token's form


def read(environ: dict[str, str]) -> tuple[Notify, list[str]]:
    settings = Settings(environ)
    return notify.read(settings), settings.problems


def test_notify_urls_are_split_on_white_space_and_newlines_and_on_defaults_to_failures_warnings_alerts_digests():
    found, problems = read(
        {"NOTIFY_URLS": "ntfy://ntfy.example.org/backups\n mailto://smtp.example.org?from=b@example.org"}
    )

    assert problems == []
    assert found.urls == ("ntfy://ntfy.example.org/backups", "mailto://smtp.example.org?from=b@example.org")
    assert found.on == frozenset({"failure", "warning", "alert", "digest"})


def test_notify_urls_file_is_read_like_every_secret(tmp_path):
    (tmp_path / "urls").write_text(f"tgram://123456:{TOKEN}/987654\n")

    found, problems = read({"NOTIFY_URLS_FILE": str(tmp_path / "urls")})

    assert (found.urls, problems) == ((f"tgram://123456:{TOKEN}/987654",), [])


def test_notify_on_takes_the_events_named():
    found, problems = read({"NOTIFY_URLS": "json://receiver:8080/n", "NOTIFY_ON": "failure success"})

    assert (found.on, problems) == (frozenset({"failure", "success"}), [])
    assert found.wants("success") and not found.wants("alert")


def test_without_urls_nothing_is_wanted():
    assert not Notify().wants("failure")


def test_an_unknown_event_names_the_setting_and_the_events_allowed():
    assert read({"NOTIFY_ON": "failures alert"})[1] == [
        "NOTIFY_ON: 'failures' is not an event; use some of failure, warning, alert, digest, success"
    ]


def test_an_unknown_scheme_names_the_setting_the_scheme_and_the_host_never_the_path():
    assert read({"NOTIFY_URLS": "ntfyy://ntfy.example.org/secret-topic"})[1] == [
        "NOTIFY_URLS: the 1st URL (ntfyy://ntfy.example.org/…) has a scheme Apprise does not know (ntfyy://); "
        "see docs/how-to/notifications.md"
    ]


def test_a_malformed_url_is_refused_without_its_token():
    problems = read({"NOTIFY_URLS": f"ntfy://ntfy.example.org/ok tgram://{TOKEN}"})[1]

    assert problems == [
        "NOTIFY_URLS: the 2nd URL (tgram://…) is not a tgram:// URL Apprise can use: a part is missing or "
        "malformed; see docs/how-to/notifications.md"
    ]
    assert TOKEN not in problems[0]


def test_text_that_is_no_url_says_what_a_url_starts_with():
    assert read({"NOTIFY_URLS": "ntfy.example.org/backups"})[1] == [
        "NOTIFY_URLS: the 1st URL (no scheme) is not a URL: it must start with a scheme such as mailto://, "
        "ntfy:// or gotify://; see docs/how-to/notifications.md"
    ]


def test_a_url_from_the_file_is_named_by_the_file_setting_and_never_quoted(tmp_path):
    (tmp_path / "urls").write_text(f"discord://{TOKEN}\n")

    problems = read({"NOTIFY_URLS_FILE": str(tmp_path / "urls")})[1]

    assert problems == [
        "NOTIFY_URLS_FILE: the 1st URL (discord://…) is not a discord:// URL Apprise can use: a part is missing "
        "or malformed; see docs/how-to/notifications.md"
    ]


@pytest.mark.parametrize(
    ("url", "seen"),
    [
        ("ntfy://ntfy.example.org:8080/topic", "ntfy://ntfy.example.org/…"),
        ("ntfy://secret-topic", "ntfy://…"),
        (f"tgram://123456:{TOKEN}/987654", "tgram://…"),
        ("mailtos://user:password@smtp.example.org?to=a@example.org", "mailtos://smtp.example.org/…"),
        ("gotify://[fd00::1]/token", "gotify://[fd00::1]/…"),
        ("no url", "no scheme"),
    ],
)
def test_a_url_is_shown_as_its_scheme_and_only_a_host_that_is_a_name(url, seen):
    assert notify.shown(url) == seen


def test_a_message_is_queued_for_every_url_only_if_its_event_is_wanted(tmp_path):
    wanted = Notify(("json://a.example.org/n", "json://b.example.org/n"), frozenset({"failure"}))
    failure = Message("failure", "backup of web failed on app-host", "Why.", "run-1")

    assert notify.queue(tmp_path, failure, wanted)
    assert not notify.queue(tmp_path, Message("success", "t", "b", "run-2"), wanted)

    [entry] = outbox.entries(tmp_path)
    assert entry.document == {"id": "run-1", "event": "borg-appliance-notification", "kind": "failure",
                              "title": "backup of web failed on app-host", "body": "Why."}  # fmt: skip
    assert entry.pending == wanted.urls


def test_a_title_and_body_are_cut_to_what_every_service_shows():
    document = Message("failure", "t" * 300, "b" * 5000, "k").document()

    assert (len(document["title"]), len(document["body"])) == (250, 4000)
    assert document["title"].endswith("…") and document["body"].endswith("…")


class FakeApprise:
    """Stands for apprise.Apprise: records what it was asked to send; answers with the next of answers."""

    sent: list = []
    answers: list = []

    def __init__(self, asset=None):
        pass

    def add(self, url):
        self.url = url
        return True

    def notify(self, title, body, body_format):
        FakeApprise.sent.append((self.url, title, body))
        return FakeApprise.answers.pop(0)


@pytest.fixture
def fake_apprise(monkeypatch):
    import apprise

    FakeApprise.sent, FakeApprise.answers = [], []
    monkeypatch.setattr(apprise, "Apprise", FakeApprise)
    return FakeApprise


def test_flush_sends_each_notification_once_per_url_with_apprise_timeouts(tmp_path, fake_apprise):
    wanted = Notify(("json://a.example.org/n", "ntfy://n.example.org/t?priority=high"), frozenset({"failure"}))
    notify.queue(tmp_path, Message("failure", "title", "body", "run-1"), wanted)
    fake_apprise.answers = [True, True]

    result = notify.flush(tmp_path, wanted, timeout=7)

    assert fake_apprise.sent == [
        ("json://a.example.org/n?cto=7&rto=7", "title", "body"),
        ("ntfy://n.example.org/t?priority=high&cto=7&rto=7", "title", "body"),
    ]
    assert (result.delivered, result.pending) == (2, 0)
    assert notify.flush(tmp_path, wanted, timeout=7) is None  # nothing waits: nothing is sent again


def test_a_notification_apprise_could_not_send_stays_in_the_outbox_for_the_next_flush(tmp_path, fake_apprise,
                                                                                         monkeypatch):  # fmt: skip
    monkeypatch.setattr(delivery.time, "sleep", lambda seconds: None)
    wanted = Notify(("json://a.example.org/n",), frozenset({"failure"}))
    notify.queue(tmp_path, Message("failure", "title", "body", "run-1"), wanted)
    fake_apprise.answers = [False] * 5

    assert notify.flush(tmp_path, wanted, timeout=1, max_seconds=60).pending == 1
    assert len(fake_apprise.sent) == 5

    fake_apprise.answers = [True]
    assert notify.flush(tmp_path, wanted, timeout=1).delivered == 1
    assert outbox.size(tmp_path) == 0


@pytest.mark.parametrize(
    ("captured", "reason"),
    [
        ("Failed to send ntfy notification: Connection refused", "the service did not take it (connection refused)"),
        (
            "Failed to send JSON notification: Internal Server Error - error=500.",
            "the service did not take it (HTTP 500)",
        ),
        ("A connection error occurred sending to host:2525/secret", "the service did not take it"),
        (
            "Socket Exception: [Errno -3] Temporary failure in name resolution",
            "the service did not take it (name not found)",
        ),
    ],
)
def test_why_apprise_failed_is_told_without_its_text(captured, reason):
    assert notify._reason(captured) == reason
