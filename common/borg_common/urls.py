"""What both images accept as a report URL, and how a URL is shown without its secrets.

A URL may carry a secret in its user info, its query or a path segment (a Healthchecks UUID, a
webhook token), so logs and problem messages never show those parts.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

TOKEN_SEGMENT = re.compile(r"(?=.*\d)[A-Za-z0-9_-]{16,}")  # 16+ letters, digits, - or _, with a digit
NOT_HTTP = "is not an http:// or https:// URL with a host"


def redact_url(url: str) -> str:
    """Given a URL, return scheme://host[:port]/path without user info, query (shown as ?…) or fragment.

    Path segments that look like tokens (16+ letters, digits, - or _, with a digit, e.g. a
    Healthchecks UUID or a webhook secret) are shown as … too.
    """
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    query = "?…" if parts.query else ""
    return f"{parts.scheme}://{host}{_mask_tokens(parts.path)}{query}"


def shown_url(text: str) -> str:
    """Given text meant as a URL (perhaps malformed), return it as a problem may show it.

    User info is shown as ***@, token-like path segments as …, and a query or fragment as ?… or #….
    """
    text = re.sub(r"//[^/@]*@", "//***@", text)
    head, mark, _rest = re.fullmatch(r"([^?#]*)([?#]?)(.*)", text, re.DOTALL).groups()
    return _mask_tokens(head) + (f"{mark}…" if mark else "")


def is_http_url(url: str) -> bool:
    """Given a URL, return whether it is http:// or https:// with a host."""
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def _mask_tokens(path: str) -> str:
    """Given a path, return it with every token-like segment shown as …."""
    return "/".join("…" if TOKEN_SEGMENT.fullmatch(segment) else segment for segment in path.split("/"))
