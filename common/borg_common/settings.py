"""Strict readers for settings from the environment or a file, collecting every problem before failing.

A setting is asked for by its variable name (BORG_CLIENT_WEB_KEY); a file's entry may stand for it (the
YAML field clients.web.key). Wherever it is written, its _FILE (_file) form names a file with the value,
both set is a problem and so is an unreadable file. A reader never raises on a user's mistake: it records
one line naming the setting as the user wrote it and returns a default, so that a caller can validate
everything, then report all problems at once.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Collection, Mapping

from borg_common.urls import NOT_HTTP, is_http_url, shown_url
from borg_common.values import (
    EDGES,
    MAX_TEXT,
    cut,
    duration_text,
    parse_duration,
    parse_integer,
    parse_size,
    quoted,
    size_text,
    text_problem,
)
from borg_common.written import Written, read_file

TRUE_WORDS = ("yes", "true", "on", "1")
FALSE_WORDS = ("no", "false", "off", "0")

LOG_LEVELS = tuple(logging.getLevelNamesMapping())  # the levels Python's logging knows (LOG_LEVEL)
MAX_URLS, MAX_URL = 20, 2048  # report URLs per setting, characters per URL
CLIENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")  # a client's name, on the server and in the sidecar


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
        """Given a variable name, return how a problem names the setting: as written, or its file if read from one."""
        written = self.written(name)
        return written.file_label if written.file and not written.value else written.label

    def shown(self, name: str, value: str, quote: bool = True) -> str:
        """Given a setting and a value of it that is no secret, return how a problem shows it: quoted and cut
        (as it is if not quote: a number the reader wrote), or, if read from a file, only where it was read
        (a file may hold a secret by mistake)."""
        written = self.written(name)
        if written.file and not written.value:
            return f"the value in {cut(written.file)}"
        return quoted(value) if quote else value

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

    def string(self, name: str, default: str | None = None, limit: int = MAX_TEXT) -> str | None:
        """Given name, return its value, read from the file its _FILE form names if that is set.

        Both set is a problem; so is an unreadable file, a value over limit characters or with a control
        character other than tab and newline. A file's trailing newline is dropped.
        """
        written = self.written(name)
        if written.value and written.file:
            self.problem(written.label, f"both {written.name} and {written.file_name} are set; set only one")
            return default
        value = read_file(self, written, limit) if written.file else written.value
        problem = None if value is None else text_problem(value, limit)
        if problem:
            self.problem(self.label(name), problem)
            return default
        return value or default

    def boolean(self, name: str, default: bool) -> bool:
        """Return name as a boolean from a fixed vocabulary (yes/no, true/false, on/off, 1/0)."""
        value = self.string(name)
        if value is None:
            return default
        word = value.strip(EDGES).lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        words = ", ".join(TRUE_WORDS + FALSE_WORDS)
        self.problem(self.label(name), f"{self.shown(name, value)} is not a boolean; use one of {words}")
        return default

    def integer(self, name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
        """Return name as a whole number (ASCII digits) within [minimum, maximum]."""
        value = self.string(name)
        if value is None:
            return default
        number = parse_integer(value)
        if number is None:
            self.problem(self.label(name), f"{self.shown(name, value)} is not a whole number")
            return default
        within = self._within(name, number, minimum, maximum)
        return default if within is None else within

    def _within(self, name: str, number: int, minimum: int | None, maximum: int | None, show=str) -> int | None:
        """Given a setting's number, return it if within [minimum, maximum]; else record a problem and return None.

        show writes a number as the user would (e.g. as a duration); a number read from a file is not shown.
        """
        if (minimum is None or number >= minimum) and (maximum is None or number <= maximum):
            return number
        subject = self.shown(name, show(number), quote=False)
        if minimum is not None and maximum is not None:
            self.problem(self.label(name), f"{subject} is out of range {show(minimum)}..{show(maximum)}")
        elif minimum is not None:
            self.problem(self.label(name), f"{subject} is too small; the minimum is {show(minimum)}")
        else:
            self.problem(self.label(name), f"{subject} is too large; the maximum is {show(maximum)}")
        return None

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        """Return name if it is one of allowed, else record a problem listing them."""
        value = self.string(name)
        if value is None:
            return default
        if value not in allowed:
            self.problem(self.label(name), f"{self.shown(name, value)} is not one of {', '.join(allowed)}")
            return default
        return value

    def words(self, name: str) -> list[str]:
        """Return name split on white space and commas."""
        value = self.string(name) or ""
        return [word for word in re.split(r"[\s,]+", value) if word]

    def duration(self, name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
        """Return name as seconds within [minimum, maximum]; accepts a number with an optional unit s, m, h, d or w."""
        value = self.string(name)
        if value is None:
            return default
        seconds = parse_duration(value)
        if seconds is None:
            example = "use a number with s, m, h, d or w (e.g. 26h)"
            self.problem(self.label(name), f"{self.shown(name, value)} is not a duration; {example}")
            return default
        within = self._within(name, seconds, minimum, maximum, duration_text)
        return default if within is None else within

    def size(self, name: str, default: int | None, minimum: int, maximum: int) -> int | None:
        """Return name as bytes within [minimum, maximum]; accepts a number with K, M, G, T or P (e.g. 50G)."""
        value = self.string(name)
        if value is None:
            return default
        size = parse_size(value)
        if size is None:
            example = "use a number with K, M, G, T or P (e.g. 50G)"
            self.problem(self.label(name), f"{self.shown(name, value)} is not a size; {example}")
            return default
        within = self._within(name, size, minimum, maximum, size_text)
        return default if within is None else within

    def log_level(self, name: str, default: str = "INFO", levels: tuple[str, ...] = LOG_LEVELS) -> str:
        """Return name as one of levels (Python's logging levels unless given), in upper case."""
        value = self.string(name)
        if value is None:
            return default
        if value.strip(EDGES).upper() not in levels:
            self.problem(self.label(name), f"{self.shown(name, value)} is not one of {', '.join(levels)}")
            return default
        return value.strip(EDGES).upper()

    def urls(self, name: str, limit: int = MAX_URLS) -> tuple[str, ...]:
        """Return name's URLs (split like words()), at most limit; each must be http:// or https:// with a host."""
        urls = tuple(self.words(name))
        if len(urls) > limit:
            self.problem(self.label(name), f"has {len(urls)} URLs; the limit is {limit}")
            return ()
        for url in urls:
            self._check_url(name, url)
        return urls

    def url(self, name: str) -> str | None:
        """Return name as one http:// or https:// URL with a host, or None if unset."""
        url = self.string(name, limit=MAX_URL)
        if url is not None:
            self._check_url(name, url)
        return url

    def _check_url(self, name: str, url: str) -> None:
        """Record a problem if url is not http(s) with a host or too long; its secrets are never shown."""
        written = self.written(name)
        subject = "a URL in the file" if written.file and not written.value else quoted(shown_url(url), 80)
        if len(url) > MAX_URL:
            self.problem(self.label(name), f"a URL is {len(url)} characters long; the limit is {MAX_URL}")
        elif not is_http_url(url):
            self.problem(self.label(name), f"{subject} {NOT_HTTP}")


# Variables Kubernetes sets for every Service in the namespace (a Service named borg-server gives
# BORG_SERVER_SERVICE_HOST, BORG_SERVER_PORT_22_TCP_ADDR, ...): never a typo of a setting.
SERVICE_LINK = re.compile(
    r"[A-Z0-9_]+_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_[0-9]+_(TCP|UDP|SCTP)(_(ADDR|PORT|PROTO))?)?)"
)


def check_unknown(settings: Settings, known: Collection[str], image: str, page: str,
                  reserved: Mapping[str, str] | None = None, skip: tuple[str, ...] = ()) -> None:  # fmt: skip
    """Record a problem for every variable that looks meant for this image but is none of its settings.

    A variable looks meant for it when it shares the first word of a setting (REPORT_URL beside REPORT_URLS,
    KEEP_MONTLY beside KEEP_DAILY) or is spelled close to one (REPROT_URLS); the problem names the closest
    setting, if any. known: the image's settings (each also as _FILE); reserved: variables refused for a reason
    of their own ({name: why}); skip: prefixes another check owns (the server's BORG_CLIENT_).
    """
    names = sorted(set(known) | {f"{name}_FILE" for name in known})
    words = tuple({name.split("_")[0] + "_" for name in known if "_" in name})
    for variable in sorted(name for name, value in settings.environ.items() if value):
        if variable in names or variable.startswith(skip) or SERVICE_LINK.fullmatch(variable):
            continue
        if reserved and variable in reserved:
            settings.problem(variable, reserved[variable])
            continue
        close = difflib.get_close_matches(variable, names, n=1, cutoff=0.8)
        if close or variable.startswith(words):
            hint = f"; did you mean {close[0]}?" if close else ""
            settings.problem(variable, f"is not a setting of the {image}{hint} (its settings: {page})")
