"""Shipping a report: kept in the outbox first, then delivered with retries (client runs, server alerts)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from borg_common import outbox

if TYPE_CHECKING:  # delivery (requests, tenacity) is imported only when there is something to send
    from borg_common import delivery

logger = logging.getLogger(__name__)


def send(
    directory: Path, document: dict, urls: tuple[str, ...], timeout: float, max_age: float | None = None
) -> delivery.FlushResult | None:
    """Store document in the outbox for urls, then deliver everything pending, oldest first.

    The outbox keeps at most outbox.DEFAULT_MAX_ENTRIES documents, and with max_age (seconds) none older.
    Return what the flush did (None without urls). Never raises for a delivery problem: what cannot
    be delivered now stays in the outbox for the next flush.
    """
    if not urls:
        return None
    outbox.put(directory, document, list(urls), max_age=max_age)
    return flush(directory, urls, timeout)


def flush(
    directory: Path,
    urls: tuple[str, ...],
    timeout: float,
    max_seconds: float | None = None,
    *,
    what: str = "report",
    send: Callable[..., None] | None = None,
    shown: Callable[[str], str] | None = None,
) -> delivery.FlushResult | None:
    """Deliver what waits in the outbox, retrying for at most max_seconds (default: 6 timeouts, at
    least 30 s); log what is left, calling the documents what. Return the flush result (None if nothing
    waits). send and shown replace delivery's JSON POST and URL redaction (notifications: Apprise)."""
    if not urls or outbox.size(directory) == 0:
        return None
    from borg_common import delivery  # requests costs every command a fraction of a second to import

    try:
        budget = max_seconds if max_seconds is not None else max(30.0, timeout * 6)
        result = delivery.flush(directory, list(urls), timeout=timeout, max_seconds=budget, send=send,
                                shown=shown or delivery.redact_url)  # fmt: skip
    except OSError as error:
        logger.error("%ss: the outbox %s cannot be written: %s", what, directory, error)
        return None
    if result.pending:
        logger.warning("%ss: %d %s(s) wait in the outbox for the next attempt", what, result.pending, what)
    return result
