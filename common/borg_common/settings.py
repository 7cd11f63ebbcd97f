"""Strict readers for settings from the environment, collecting every problem before failing.

A reader never raises on a user's mistake: it records one line naming the setting and returns a
default, so that a caller can validate everything, then report all problems at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

TRUE_WORDS = ("yes", "true", "on", "1")
FALSE_WORDS = ("no", "false", "off", "0")

SIZE_UNITS = {"": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "P": 1000**5}
SIZE_PATTERN = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([KMGTP]?)B?$", re.IGNORECASE)

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION_PATTERN = re.compile(r"^([0-9]+)\s*([smhdw]?)$")


class ConfigError(Exception):
    """Raised once with every problem found; each problem is one line naming its setting."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems

    def explain(self, program: str, consequence: str = "") -> str:
        """Return what a user reads: a headline, then one indented line per problem."""
        headline = f"{program}: the configuration has {len(self.problems)} problem(s){consequence}:"
        return "\n".join([headline, *(f"  {problem}" for problem in self.problems)])


class Settings:
    """Given an environment mapping, read typed settings and collect problems.

    Every reader takes the variable name and returns a value (the default when the variable is
    unset or wrong); a wrong value adds a problem instead of raising. `check()` raises
    ConfigError with all problems.
    """

    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ
        self.problems: list[str] = []

    def problem(self, setting: str, message: str) -> None:
        """Record that setting is wrong, as one line: "SETTING: message"."""
        self.problems.append(f"{setting}: {message}")

    def check(self) -> None:
        """Raise ConfigError if any problem was recorded."""
        if self.problems:
            raise ConfigError(list(self.problems))

    def is_set(self, name: str) -> bool:
        """Return whether name or name_FILE is set to a non-empty value."""
        return bool(self.environ.get(name) or self.environ.get(f"{name}_FILE"))

    def string(self, name: str, default: str | None = None) -> str | None:
        """Given name, return its value, read from the file named by name_FILE if that is set.

        Both set is a problem; so is an unreadable file. A file's trailing newline is dropped.
        """
        value = self.environ.get(name, "")
        file_name = self.environ.get(f"{name}_FILE", "")
        if value and file_name:
            self.problem(name, f"both {name} and {name}_FILE are set; set only one")
            return default
        if file_name:
            try:
                return Path(file_name).read_text(encoding="utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as error:
                reason = getattr(error, "strerror", None) or str(error)
                self.problem(f"{name}_FILE", f"cannot read {file_name}: {reason}")
                return default
        return value if value else default

    def boolean(self, name: str, default: bool) -> bool:
        """Return name as a boolean from a fixed vocabulary (yes/no, true/false, on/off, 1/0)."""
        value = self.string(name)
        if value is None:
            return default
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        self.problem(name, f"{value!r} is not a boolean; use one of {', '.join(TRUE_WORDS + FALSE_WORDS)}")
        return default

    def integer(self, name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
        """Return name as a whole number within [minimum, maximum]."""
        value = self.string(name)
        if value is None:
            return default
        try:
            number = int(value.strip())
        except ValueError:
            self.problem(name, f"{value!r} is not a whole number")
            return default
        too_small = minimum is not None and number < minimum
        too_large = maximum is not None and number > maximum
        if too_small or too_large:
            if minimum is not None and maximum is not None:
                self.problem(name, f"{number} is out of range {minimum}..{maximum}")
            else:
                limit = f"the minimum is {minimum}" if too_small else f"the maximum is {maximum}"
                self.problem(name, f"{number} is too {'small' if too_small else 'large'}; {limit}")
            return default
        return number

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        """Return name if it is one of allowed, else record a problem listing them."""
        value = self.string(name)
        if value is None:
            return default
        if value not in allowed:
            self.problem(name, f"{value!r} is not one of {', '.join(allowed)}")
            return default
        return value

    def words(self, name: str) -> list[str]:
        """Return name split on white space and commas."""
        value = self.string(name) or ""
        return [word for word in re.split(r"[\s,]+", value) if word]

    def duration(self, name: str, default: int) -> int:
        """Return name as seconds; accepts a number with an optional unit s, m, h, d or w."""
        value = self.string(name)
        if value is None:
            return default
        seconds = parse_duration(value)
        if seconds is None:
            self.problem(name, f"{value!r} is not a duration; use a number with s, m, h, d or w (e.g. 26h)")
            return default
        return seconds


def parse_size(text: str) -> int | None:
    """Given a size such as 50G, 1.5T or 500M (decimal units), return bytes, or None if malformed."""
    match = SIZE_PATTERN.match(text.strip())
    if not match:
        return None
    number, unit = match.groups()
    return int(Decimal(number) * SIZE_UNITS[unit.upper()])


def parse_duration(text: str) -> int | None:
    """Given a duration such as 90, 15m or 26h, return seconds, or None if malformed."""
    match = DURATION_PATTERN.match(text.strip())
    if not match:
        return None
    number, unit = match.groups()
    return int(number) * DURATION_UNITS[unit or "s"]
