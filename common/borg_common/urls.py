"""What both images accept as a report URL, and how a URL is shown without its secrets.

A URL may carry a secret in its user info, its query or anywhere in its path (a Healthchecks
UUID, a webhook token, a path that is itself the password), so wherever a person reads a URL
(logs, check-config, status, reports, problem messages) it is shown as scheme://host[:port]/…:
the scheme, host and port, and nothing after them.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

NOT_HTTP = "is not an http:// or https:// URL with a host"
HIDDEN = "/…"


def redact_url(url: str) -> str:
    """Given a URL, return scheme://host[:port]/… (/… only if a path, query or fragment follows the host).

    User info, path, query and fragment are never shown: any of them may be a secret.
    """
    return shown_url(re.sub(r"^([^/?#]*://)[^/?#]*@", r"\1", url))


def shown_url(text: str) -> str:
    """Given text meant as a URL (perhaps malformed), return it as a person may read it: scheme://host[:port]/….

    User info (shown as ***@, so a problem can say there is some), path, query and fragment are
    hidden; text without :// shows only what precedes its first /, ? or # (a "mailto:" keeps its
    address, which is no secret).
    """
    scheme, separator, rest = text.partition("://")
    if not separator:
        scheme, rest = "", text
    authority, hidden = re.fullmatch(r"([^/?#]*)(.*)", rest, re.DOTALL).groups()
    if "@" in authority and separator:
        authority = "***@" + authority.rpartition("@")[2]
    shown = f"{scheme}{separator}{authority}"
    return shown + (HIDDEN if hidden.strip("/") else hidden)


def is_http_url(url: str) -> bool:
    """Given a URL, return whether it is http:// or https:// with a host."""
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False
