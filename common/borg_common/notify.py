"""Notifications for a person, through Apprise: NOTIFY_URLS and NOTIFY_ON, the message, its outbox and delivery.

A notification is a document {"id", "event", "kind", "title", "body"} kept in its own outbox (one
directory per image, beside the reports' outbox) before anything is sent, then delivered to every
Apprise URL by borg_common.delivery's flush with the reports' retries: kept across restarts, at most
once per event and URL. Apprise is imported only when there is something to check or send.

What builds the title and body lives with the event (the sidecar's runs: borg_client.notices, the
server's alerts: monitor/alerts.py, the weekly digests: borg_common.digest); this module only checks, keeps
and sends.
An Apprise URL carries its secret anywhere (a Telegram token is its host), so a URL is shown as its
scheme and position only, with its host when that is a DNS name or an address.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from borg_common import outbox, reports
from borg_common.settings import MAX_URL, MAX_URLS, Settings

if TYPE_CHECKING:
    from borg_common import delivery

logger = logging.getLogger(__name__)

EVENTS = ("failure", "warning", "alert", "digest", "success")  # what NOTIFY_ON may name
DEFAULT_ON = ("failure", "warning", "alert", "digest")  # the digest is the heartbeat: it says the notifier works
SETTINGS = ("NOTIFY_URLS", "NOTIFY_ON")  # both images' (their SETTINGS lists include these)
PAGE = "docs/how-to/notifications.md"
DOCUMENT_EVENT = "borg-appliance-notification"
MAX_TITLE, MAX_BODY = 250, 4000  # characters: what every common service shows in full
OUTBOX_MAX_AGE = 30 * 86400  # seconds an undelivered notification waits for its service
_HOST = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+|\[[0-9A-Fa-f:.]+\]")  # a DNS name with a dot, an address


@dataclass(frozen=True)
class Notify:
    """The validated settings: the Apprise URLs and the events sent to them."""

    urls: tuple[str, ...] = ()
    on: frozenset[str] = field(default_factory=lambda: frozenset(DEFAULT_ON))

    def wants(self, event: str) -> bool:
        """Return whether an event of this kind (one of EVENTS) is sent."""
        return bool(self.urls) and event in self.on


@dataclass(frozen=True)
class Message:
    """One notification: its event (one of EVENTS), what a person reads, and the id of what it is about."""

    event: str
    title: str
    body: str
    key: str

    def document(self) -> dict[str, Any]:
        """Return the document kept in the outbox (title and body cut to what every service shows)."""
        title = self.title if len(self.title) <= MAX_TITLE else self.title[: MAX_TITLE - 1] + "…"
        body = self.body if len(self.body) <= MAX_BODY else self.body[: MAX_BODY - 1] + "…"
        return {"id": self.key, "event": DOCUMENT_EVENT, "kind": self.event, "title": title, "body": body}


def read(settings: Settings) -> Notify:
    """Given the settings, return NOTIFY_URLS and NOTIFY_ON; record a problem for every URL Apprise cannot use
    and every unknown event (NOTIFY_URLS_FILE is the form for URLs with a token)."""
    urls = tuple(word for word in re.split(r"\s+", settings.string("NOTIFY_URLS", limit=MAX_URLS * MAX_URL) or "")
                 if word)  # fmt: skip
    label = settings.label("NOTIFY_URLS")
    if len(urls) > MAX_URLS:
        settings.problem(label, f"has {len(urls)} URLs; the limit is {MAX_URLS}")
        urls = ()
    for number, url in enumerate(urls, 1):
        problem = url_problem(url)
        if problem:
            settings.problem(label, f"the {ordinal(number)} URL ({shown(url)}) {problem}; see {PAGE}")
    on = settings.words("NOTIFY_ON")
    unknown = [word for word in on if word not in EVENTS]
    if unknown:
        shown_words = settings.shown("NOTIFY_ON", " ".join(unknown))
        settings.problem(settings.label("NOTIFY_ON"), f"{shown_words} is not an event; use some of {', '.join(EVENTS)}")
        on = []
    return Notify(urls=urls, on=frozenset(on) if on else frozenset(DEFAULT_ON))


def url_problem(url: str) -> str | None:
    """Given an Apprise URL, return why Apprise cannot use it (never quoting it), or None if it can."""
    if len(url) > MAX_URL:
        return f"is {len(url)} characters long; the limit is {MAX_URL}"
    scheme, separator, _ = url.partition("://")
    if not separator or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        return "is not a URL: it must start with a scheme such as mailto://, ntfy:// or gotify://"
    import apprise  # 0.4 s of plugins: only where NOTIFY_URLS is set
    from apprise.manager_plugins import NotificationManager

    logging.getLogger("apprise").propagate = False  # its lines may quote a URL's parts

    if scheme.lower() not in NotificationManager().schemas():
        return f"has a scheme Apprise does not know ({scheme.lower()}://)"
    if apprise.Apprise.instantiate(url, suppress_exceptions=True) is None:
        return f"is not a {scheme.lower()}:// URL Apprise can use: a part is missing or malformed"
    return None


def shown(url: str) -> str:
    """Given an Apprise URL, return what a person may read of it: scheme://host/… if its host is a DNS name or an
    address, else scheme://… (a host may be a token: tgram://TOKEN/…, ntfy://TOPIC)."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return "no scheme"
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    host = re.sub(r":[0-9]{1,5}$", "", authority)
    return f"{scheme}://{host}/…" if _HOST.fullmatch(host) else f"{scheme}://…"


def ordinal(number: int) -> str:
    """Return 1st, 2nd, 3rd, 4th, … 11th, 12th, 13th, 21st, …"""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def queue(directory: Path, message: Message, notify: Notify) -> bool:
    """Keep message in the outbox for every URL if its event is wanted; return whether it was kept.

    Raise OSError if the outbox cannot be written.
    """
    if not notify.wants(message.event):
        return False
    outbox.put(directory, message.document(), list(notify.urls), max_age=OUTBOX_MAX_AGE)
    return True


def flush(directory: Path, notify: Notify, timeout: float, max_seconds: float = 30.0) -> delivery.FlushResult | None:
    """Deliver the notifications waiting in the outbox through Apprise, retrying for at most max_seconds; log
    what is left (reports.flush, the reports' path). Never raises: what cannot be delivered now waits."""
    return reports.flush(directory, notify.urls, timeout, max_seconds, what="notification", send=send, shown=shown)


def send(session: Any, url: str, document: dict[str, Any], timeout: float) -> None:
    """Send one notification document to one Apprise URL (session is unused: Apprise has its own).

    Return when the service took it; raise delivery.RetryableDeliveryError when it did not (Apprise does not
    say whether trying again may help, so it is kept and tried again). Apprise's own log lines stay out of
    the container log: they may repeat a URL's path.
    """
    import apprise

    from borg_common import delivery

    logging.getLogger("apprise").propagate = False  # its lines may quote a URL's parts: captured below
    sender = apprise.Apprise(asset=apprise.AppriseAsset(async_mode=False))
    if not sender.add(_with_timeout(url, timeout)):
        raise delivery.PermanentDeliveryError("Apprise cannot use the URL")
    with apprise.LogCapture(level=logging.DEBUG) as captured:  # read for the kind of error, never shown
        delivered = sender.notify(title=document["title"], body=document["body"], body_format=apprise.NotifyFormat.TEXT)
    if not delivered:
        raise delivery.RetryableDeliveryError(_reason(captured.getvalue()))


def _with_timeout(url: str, timeout: float) -> str:
    """Return url with Apprise's connect and read timeouts (cto, rto) set to timeout unless it sets them."""
    if re.search(r"[?&](cto|rto)=", url):
        return url
    return f"{url}{'&' if '?' in url else '?'}cto={timeout:g}&rto={timeout:g}"


def _reason(captured: str) -> str:
    """Given Apprise's captured log, return why it failed as a kind of error, never with its URL or text."""
    kinds = {"connection refused": "connection refused", "timed out": "timed out", "name or service not known":
             "name not found", "failure in name resolution": "name not found", "certificate verify failed":
             "certificate not trusted", "authentication": "authentication failed"}  # fmt: skip
    for text, kind in kinds.items():
        if text in captured.lower():
            return f"the service did not take it ({kind})"
    found = re.search(r"(?:error|status|HTTP|response)\D{0,12}\b([1-5][0-9]{2})\b", captured, re.IGNORECASE)
    return f"the service did not take it (HTTP {found.group(1)})" if found else "the service did not take it"
