"""Shipping documents over HTTP: one POST with a timeout, retried with tenacity, flushed from the outbox.

Only transport errors, HTTP 5xx and 429 are retried (exponential backoff with jitter, capped by
attempts and by total time). Any other answer outside 2xx is permanent. URLs are logged redacted.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import tenacity

from borg_common import outbox
from borg_common.urls import redact_url

logger = logging.getLogger(__name__)

RETRYABLE_TRANSPORT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class DeliveryError(Exception):
    """A POST did not deliver; the message says why (never the URL's secrets)."""


class RetryableDeliveryError(DeliveryError):
    """A failure that may go away: transport error, HTTP 5xx or 429."""


class PermanentDeliveryError(DeliveryError):
    """A failure retrying will not fix: any other non-2xx answer, or a URL requests cannot use."""


class Outcome(enum.Enum):
    """How one delivery ended after its retries."""

    DELIVERED = "delivered"
    GAVE_UP = "gave up"  # retryable failures until a cap: keep the document for later
    REJECTED = "rejected"  # permanent failure: keeping the document would not help


@dataclass(frozen=True)
class FlushResult:
    """What one flush did: deliveries made (one per document and URL) and documents still waiting."""

    delivered: int
    pending: int


def post_json(session: Any, url: str, document: dict[str, Any], timeout: float) -> None:
    """Given a session, POST the document as JSON to url once, with an Idempotency-Key if it has an id.

    Return on 2xx; raise RetryableDeliveryError for transport errors, 5xx and 429, and
    PermanentDeliveryError for every other answer.
    """
    headers = {"Content-Type": "application/json"}
    key = document.get("run_id") or document.get("id")
    if key:
        headers["Idempotency-Key"] = str(key)
    _post(session, url, json.dumps(document).encode("utf-8"), headers, timeout)


def ping(
    url: str,
    *,
    body: str = "",
    timeout: float = 10.0,
    session: Any = None,
    attempts: int = 3,
    max_seconds: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Given a Healthchecks-style URL (…/start, success, …/fail), POST body as text with retries.

    Return True if the ping arrived, False if not; failures are logged, never raised.
    """
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    send = functools.partial(_post, url=url, data=body.encode("utf-8"), headers=headers, timeout=timeout)
    return _attempt_and_log(url, "ping", send, session, attempts, max_seconds, sleep)


def flush(
    directory: Path,
    urls: list[str],
    *,
    session: Any = None,
    attempts: int = 5,
    max_seconds: float = 120.0,
    timeout: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    send: Callable[..., None] | None = None,
    shown: Callable[[str], str] = redact_url,
) -> FlushResult:
    """Given the outbox directory and the configured URLs, send waiting documents oldest first.

    send(session, url, document, timeout) delivers one document once (default: post_json), raising
    RetryableDeliveryError or PermanentDeliveryError; shown(url) is how a log line shows a URL.

    A URL that gives up is skipped for the rest of this flush (other URLs continue); a URL that
    rejects a document is dropped from it with an error that includes the document; URLs no
    longer configured are dropped with one warning each. Raise OSError if the outbox cannot be
    written.
    """
    configured = set(urls)
    dead: set[str] = set()
    removed: set[str] = set()
    delivered = 0
    with _session(session) as active:
        policy = (active, attempts, max_seconds, sleep)
        for entry in outbox.entries(directory):
            delivered += _flush_entry(entry, configured, dead, removed, timeout, policy, send or post_json, shown)
    return FlushResult(delivered=delivered, pending=outbox.size(directory))


def _flush_entry(
    entry: outbox.Entry,
    configured: set[str],
    dead: set[str],
    removed: set[str],
    timeout: float,
    policy: tuple,
    sender: Callable[..., None] = post_json,
    shown_as: Callable[[str], str] = redact_url,
) -> int:
    """Send one entry to its pending URLs that are configured and not dead; update dead, removed and the outbox.

    Return how many deliveries were made.
    """
    current: outbox.Entry | None = entry
    what = _describe(entry.document)
    delivered = 0
    for url in entry.pending:
        if current is None:
            break
        shown = shown_as(url)
        if url not in configured:
            if url not in removed:
                removed.add(url)
                logger.warning("%s is no longer a receiver; dropping it from the outbox", shown)
            current = outbox.mark_done(current, url)
            continue
        if url in dead:
            continue
        send = functools.partial(sender, url=url, document=entry.document, timeout=timeout)
        outcome, reason = _attempt(url, what, send, *policy, shown=shown)
        if outcome is Outcome.GAVE_UP:
            dead.add(url)
            current = outbox.record_failure(current, url)
            logger.warning(
                "%s to %s: %s; kept in the outbox, receiver skipped until the next flush", what, shown, reason
            )
            continue
        if outcome is Outcome.REJECTED:
            document = json.dumps(entry.document, sort_keys=True)
            logger.error("%s to %s rejected (%s); dropped for that receiver: %s", what, shown, reason, document)
        else:
            delivered += 1
        current = outbox.mark_done(current, url)
    return delivered


def _post(session: Any, url: str, data: bytes, headers: dict[str, str], timeout: float) -> None:
    # Transport errors are named by type only: requests' messages repeat the URL with its query.
    try:
        response = session.post(url, data=data, headers=headers, timeout=timeout)
    except RETRYABLE_TRANSPORT as error:
        raise RetryableDeliveryError(type(error).__name__) from error
    except requests.RequestException as error:
        raise PermanentDeliveryError(type(error).__name__) from error
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 429 or status >= 500:
        raise RetryableDeliveryError(f"HTTP {status}")
    raise PermanentDeliveryError(f"HTTP {status}")


def _attempt(
    url: str,
    what: str,
    send: Callable[[Any], None],
    session: Any,
    attempts: int,
    max_seconds: float,
    sleep: Callable[[float], None],
    shown: str | None = None,
) -> tuple[Outcome, str]:
    """Call send(session) under the retry policy; log each retry and success; return the outcome and why."""
    shown = shown or redact_url(url)

    def log_retry(state: tenacity.RetryCallState) -> None:
        reason = state.outcome.exception() if state.outcome else None
        wait = state.upcoming_sleep
        logger.warning(
            "%s to %s: attempt %d failed (%s); retrying in %.1f s", what, shown, state.attempt_number, reason, wait
        )

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts) | tenacity.stop_after_delay(max_seconds),
        wait=tenacity.wait_exponential_jitter(initial=1, max=30),
        retry=tenacity.retry_if_exception_type(RetryableDeliveryError),
        before_sleep=log_retry,
        sleep=sleep,
        reraise=True,
    )
    with _session(session) as active:
        try:
            retrying(send, active)
        except RetryableDeliveryError as error:
            return Outcome.GAVE_UP, f"gave up after {retrying.statistics['attempt_number']} attempt(s), last {error}"
        except PermanentDeliveryError as error:
            return Outcome.REJECTED, str(error)
    logger.info("%s delivered to %s", what, shown)
    return Outcome.DELIVERED, "delivered"


def _attempt_and_log(url: str, what: str, send: Callable[[Any], None], *policy: Any) -> bool:
    """Run _attempt and log a failure the way ping reports it; return whether it arrived."""
    outcome, reason = _attempt(url, what, send, *policy)
    if outcome is Outcome.GAVE_UP:
        logger.warning("%s to %s: %s", what, redact_url(url), reason)
    elif outcome is Outcome.REJECTED:
        logger.error("%s to %s rejected (%s); not retrying", what, redact_url(url), reason)
    return outcome is Outcome.DELIVERED


def _session(session: Any) -> contextlib.AbstractContextManager[Any]:
    """Use the given session as is, or open a requests.Session closed afterwards."""
    return contextlib.nullcontext(session) if session is not None else requests.Session()


def _describe(document: dict[str, Any]) -> str:
    key = document.get("run_id") or document.get("id")
    return f"document {key}" if key else "document"
