"""What a setting's value may look like, read strictly, and how a problem may show a value it refuses.

Numbers are ASCII digits only (int() would take "１２" or "1_000"), with a bounded number of digits so
that no conversion can fail; text has no control characters and a bounded length. A value a problem
shows is cut and escaped, so that a 100 kB value or an escape sequence never reaches a terminal whole.
Durations and sizes shown to people (messages, alerts, notifications, the status page) are written here too.
"""

from __future__ import annotations

import re
from decimal import Decimal

MAX_TEXT = 16_384  # characters in any one setting (an RSA 16384-bit public key is about 2,800)
MAX_SHOWN = 40  # characters of a refused value a problem quotes
EDGES = " \t\r\n"  # what is trimmed around a value: ASCII white space only

SIZE_UNITS = {"": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "P": 1000**5}
SIZE_PATTERN = re.compile(r"([0-9]{1,18}(?:\.[0-9]{1,9})?) *([KMGTP]?)B?", re.IGNORECASE)
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION_PATTERN = re.compile(r"([0-9]{1,18}) *([smhdw]?)")
INTEGER_PATTERN = re.compile(r"[+-]?[0-9]{1,18}")


def parse_size(text: str) -> int | None:
    """Given a size such as 50G, 1.5T or 500M (decimal units), return bytes, or None if malformed."""
    match = SIZE_PATTERN.fullmatch(text.strip(EDGES))
    if not match:
        return None
    number, unit = match.groups()
    return int(Decimal(number) * SIZE_UNITS[unit.upper()])


def parse_duration(text: str) -> int | None:
    """Given a duration such as 90, 15m or 26h, return seconds, or None if malformed."""
    match = DURATION_PATTERN.fullmatch(text.strip(EDGES))
    if not match:
        return None
    number, unit = match.groups()
    return int(number) * DURATION_UNITS[unit or "s"]


def parse_integer(text: str) -> int | None:
    """Given a whole number in ASCII digits (at most 18, optionally signed), return it, or None if malformed."""
    text = text.strip(EDGES)
    return int(text) if INTEGER_PATTERN.fullmatch(text) else None


def control_character(text: str, allowed: str = "") -> str | None:
    """Given text, return its first control character (C0, DEL or C1) not in allowed, or None."""
    return next((c for c in text if (c < " " or "\x7f" <= c <= "\x9f") and c not in allowed), None)


def text_problem(text: str, limit: int = MAX_TEXT, allowed: str = "\t\n") -> str | None:
    """Given a value, return what is wrong with its length or characters (without quoting it), or None."""
    if len(text) > limit:
        return f"is {len(text)} characters long; the limit is {limit}"
    control = control_character(text, allowed)
    if control is not None:
        return f"contains the control character 0x{ord(control):02X}; remove it"
    return None


def quoted(text: str, limit: int = MAX_SHOWN) -> str:
    """Given a value that is no secret, return it quoted for a message: escaped, cut to limit characters."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def cut(text: str, limit: int = 2 * MAX_SHOWN) -> str:
    """Given text that is no secret (a path, a name), return it for a message unquoted: control characters
    escaped, cut to limit characters."""
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return "".join(c if control_character(c) is None else f"\\x{ord(c):02x}" for c in text)


def duration_text(seconds: int) -> str:
    """Given seconds, return them in the largest unit that divides them (90s, 15m, 26h, 7d, 2w)."""
    for unit, size in sorted(DURATION_UNITS.items(), key=lambda item: -item[1]):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def human_duration(seconds: float) -> str:
    """Return seconds as a person reads them: the two largest units ("1d 2h", "3m 5s", "0s")."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, rest = divmod(rest, 60)
    parts = [f"{value}{unit}" for value, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (rest, "s")) if value]
    return " ".join(parts[:2]) or "0s"


def human_size(size: int | None) -> str:
    """Given bytes (or None), return them for people in decimal units ("1.2 MB"), "-" for None."""
    if size is None:
        return "-"
    if size < 1000:
        return f"{size} B"
    for unit in ("kB", "MB", "GB", "TB"):
        size /= 1000
        if round(size, 1) < 1000 or unit == "TB":
            return f"{size:.1f} {unit}"
    return str(size)


def size_text(size: int) -> str:
    """Given bytes, return them in the largest decimal unit that divides them (10M, 1P)."""
    for unit, factor in sorted(SIZE_UNITS.items(), key=lambda item: -item[1]):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)
