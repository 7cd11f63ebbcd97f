"""Tests for the strict settings readers: values, X_FILE secrets, and the one line each mistake becomes."""

import pytest

from borg_common.settings import ConfigError, Settings, parse_duration, parse_size

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
