"""Tests for the strict settings readers: values, X_FILE secrets, and the one line each mistake becomes."""

import pytest

from borg_common.settings import CLIENT_NAME, LOG_LEVELS, ConfigError, Settings, parse_duration, parse_size
from borg_common.written import Written

BOOLEANS = "yes, true, on, 1, no, false, off, 0"


def read(environ: dict[str, str], reader: str, *arguments):
    """Given an environment and a reader with its arguments, return (value, problems)."""
    settings = Settings(environ)
    return getattr(settings, reader)(*arguments), settings.problems


def test_string_returns_the_variable():
    assert read({"X": " value "}, "string", "X") == (" value ", [])


def test_string_of_an_unset_or_empty_variable_is_the_default():
    assert read({}, "string", "X") == (None, [])
    assert read({"X": ""}, "string", "X", "fallback") == ("fallback", [])


def test_string_reads_x_file_and_drops_only_the_trailing_line_ends(tmp_path):
    (tmp_path / "secret").write_text("  pass word  \r\n\n")

    assert read({"X_FILE": str(tmp_path / "secret")}, "string", "X") == ("  pass word  ", [])


def test_string_with_an_empty_x_file_setting_reads_x(tmp_path):
    assert read({"X": "value", "X_FILE": ""}, "string", "X") == ("value", [])


def test_string_with_both_x_and_x_file_set_is_a_problem(tmp_path):
    (tmp_path / "secret").write_text("file value")

    assert read({"X": "value", "X_FILE": str(tmp_path / "secret")}, "string", "X", "default") == (
        "default",
        ["X: both X and X_FILE are set; set only one"],
    )


def test_string_with_an_unreadable_file_is_a_problem_naming_x_file(tmp_path):
    missing = tmp_path / "absent"

    assert read({"X_FILE": str(missing)}, "string", "X") == (
        None,
        [f"X_FILE: cannot read {missing}: No such file or directory"],
    )


def test_string_with_a_directory_as_file_is_a_problem_naming_x_file(tmp_path):
    assert read({"X_FILE": str(tmp_path)}, "string", "X") == (None, [f"X_FILE: cannot read {tmp_path}: Is a directory"])


def test_string_with_a_file_that_is_not_utf8_is_a_problem(tmp_path):
    (tmp_path / "secret").write_bytes(b"\xff\xfe")

    value, problems = read({"X_FILE": str(tmp_path / "secret")}, "string", "X")

    assert value is None
    assert len(problems) == 1
    assert problems[0].startswith(f"X_FILE: cannot read {tmp_path / 'secret'}: 'utf-8' codec can't decode byte 0xff")


def test_is_set_is_true_for_x_or_x_file_and_false_for_empty_values():
    settings = Settings({"A": "1", "B_FILE": "/f", "C": "", "C_FILE": ""})

    assert [settings.is_set(name) for name in ("A", "B", "C", "D")] == [True, True, False, False]


@pytest.mark.parametrize(
    ("text", "value"),
    [("yes", True), ("TRUE", True), (" On ", True), ("1", True), ("no", False), ("False", False), ("OFF", False)]
    + [("0", False)],
)
def test_boolean_accepts_a_fixed_vocabulary_in_any_case(text, value):
    assert read({"X": text}, "boolean", "X", not value) == (value, [])


@pytest.mark.parametrize("text", ["maybe", "y", "n", "2", "enabled", "yes please"])
def test_boolean_outside_the_vocabulary_is_a_problem_listing_it(text):
    assert read({"X": text}, "boolean", "X", True) == (True, [f"X: {text!r} is not a boolean; use one of {BOOLEANS}"])


def test_boolean_unset_is_the_default():
    assert read({}, "boolean", "X", False) == (False, [])


@pytest.mark.parametrize(("text", "value"), [("1", 1), (" 22 ", 22), ("65535", 65535)])
def test_integer_within_range_is_read(text, value):
    assert read({"PORT": text}, "integer", "PORT", 22, 1, 65535) == (value, [])


@pytest.mark.parametrize(("text", "shown"), [("0", "0"), ("65536", "65536"), ("-5", "-5")])
def test_integer_out_of_range_is_a_problem_giving_the_range(text, shown):
    assert read({"PORT": text}, "integer", "PORT", 22, 1, 65535) == (22, [f"PORT: {shown} is out of range 1..65535"])


@pytest.mark.parametrize("text", ["abc", "2.5", "22 23", "0x16"])
def test_integer_that_is_not_a_whole_number_is_a_problem(text):
    assert read({"PORT": text}, "integer", "PORT", 22) == (22, [f"PORT: {text!r} is not a whole number"])


def test_integer_without_bounds_accepts_any_whole_number():
    assert read({"N": "-12"}, "integer", "N", 0) == (-12, [])


def test_choice_accepts_only_the_allowed_values_exactly():
    allowed = ("lz4", "zstd")

    assert read({"C": "zstd"}, "choice", "C", "lz4", allowed) == ("zstd", [])
    assert read({}, "choice", "C", "lz4", allowed) == ("lz4", [])
    assert read({"C": "ZSTD"}, "choice", "C", "lz4", allowed) == ("lz4", ["C: 'ZSTD' is not one of lz4, zstd"])


def test_words_splits_on_white_space_and_commas():
    assert read({"W": " web, db-1\n  mail,,files\t"}, "words", "W") == (["web", "db-1", "mail", "files"], [])
    assert read({}, "words", "W") == ([], [])


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("15m", 900), ("26h", 93600), ("2d", 172800)])
def test_duration_is_read_in_seconds(text, seconds):
    assert read({"D": text}, "duration", "D", 0) == (seconds, [])


def test_duration_that_is_malformed_is_a_problem_with_an_example():
    assert read({"D": "soon"}, "duration", "D", 60) == (
        60,
        ["D: 'soon' is not a duration; use a number with s, m, h, d or w (e.g. 26h)"],
    )


def test_check_raises_one_error_with_every_problem_in_order():
    settings = Settings({"A": "maybe", "B": "x"})
    settings.boolean("A", True)
    settings.integer("B", 0)
    settings.problem("C", "is wrong")

    with pytest.raises(ConfigError) as error:
        settings.check()

    expected = [f"A: 'maybe' is not a boolean; use one of {BOOLEANS}", "B: 'x' is not a whole number", "C: is wrong"]
    assert error.value.problems == expected
    assert str(error.value) == "\n".join(expected)


def test_check_without_problems_returns_quietly():
    Settings({"A": "yes"}).check()


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("1024", 1024),
        ("500M", 500_000_000),
        ("50G", 50_000_000_000),
        ("50g", 50_000_000_000),
        ("50GB", 50_000_000_000),
        ("50 G", 50_000_000_000),
        ("1.5T", 1_500_000_000_000),
        ("2P", 2 * 1000**5),
        ("10K", 10_000),
        ("10B", 10),
        (" 3G ", 3_000_000_000),
    ],
)
def test_parse_size_uses_decimal_units(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "G", "-5G", "50GiB", "5 gigabytes", "1,5G", "50X"])
def test_parse_size_of_a_malformed_size_is_none(text):
    assert parse_size(text) is None


def test_parse_size_of_a_decimal_fraction_is_exact():
    assert (parse_size("4.1G"), parse_size("2.01K")) == (4_100_000_000, 2010)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0), ("90", 90), ("90s", 90), ("15m", 900), ("26h", 93600), ("2d", 172800), ("1w", 604800), (" 5 m ", 300)],
)
def test_parse_duration_returns_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "1.5h", "-1h", "10 minutes", "1h30m", "5y"])
def test_parse_duration_of_a_malformed_duration_is_none(text):
    assert parse_duration(text) is None


def test_a_config_error_explains_itself_with_one_indented_line_per_problem():
    error = ConfigError(["A: is wrong", "B: is missing"])
    assert error.explain("borg-server", "; nothing was changed") == (
        "borg-server: the configuration has 2 problem(s); nothing was changed:\n  A: is wrong\n  B: is missing"
    )


# A file's entries stand for variables: the same readers and rules apply, problems name the entry as written.
WHERE = "FILE (f.yaml) clients.web."


def entry(value: str = "", file: str = "") -> dict[str, Written]:
    """Given a value and/or a file name, return a file's entry key (key_file) standing for WEB_KEY."""
    return {"WEB_KEY": Written("key", "key_file", value=value, file=file, where=WHERE)}


def read_from_file(entries: dict[str, Written], environ: dict[str, str], reader: str, *arguments):
    """Given a file's entries over an environment and a reader with its arguments, return (value, problems)."""
    settings = Settings(environ)
    settings.add_file(entries)
    return getattr(settings, reader)(*arguments), settings.problems


@pytest.mark.parametrize("form", ["variable", "variable _FILE", "entry", "entry _file"])
def test_a_setting_reads_the_same_from_a_variable_its_file_an_entry_or_its_file(tmp_path, form):
    (tmp_path / "secret").write_text("50G\n")
    environ, entries = {
        "variable": ({"WEB_KEY": "50G"}, {}),
        "variable _FILE": ({"WEB_KEY_FILE": str(tmp_path / "secret")}, {}),
        "entry": ({}, entry(value="50G")),
        "entry _file": ({}, entry(file=str(tmp_path / "secret"))),
    }[form]

    assert read_from_file(entries, environ, "string", "WEB_KEY") == ("50G", [])


def test_an_entry_with_both_its_value_and_file_is_a_problem_naming_it_as_written(tmp_path):
    assert read_from_file(entry("v", str(tmp_path)), {}, "string", "WEB_KEY", "default") == (
        "default",
        [f"{WHERE}key: both key and key_file are set; set only one"],
    )


def test_an_entry_whose_file_cannot_be_read_is_a_problem_naming_its_file_setting(tmp_path):
    assert read_from_file(entry(file=str(tmp_path / "absent")), {}, "string", "WEB_KEY") == (
        None,
        [f"{WHERE}key_file: cannot read {tmp_path / 'absent'}: No such file or directory"],
    )


def test_a_bad_value_in_an_entry_is_a_problem_naming_the_entry():
    assert read_from_file(entry("maybe"), {}, "boolean", "WEB_KEY", True) == (
        True,
        [f"{WHERE}key: 'maybe' is not a boolean; use one of {BOOLEANS}"],
    )


@pytest.mark.parametrize(
    ("environ", "named"), [({"WEB_KEY": "a"}, "WEB_KEY"), ({"WEB_KEY_FILE": "/f"}, "WEB_KEY_FILE")]
)
def test_a_setting_in_the_environment_and_a_file_is_a_problem_and_the_file_wins(environ, named):
    assert read_from_file(entry("b"), environ, "string", "WEB_KEY") == (
        "b",
        [f"{named}: is also set as {WHERE}key; set it in one place"],
    )


def test_label_and_is_set_follow_where_a_setting_is_written():
    settings = Settings({"A": "1", "WEB_KEY": ""})
    settings.add_file(entry("x"))

    assert (settings.label("A"), settings.label("WEB_KEY"), settings.label("B")) == ("A", f"{WHERE}key", "B")
    assert (settings.is_set("A"), settings.is_set("WEB_KEY"), settings.is_set("B")) == (True, True, False)


def test_duration_below_its_minimum_is_a_problem():  # bounds are shown the way durations are written
    assert read({"D": "5s"}, "duration", "D", 60, 10) == (60, ["D: 5s is too small; the minimum is 10s"])
    assert read({"D": "10s"}, "duration", "D", 60, 10) == (10, [])


def test_log_level_is_one_of_pythons_levels_in_any_case_or_of_the_levels_given():
    assert read({}, "log_level", "LOG_LEVEL") == ("INFO", [])
    assert read({"LOG_LEVEL": " debug "}, "log_level", "LOG_LEVEL") == ("DEBUG", [])
    assert read({"L": "verbose"}, "log_level", "L", "INFO", ("INFO", "VERBOSE")) == ("VERBOSE", [])
    assert read({"L": "loud"}, "log_level", "L", "INFO", ("INFO", "VERBOSE")) == (
        "INFO",
        ["L: 'loud' is not one of INFO, VERBOSE"],
    )


def test_log_level_accepts_what_python_logging_accepts():
    assert set(LOG_LEVELS) >= {"DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL"}


def test_urls_are_words_that_must_be_http_urls_shown_without_their_secrets():
    value, problems = read({"U": "https://a.example/x, ftp://u:pw@b.example/hook?token=1"}, "urls", "U")

    assert value == ("https://a.example/x", "ftp://u:pw@b.example/hook?token=1")
    assert problems == ["U: 'ftp://***@b.example/…' is not an http:// or https:// URL with a host"]


def test_url_is_one_url_and_a_bad_one_hides_token_like_path_segments():
    token_url = "htps://hc-ping.com/5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278"

    assert read({}, "url", "U") == (None, [])
    assert read({"U": "https://hc.example/a b"}, "url", "U") == ("https://hc.example/a b", [])
    assert read({"U": token_url}, "url", "U") == (
        token_url,
        ["U: 'htps://hc-ping.com/…' is not an http:// or https:// URL with a host"],
    )


@pytest.mark.parametrize("name", ["web", "db-1", "a", "0_backup", "w" * 32])
def test_client_name_accepts_lower_case_letters_digits_dash_and_underscore(name):
    assert CLIENT_NAME.fullmatch(name)


@pytest.mark.parametrize("name", ["Web", "-web", "_web", "w" * 33, "web.1", "web server", ""])
def test_client_name_refuses_anything_else(name):
    assert not CLIENT_NAME.fullmatch(name)
