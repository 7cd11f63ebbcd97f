import json
import logging
import tempfile
import types
from pathlib import Path

import pytest
import requests

from borg_common import delivery, outbox

URL = "https://user:secret@reports.example:8443/hook?token=abc123"
SHOWN = "https://reports.example:8443/…"
A = "https://a.example/hook"
B = "https://b.example/hook"


class FakeSession:
    """Records posts; answers each URL from its script (statuses or exceptions), repeating the last step."""

    def __init__(self, script=(200,), urls=None):
        self.scripts = {url: list(steps) for url, steps in (urls or {}).items()}
        self.default, self.calls = list(script), []

    def post(self, url, **kwargs):
        self.calls.append((url, kwargs))
        steps = self.scripts.get(url, self.default)
        step = steps.pop(0) if len(steps) > 1 else steps[0]
        if isinstance(step, BaseException):
            raise step
        return types.SimpleNamespace(status_code=step)

    def urls(self):
        return [url for url, _ in self.calls]

    def run_ids(self):
        return [json.loads(kwargs["data"])["run_id"] for _, kwargs in self.calls]


def send(session, attempts=5, **kwargs):
    """Send one report (run_id r1) to URL the way the images do: from an outbox; return (delivered, waits)."""
    sleeps = []
    with tempfile.TemporaryDirectory() as directory:
        outbox.put(Path(directory), {"run_id": "r1"}, [URL])
        flushed = delivery.flush(Path(directory), [URL], session=session, attempts=attempts, sleep=sleeps.append,
                                 **kwargs)  # fmt: skip
    return flushed.delivered == 1, sleeps


def retry_warnings(caplog):
    return [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]


def test_redact_url_hides_user_password_and_query_tokens():
    assert delivery.redact_url(URL) == SHOWN
    assert "secret" not in delivery.redact_url(URL) and "abc123" not in delivery.redact_url(URL)


def test_redact_url_keeps_scheme_host_and_port_and_hides_the_path():
    assert delivery.redact_url("http://[::1]:8080/api/v1/reports#top") == "http://[::1]:8080/…"


def test_redact_url_hides_token_like_path_segments():
    shown = delivery.redact_url("https://hc-ping.com/5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278/fail")

    assert shown == "https://hc-ping.com/…"


def test_receiver_failing_twice_then_accepting_gets_three_posts_and_two_retry_warnings(caplog):
    session = FakeSession([500, 500, 200])

    with caplog.at_level(logging.WARNING, logger="borg_common.delivery"):
        ok, sleeps = send(session)

    assert ok is True
    assert len(session.calls) == 3
    assert len(sleeps) == 2
    warnings = retry_warnings(caplog)
    assert len(warnings) == 2
    assert warnings[0].startswith(f"document r1 to {SHOWN}: attempt 1 failed (HTTP 500); retrying in ")
    assert "attempt 2 failed" in warnings[1]
    assert "secret" not in caplog.text and "abc123" not in caplog.text


def test_not_found_is_posted_once_and_not_retried(caplog):
    session = FakeSession([404])

    with caplog.at_level(logging.WARNING, logger="borg_common.delivery"):
        ok, sleeps = send(session)

    assert (ok, len(session.calls), sleeps) == (False, 1, [])
    assert [r.levelname for r in caplog.records] == ["ERROR"]
    assert caplog.records[0].getMessage() == (
        f'document r1 to {SHOWN} rejected (HTTP 404); dropped for that receiver: {{"run_id": "r1"}}'
    )


@pytest.mark.parametrize(
    "failure",
    [429, 503, requests.ConnectionError(), requests.Timeout(), requests.exceptions.ChunkedEncodingError()],
    ids=["429", "503", "connection error", "timeout", "broken body"],
)
def test_retryable_failures_are_retried(failure):
    session = FakeSession([failure, 200])

    ok, sleeps = send(session)

    assert (ok, len(session.calls), len(sleeps)) == (True, 2, 1)


def test_the_timeout_is_passed_on_every_post():
    session = FakeSession([500, requests.ConnectionError(), 200])

    send(session, timeout=3.5)

    assert [kwargs["timeout"] for _, kwargs in session.calls] == [3.5, 3.5, 3.5]


def test_delivery_gives_up_after_the_attempt_cap_and_logs_why(caplog):
    session = FakeSession([503])

    with caplog.at_level(logging.WARNING, logger="borg_common.delivery"):
        ok, sleeps = send(session, attempts=4)

    assert (ok, len(session.calls), len(sleeps)) == (False, 4, 3)
    assert caplog.records[-1].getMessage() == (
        f"document r1 to {SHOWN}: gave up after 4 attempt(s), last HTTP 503; kept in the outbox, receiver skipped "
        "until the next flush"
    )


def test_delivery_gives_up_when_the_total_time_cap_is_reached(monkeypatch):
    clock = types.SimpleNamespace(now=0.0)
    monkeypatch.setattr("tenacity.time", types.SimpleNamespace(monotonic=lambda: clock.now))

    class SlowReceiver(FakeSession):
        def post(self, url, **kwargs):
            clock.now += 10.0
            return super().post(url, **kwargs)

    session = SlowReceiver([requests.Timeout()])
    ok, _ = send(session, attempts=100, max_seconds=25.0)

    assert (ok, len(session.calls)) == (False, 3)


def test_waits_grow_exponentially_with_jitter_up_to_thirty_seconds():
    _, sleeps = send(FakeSession([500]), attempts=8)

    assert len(sleeps) == 7
    for number, wait in enumerate(sleeps):
        assert min(2**number, 30) <= wait <= min(2**number + 1, 30)


@pytest.mark.parametrize(
    ("status", "error"),
    [(502, delivery.RetryableDeliveryError), (429, delivery.RetryableDeliveryError)]
    + [(status, delivery.PermanentDeliveryError) for status in (301, 400, 401, 410)],
)
def test_post_json_classifies_answers(status, error):
    with pytest.raises(error, match=f"HTTP {status}"):
        delivery.post_json(FakeSession([status]), URL, {}, 5)


def test_a_url_requests_cannot_use_is_rejected_without_retry():
    session = FakeSession([requests.exceptions.InvalidSchema("no adapter")])

    ok, sleeps = send(session)

    assert (ok, len(session.calls), sleeps) == (False, 1, [])


def test_post_body_is_exactly_the_document_as_json_with_an_idempotency_key():
    session = FakeSession([204])
    document = {"run_id": "r-7", "status": "success", "stats": {"nfiles": 3}}

    delivery.post_json(session, URL, document, 10.0)

    ((url, kwargs),) = session.calls
    assert url == URL
    assert json.loads(kwargs["data"]) == document
    assert kwargs["headers"] == {"Content-Type": "application/json", "Idempotency-Key": "r-7"}


def test_alert_id_becomes_the_idempotency_key_and_a_document_without_id_has_none():
    session = FakeSession([200])

    delivery.post_json(session, URL, {"id": "alert-3"}, 1)
    delivery.post_json(session, URL, {"status": "x"}, 1)

    assert session.calls[0][1]["headers"]["Idempotency-Key"] == "alert-3"
    assert "Idempotency-Key" not in session.calls[1][1]["headers"]


def test_a_flush_without_a_session_opens_and_closes_its_own(monkeypatch):
    made = []

    class OwnSession(FakeSession):
        def __enter__(self):
            made.append(self)
            return self

        def __exit__(self, *exc):
            self.closed = True

    monkeypatch.setattr(delivery.requests, "Session", OwnSession)

    ok, _ = send(None)
    assert ok is True
    assert len(made) == 1 and len(made[0].calls) == 1 and made[0].closed


def test_ping_posts_the_body_as_text_and_retries_like_reports():
    session = FakeSession([502, 200])
    sleeps = []

    ok = delivery.ping("https://hc.example/ping/abc/fail", body="borg: error\n", session=session, sleep=sleeps.append)

    assert (ok, len(session.calls), len(sleeps)) == (True, 2, 1)
    _, kwargs = session.calls[0]
    assert kwargs["data"] == b"borg: error\n"
    assert kwargs["headers"] == {"Content-Type": "text/plain; charset=utf-8"}
    assert kwargs["timeout"] == 10.0


def test_ping_gives_up_after_three_attempts_by_default():
    session = FakeSession([requests.ConnectionError()])

    assert delivery.ping("https://hc.example/ping/abc", session=session, sleep=[].append) is False
    assert len(session.calls) == 3


def fill(directory, *run_ids, urls=(A,)):
    for run_id in run_ids:
        outbox.put(directory, {"run_id": run_id}, list(urls))


def test_flush_sends_oldest_first_and_empties_the_outbox(tmp_path):
    fill(tmp_path, "r1", "r2", "r3")
    session = FakeSession([200])

    result = delivery.flush(tmp_path, [A], session=session, sleep=[].append)

    assert result == delivery.FlushResult(delivered=3, pending=0)
    assert session.run_ids() == ["r1", "r2", "r3"]


def test_flush_of_an_empty_outbox_posts_nothing(tmp_path):
    session = FakeSession()
    assert delivery.flush(tmp_path / "none", [A], session=session) == delivery.FlushResult(0, 0)
    assert session.calls == []


def test_partial_delivery_keeps_only_the_failed_url_pending(tmp_path):
    fill(tmp_path, "r1", urls=(A, B))
    session = FakeSession(urls={A: [200], B: [500]})

    result = delivery.flush(tmp_path, [A, B], session=session, attempts=2, sleep=[].append)

    assert result == delivery.FlushResult(delivered=1, pending=1)
    assert session.urls() == [A, B, B]
    (entry,) = outbox.entries(tmp_path)
    assert (entry.pending, entry.attempts) == ((B,), {B: 1})


def test_a_dead_url_is_skipped_for_the_rest_of_the_flush_while_others_continue(tmp_path, caplog):
    fill(tmp_path, "r1", "r2", "r3", urls=(A, B))
    session = FakeSession(urls={A: [200], B: [requests.ConnectionError()]})

    with caplog.at_level(logging.WARNING, logger="borg_common.delivery"):
        result = delivery.flush(tmp_path, [A, B], session=session, attempts=3, sleep=[].append)

    assert result == delivery.FlushResult(delivered=3, pending=3)
    assert session.urls() == [A, B, B, B, A, A]
    assert [e.pending for e in outbox.entries(tmp_path)] == [(B,), (B,), (B,)]
    assert "kept in the outbox, receiver skipped until the next flush" in caplog.records[-1].getMessage()


def test_documents_left_pending_are_sent_by_the_next_flush(tmp_path):
    fill(tmp_path, "r1", "r2")
    delivery.flush(tmp_path, [A], session=FakeSession([503]), attempts=1)
    session = FakeSession([200])

    assert delivery.flush(tmp_path, [A], session=session) == delivery.FlushResult(2, 0)
    assert session.run_ids() == ["r1", "r2"]


def test_urls_no_longer_configured_are_dropped_with_one_warning_each(tmp_path, caplog):
    fill(tmp_path, "r1", "r2", urls=(A, "https://old:pw@gone.example/x?k=1"))
    session = FakeSession([200])

    with caplog.at_level(logging.WARNING, logger="borg_common.delivery"):
        result = delivery.flush(tmp_path, [A], session=session)

    assert result == delivery.FlushResult(delivered=2, pending=0)
    assert session.urls() == [A, A]
    assert [r.getMessage() for r in caplog.records] == [
        "https://gone.example/… is no longer a receiver; dropping it from the outbox"
    ]


def test_a_rejected_document_is_dropped_for_that_url_and_logged_whole(tmp_path, caplog):
    fill(tmp_path, "r1", "r2", urls=(A, B))
    session = FakeSession(urls={A: [422, 200], B: [200]})

    with caplog.at_level(logging.ERROR, logger="borg_common.delivery"):
        result = delivery.flush(tmp_path, [A, B], session=session, sleep=[].append)

    assert result == delivery.FlushResult(delivered=3, pending=0)
    assert session.urls() == [A, B, A, B]
    (record,) = caplog.records
    assert record.getMessage() == (
        'document r1 to https://a.example/… rejected (HTTP 422); dropped for that receiver: {"run_id": "r1"}'
    )
