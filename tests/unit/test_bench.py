"""The benchmark's pure parts: paired ratios, the tables, the flags' commands. Timings are never asserted."""

import argparse
from pathlib import Path

import pytest

from bench import dataset, flags, overhead
from bench.__main__ import counts, modes_summary, modes_table, paired_ratios, ratio_names

DATA = dataset.DataSet(Path("/data"), 2_000_000, 2000)


def test_a_paired_ratio_is_the_base_seconds_over_the_mode_seconds_of_the_same_repetition():
    assert paired_ratios([2.0, 4.0, 5.0], [1.0, 4.0, 10.0]) == [0.5, 1.0, 2.0]
    with pytest.raises(ValueError):
        paired_ratios([1.0, 2.0], [1.0])


def test_the_ratios_shown_are_those_whose_modes_were_measured():
    assert ratio_names(("a", "b", "c", "r")) == ["c/b", "r/b", "c/a"]
    assert ratio_names(("b", "c", "r")) == ["c/b", "r/b"]
    assert ratio_names(("a", "b", "c")) == ["c/b", "c/a"]


def test_the_many_small_files_table_shows_restic_in_seconds_and_each_ratio_with_its_spread():
    step = {"b": [10.0, 20.0], "c": [20.0, 20.0], "r": [5.0, 10.0]}
    seconds = {mode: {name: list(values) for name in ("first", "rerun", "restore")} for mode, values in step.items()}
    table = modes_summary(seconds, DATA)
    assert table["ratios"]["first"]["c/b"] == {"median": 0.75, "min": 0.5, "max": 1.0, "of_medians": 0.667}
    assert table["ratios"]["first"]["r/b"] == {"median": 2.0, "min": 2.0, "max": 2.0, "of_medians": 2.0}
    lines = modes_table(table, ("b", "c", "r"))
    assert lines[0] == "| step | (b) MB/s | (c) MB/s | (r) MB/s | (c) files/s | (r) s | (c)/(b) | (r)/(b) |"
    assert lines[1] == "|---|---|---|---|---|---|---|---|"
    assert lines[2] == ("| first | 0.15 (0.1–0.2) | 0.1 (0.1–0.1) | 0.3 (0.2–0.4) | 100.0 | 7.5 (5.0–10.0) | "
                        "0.75 (0.5–1.0) | 2.0 (2.0–2.0) |")  # fmt: skip


def test_small_files_takes_a_list_of_counts_and_zero_leaves_the_sets_out():
    assert counts("50000,200000") == [50_000, 200_000]
    assert counts("0") == []
    with pytest.raises(argparse.ArgumentTypeError, match="-5: file counts are 0 or more"):
        counts("-5")


def test_each_flags_variant_is_one_first_backup_with_its_output_thrown_away_or_read_by_a_pipe():
    by_name = {variant.name: variant for variant in flags.VARIANTS}
    assert by_name["no flags"].command("ssh://h/r") == (
        "bash -o pipefail -c 'borg create --compression zstd,3 ssh://h/r::a /backup/data >/dev/null 2>&1'"
    )
    assert by_name["--lock-wait 600"].command("R", "/state/p.pyprof") == (
        "bash -o pipefail -c 'borg --debug-profile /state/p.pyprof --lock-wait 600 create --compression zstd,3 "
        "R::a /backup/data >/dev/null 2>&1'"
    )
    assert by_name["all, read by a pipe"].command("R").endswith("/backup/data 2>&1 | cat >/dev/null'")


def test_every_repetition_runs_every_variant_once_in_an_order_rotated_by_one():
    count = len(flags.VARIANTS)
    assert flags.rotated(0) == list(range(count))
    assert flags.rotated(1) == [*range(1, count), 0]
    assert sorted(flags.rotated(7)) == list(range(count))


def test_the_flags_table_gives_each_variant_its_speed_against_no_flags_of_the_same_repetition():
    seconds = {name: [10.0, 20.0] for name in (variant.name for variant in flags.VARIANTS)}
    seconds["all"] = [20.0, 20.0]
    lines = flags.table({"plain": seconds})
    assert lines[0] == "| variant | plain s | plain speed vs no flags |"
    assert "| `no flags` | 15.0 (10.0–20.0) | 1.0 (1.0–1.0) |" in lines
    assert "| `all` | 20.0 (20.0–20.0) | 0.75 (0.5–1.0) |" in lines


def test_the_overhead_table_shows_what_each_part_adds_to_the_one_before_it_per_repetition():
    seconds = {"python": [0.01, 0.02], "imports": [0.11, 0.12], "check-config": [0.13, 0.13],
               "plain": [1.0, 2.0], "flags": [1.0, 2.1], "server": [1.1, 2.1], "sidecar": [1.25, 2.5],
               "scheduled": [1.2, 2.2], "plain-session": [0.3, 0.4], "server-session": [0.35, 0.5]}  # fmt: skip
    rows = overhead.table(seconds)
    assert rows[3] == "| borg-client's imports | 0.115 (0.110–0.120) | 0.100 (0.100–0.100) (to python) | |"
    assert rows[6] == ("| the same with the appliance's create flags | 1.550 (1.000–2.100) | 0.050 (0.000–0.100) "
                       "(to plain) | 0.976 (0.952–1.000) |")  # fmt: skip
    assert rows[7] == ("| that to the appliance's server | 1.600 (1.100–2.100) | 0.050 (0.000–0.100) (to flags) | "
                       "0.931 (0.909–0.952) |")  # fmt: skip
    assert (
        rows[8] == "| `borg-client run` | 1.875 (1.250–2.500) | 0.275 (0.150–0.400) (to server) | 0.800 (0.800–0.800) |"
    )
    assert rows[9] == ("| the same run, scheduled (its report's duration) | 1.700 (1.200–2.200) | 0.100 (0.100–0.100) "
                       "(to server) | 0.871 (0.833–0.909) |")  # fmt: skip
    assert rows[11] == ("| the same to the appliance's server | 0.425 (0.350–0.500) | 0.075 (0.050–0.100) "
                        "(to the plain session) | |")  # fmt: skip


def test_the_overhead_script_times_every_way_in_every_repetition_and_profiles_only_when_asked():
    text = overhead.script("pin", "ssh://plain/r", "$(cat /p/raw/repo_url)", 2, profile=False)
    for way in overhead.WAYS:
        timed = (f"step {way}0 ", f"step {way}1 ") if way != "scheduled" else ('"scheduled0_ms $', '"scheduled1_ms $')
        assert all(line in text for line in timed)
    assert text.index("borg-client schedule") < text.index("kill -USR1")
    assert "cProfile" not in text
    assert "cProfile" in overhead.script("pin", "ssh://plain/r", "$(cat /p/raw/repo_url)", 1, profile=True)
