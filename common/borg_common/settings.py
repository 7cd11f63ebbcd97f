"""Strict readers for settings from the environment or a file, collecting every problem before failing.

A setting is asked for by its variable name (BORG_CLIENT_WEB_KEY); a file's entry may stand for it (the
YAML field clients.web.key). Wherever it is written, its _FILE (_file) form names a file with the value,
both set is a problem and so is an unreadable file. A reader never raises on a user's mistake: it records
one line naming the setting as the user wrote it and returns a default, so that a caller can validate
everything, then report all problems at once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from borg_common.urls import NOT_HTTP, is_http_url, shown_url

TRUE_WORDS = ("yes", "true", "on", "1")
FALSE_WORDS = ("no", "false", "off", "0")

SIZE_UNITS = {"": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "P": 1000**5}
SIZE_PATTERN = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([KMGTP]?)B?$", re.IGNORECASE)

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION_PATTERN = re.compile(r"^([0-9]+)\s*([smhdw]?)$")

LOG_LEVELS = tuple(logging.getLevelNamesMapping())  # the levels Python's logging knows (LOG_LEVEL)
CLIENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")  # a client's name, on the server and in the sidecar


@dataclass(frozen=True)
class Written:
    """One setting as the user wrote it: its value and the file holding its value ("" if not given), named
    by where it is written ("" in the environment, "BORG_SERVER_CONFIG (path) clients.web.") and its name there
    (BORG_CLIENT_WEB_KEY, key) or its file's name (BORG_CLIENT_WEB_KEY_FILE, key_file)."""

    name: str
    file_name: str
    value: str = ""
    file: str = ""
    where: str = ""

    @property
    def label(self) -> str:
        """Return how a problem names the setting's value."""
        return self.where + self.name

    @property
    def file_label(self) -> str:
        """Return how a problem names the setting's file."""
        return self.where + self.file_name


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
    """Given an environment mapping (and with add_file a file's entries), read typed settings and collect problems.

    Every reader takes the variable name and returns a value (the default when the setting is
    unset or wrong); a wrong value adds a problem instead of raising. `check()` raises
    ConfigError with all problems.
    """

    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ
        self.file_entries: Mapping[str, Written] = {}  # variable name -> the file's entry standing for it
        self.problems: list[str] = []

    def add_file(self, entries: Mapping[str, Written]) -> None:
        """Given a file's entries by the variable each stands for, read those settings from the file from now on.

        A setting the environment sets too is a problem, named as the environment sets it.
        """
        for name, entry in entries.items():
            variable = self._environment(name)
            if variable.value or variable.file:
                shown = variable.label if variable.value else variable.file_label
                self.problem(shown, f"is also set as {entry.label}; set it in one place")
        self.file_entries = {**self.file_entries, **entries}

    def written(self, name: str) -> Written:
        """Given a variable name, return how the setting is written: in the file if there, else in the environment."""
        return self.file_entries[name] if name in self.file_entries else self._environment(name)

    def _environment(self, name: str) -> Written:
        """Given a variable name, return how the environment writes that setting."""
        return Written(name, f"{name}_FILE", self.environ.get(name, ""), self.environ.get(f"{name}_FILE", ""))

    def label(self, name: str) -> str:
        """Given a variable name, return how a problem names that setting: the way the user wrote it."""
        return self.written(name).label

    def problem(self, setting: str, message: str) -> None:
        """Record that setting (as the user reads it, see label()) is wrong, as one line: "SETTING: message"."""
        self.problems.append(f"{setting}: {message}")

    def check(self) -> None:
        """Raise ConfigError if any problem was recorded."""
        if self.problems:
            raise ConfigError(list(self.problems))

    def is_set(self, name: str) -> bool:
        """Return whether name or its file form is set to a non-empty value."""
        written = self.written(name)
        return bool(written.value or written.file)

    def string(self, name: str, default: str | None = None) -> str | None:
        """Given name, return its value, read from the file its _FILE form names if that is set.

        Both set is a problem; so is an unreadable file. A file's trailing newline is dropped.
        """
        written = self.written(name)
        if written.value and written.file:
            self.problem(written.label, f"both {written.name} and {written.file_name} are set; set only one")
            return default
        if written.file:
            try:
                return Path(written.file).read_text(encoding="utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as error:
                reason = getattr(error, "strerror", None) or str(error)
                self.problem(written.file_label, f"cannot read {written.file}: {reason}")
                return default
        return written.value or default

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
        self.problem(self.label(name), f"{value!r} is not a boolean; use one of {', '.join(TRUE_WORDS + FALSE_WORDS)}")
        return default

    def integer(self, name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
        """Return name as a whole number within [minimum, maximum]."""
        value = self.string(name)
        if value is None:
            return default
        try:
            number = int(value.strip())
        except ValueError:
            self.problem(self.label(name), f"{value!r} is not a whole number")
            return default
        too_small = minimum is not None and number < minimum
        too_large = maximum is not None and number > maximum
        if too_small or too_large:
            if minimum is not None and maximum is not None:
                self.problem(self.label(name), f"{number} is out of range {minimum}..{maximum}")
            else:
                limit = f"the minimum is {minimum}" if too_small else f"the maximum is {maximum}"
                self.problem(self.label(name), f"{number} is too {'small' if too_small else 'large'}; {limit}")
            return default
        return number

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        """Return name if it is one of allowed, else record a problem listing them."""
        value = self.string(name)
        if value is None:
            return default
        if value not in allowed:
            self.problem(self.label(name), f"{value!r} is not one of {', '.join(allowed)}")
            return default
        return value

    def words(self, name: str) -> list[str]:
        """Return name split on white space and commas."""
        value = self.string(name) or ""
        return [word for word in re.split(r"[\s,]+", value) if word]

    def duration(self, name: str, default: int, minimum: int | None = None) -> int:
        """Return name as seconds, at least minimum; accepts a number with an optional unit s, m, h, d or w."""
        value = self.string(name)
        if value is None:
            return default
        seconds = parse_duration(value)
        if seconds is None:
            self.problem(self.label(name), f"{value!r} is not a duration; use a number with s, m, h, d or w (e.g. 26h)")
            return default
        if minimum is not None and seconds < minimum:
            self.problem(self.label(name), f"{seconds}s is too short; use at least {minimum}s")
            return default
        return seconds

    def log_level(self, name: str, default: str = "INFO", levels: tuple[str, ...] = LOG_LEVELS) -> str:
        """Return name as one of levels (Python's logging levels unless given), in upper case."""
        value = self.string(name)
        if value is None:
            return default
        if value.strip().upper() not in levels:
            self.problem(self.label(name), f"{value!r} is not one of {', '.join(levels)}")
            return default
        return value.strip().upper()

    def urls(self, name: str) -> tuple[str, ...]:
        """Return name's URLs (split like words()); each must be http:// or https:// with a host."""
        urls = tuple(self.words(name))
        for url in urls:
            self._check_url(name, url)
        return urls

    def url(self, name: str) -> str | None:
        """Return name as one http:// or https:// URL with a host, or None if unset."""
        url = self.string(name)
        if url is not None:
            self._check_url(name, url)
        return url

    def _check_url(self, name: str, url: str) -> None:
        """Record a problem if url is not http(s) with a host; its secrets are never shown."""
        if not is_http_url(url):
            self.problem(self.label(name), f"{shown_url(url)!r} {NOT_HTTP}")


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
