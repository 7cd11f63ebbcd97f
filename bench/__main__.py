"""make bench: the appliance against plain borg, measured side by side in one run.

Writes bench/results.md and bench/results.json. Timings are printed, never asserted.
`--only monitor` measures only the server's monitor and prints its figures (results stay as they are);
`--only recovery` measures the run after a crash in the middle of a backup (bench/recovery.py) and prints it;
`--only modes` measures (a), (b), (c) and (r) on the data sets and prints their tables (not most of an hour);
`--only overhead` measures what one `borg-client` command costs beside its borg, part by part, on unchanged
re-runs of the mixed set (bench/overhead.py); with `--profile`, Python's profile of one `borg-client run`;
`--only flags` measures what each of the appliance's borg create flags costs on the first many-small-files set
(bench/flags.py) and writes bench/flags.md; with `--profile`, borg's own profile of no flags and all of them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench import dataset, flags, modes, overhead, recovery, scale
from tests.harness.containers import Sandbox

HERE = Path(__file__).parent
COMPRESSIONS = ("lz4", "zstd,1", "zstd,3", "zstd,6", "auto,zstd,3", "auto,lzma,6")
STEPS = ("first", "rerun", "restore")
MODES = ("a", "b", "c", "r")  # the mixed set's modes; the many-small-files sets leave (a) out
MANY_MODES = ("b", "c", "r")


def summary(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def measure_modes(
    data: dataset.DataSet, repetitions: int, tmp: Path, measured: tuple[str, ...] = ("a", "b", "c", "r")
) -> dict:
    """Run the measured modes repetitions times each, interleaved, each in a fresh sandbox.

    Each repetition's (c)/(b) and (r)/(b) ratios are taken from its own (b), (c) and (r), run one after the other.
    """
    ways = {"a": modes.local, "b": modes.plain_ssh, "c": modes.appliance, "r": modes.restic}
    seconds: dict[str, dict[str, list[float]]] = {mode: {step: [] for step in STEPS} for mode in measured}
    for repetition in range(repetitions):
        for mode in measured:
            sandbox = modes.bench_sandbox()
            try:
                args = (sandbox, data.path, tmp) if mode == "c" else (sandbox, data.path)
                result = ways[mode](*args)
            finally:
                sandbox.cleanup()
            print(f"  repetition {repetition + 1}, ({mode}): " + ", ".join(f"{s} {result[s]:.2f} s" for s in STEPS))
            for step in STEPS:
                seconds[mode][step].append(result[step])
    return modes_summary(seconds, data)


def modes_summary(seconds: dict[str, dict[str, list[float]]], data: dataset.DataSet) -> dict:
    """Given each mode's seconds per step and repetition, return seconds, MB/s and files/s (median, min, max)
    per mode and step, and the paired ratios per step (ratio_names)."""
    table: dict = {}
    for mode, by_step in seconds.items():
        table[mode] = {}
        for step, values in by_step.items():
            rates = [data.bytes / value / 1e6 for value in values]
            table[mode][step] = {"seconds": summary(values), "mb_s": summary(rates),
                                 "files_s": round(data.files / statistics.median(values), 1)}  # fmt: skip
    table["ratios"] = {}
    for step in STEPS:
        table["ratios"][step] = {}
        for name in ratio_names(tuple(seconds)):
            mode, base = name.split("/")
            table["ratios"][step][name] = {
                **summary(paired_ratios(seconds[mode][step], seconds[base][step])),
                "of_medians": round(table[mode][step]["mb_s"]["median"] / table[base][step]["mb_s"]["median"], 3),
            }
    return table


def ratio_names(measured: tuple[str, ...]) -> list[str]:
    """Given the measured modes, return the ratios shown: (c)/(b), (r)/(b), (c)/(a), those whose modes were measured."""
    return [name for name in ("c/b", "r/b", "c/a") if set(name.split("/")) <= set(measured)]


def paired_ratios(mode: list[float], base: list[float]) -> list[float]:
    """Given one step's seconds of a mode and of its base, repetition by repetition, return each repetition's
    speed of the mode against the base (base's seconds / mode's seconds: above 1 is faster than the base)."""
    return [b / m for m, b in zip(mode, base, strict=True)]


def measure_compression(data: dataset.DataSet) -> dict:
    table = {}
    for compression in COMPRESSIONS:
        sandbox = modes.bench_sandbox()
        try:
            result = modes.local(sandbox, data.path, compression)
        finally:
            sandbox.cleanup()
        table[compression] = {"seconds": result["first"], "mb_s": round(data.bytes / result["first"] / 1e6, 1),
                              "repository_mb": round(result["size"] / 1e6, 1)}  # fmt: skip
        print(f"  {compression}: {result['first']:.2f} s, {result['size'] / 1e6:.1f} MB")
    return table


def measure_monitor(clients: int, tmp: Path) -> dict:
    sandbox = Sandbox()
    try:
        result = scale.monitor_cost(sandbox, tmp, clients)
    finally:
        sandbox.cleanup()
    print(f"  {result}")
    return result


def measure_flags(arguments: argparse.Namespace) -> None:
    """Measure the create flags on the first many-small-files set (50,000 files by default); write bench/flags.md."""
    count, size = (arguments.small_files or [50_000])[0], arguments.small_file_bytes
    many = dataset.make_many(HERE / "data" / f"many-{count}x{size}", count, size)
    date = datetime.now(UTC).isoformat(timespec="seconds")
    print(f"flags: first backups of {count} files of {size} bytes, to a plain sshd and to the appliance's server:")
    try:
        result = flags.measure(dataset.in_memory(many).path, arguments.repetitions, arguments.profile)
    finally:
        dataset.remove_memory_copies()
    print("\n".join(flags.table(result["seconds"])))
    (HERE / "flags.md").write_text(flags.report(result, count, size, arguments.repetitions, date))
    print(f"written: {HERE / 'flags.md'}")


def measure_overhead(data: dataset.DataSet, arguments: argparse.Namespace) -> None:
    """Measure a sidecar command's fixed cost on unchanged re-runs of the mixed set; print it."""
    repetitions = max(arguments.repetitions, 5)
    print(f"overhead: {repetitions} unchanged re-runs of {data.bytes / 1e6:.0f} MB in {data.files} files each way:")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            result = overhead.measure(dataset.in_memory(data).path, repetitions, arguments.profile, Path(tmp))
    finally:
        dataset.remove_memory_copies()
    print("\n".join(overhead.table(result["seconds"])))
    if "profile" in result:
        print(f"profile of one borg-client run (cumulative):\n{result['profile']}")


def counts(text: str) -> list[int]:
    """Given "50000,200000" (or "0"), return the many-small-files sets' file counts ([] for none)."""
    numbers = [int(word) for word in text.split(",")]
    if any(number < 0 for number in numbers):
        raise argparse.ArgumentTypeError(f"{text}: file counts are 0 or more")
    return [number for number in numbers if number]


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--size-mb", type=int, default=1024, help="data set size in MB (default 1024)")
    parser.add_argument(
        "--small-files",
        type=counts,
        default="50000,200000",
        help="files in each many-small-files set, comma-separated (default 50000,200000; 0 leaves them out)",
    )
    parser.add_argument("--small-file-bytes", type=int, default=1000, help="size of each of them (default 1000)")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--scale", default="10,50", help="concurrent client counts")
    parser.add_argument("--monitor-clients", type=int, default=50, help="clients the monitor watches (default 50)")
    parser.add_argument(
        "--only",
        choices=["modes", "flags", "overhead", "monitor", "recovery"],
        help="measure only this part; print it, write nothing (flags: writes bench/flags.md)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="flags: also profile borg (--debug-profile), no flags and all flags; overhead: profile borg-client run",
    )
    parser.add_argument("--recovery-mb", type=int, default=500, help="recovery: MB of random data (default 500)")
    arguments = parser.parse_args()
    if arguments.only == "recovery":
        print(f"recovery ({arguments.recovery_mb} MB of random data and 3000 small files, a crash a third in):")
        with tempfile.TemporaryDirectory() as tmp:
            runs = recovery.measure(arguments.recovery_mb, 3000, arguments.repetitions, Path(tmp))
        print("\n".join(recovery.report(runs, summary)))
        return
    if arguments.only == "monitor":
        print("monitor:")
        with tempfile.TemporaryDirectory() as tmp:
            print("\n".join(monitor_report(measure_monitor(arguments.monitor_clients, Path(tmp)))))
        return

    modes.build_restic_image()
    if arguments.only == "flags":
        measure_flags(arguments)
        return
    data = dataset.make(HERE / "data" / f"{arguments.size_mb}mb", arguments.size_mb * 1_000_000)
    if arguments.only == "overhead":
        measure_overhead(data, arguments)
        return
    small = dataset.make(HERE / "data" / "scale-20mb", 20_000_000, seed=7)
    print(f"data set: {data.bytes / 1e6:.0f} MB in {data.files} files")
    results: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "data": {"bytes": data.bytes,
                     "files": data.files}, "repetitions": arguments.repetitions}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        print("(a) local, (b) plain ssh, (c) appliance, (r) restic; data, repositories and restores in memory:")
        try:
            results["modes"] = measure_modes(dataset.in_memory(data), arguments.repetitions, Path(tmp))
            results["many_sets"] = []
            for count in arguments.small_files:
                size = arguments.small_file_bytes
                many = dataset.make_many(HERE / "data" / f"many-{count}x{size}", count, size)
                print(
                    f"many small files: {many.files} files of {size} bytes; (b) plain ssh, (c) appliance, (r) restic:"
                )
                measured = measure_modes(dataset.in_memory(many), arguments.repetitions, Path(tmp), MANY_MODES)
                results["many_sets"].append({"bytes": many.bytes, "files": many.files, "modes": measured})
            if arguments.only == "modes":
                print("\n".join(modes_table(results["modes"], MODES)))
                for many in results["many_sets"]:
                    print("\n".join([f"many small files, {many['files']}:", *modes_table(many["modes"], MANY_MODES)]))
                return
            print("compression:")
            results["compression"] = measure_compression(dataset.in_memory(data))
        finally:
            dataset.remove_memory_copies()
        print("scale:")
        results["scale"] = []
        for count in (int(number) for number in arguments.scale.split(",")):
            sandbox = Sandbox()
            try:
                results["scale"].append(scale.concurrent_clients(sandbox, count, small.path, small.bytes, Path(tmp)))
            finally:
                sandbox.cleanup()
            print(f"  {results['scale'][-1]}")
        others = {"thousand_clients": scale.many_clients_start,
                  "idle_sidecar": lambda box: scale.idle_sidecar(box, small.path, Path(tmp))}  # fmt: skip
        for name, measure in others.items():
            sandbox = Sandbox()
            try:
                results[name] = measure(sandbox)
            finally:
                sandbox.cleanup()
            print(f"  {name}: {results[name]}")
        print("monitor:")
        results["monitor"] = measure_monitor(arguments.monitor_clients, Path(tmp))
    results["image_sizes_mb"] = scale.image_sizes()
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (HERE / "results.md").write_text(report(results))
    print(f"written: {HERE / 'results.md'} and results.json")


def modes_table(table: dict, measured: tuple[str, ...]) -> list[str]:
    """Return one data set's steps as Markdown rows: MB/s per mode, (c) files/s, (r) seconds, paired ratios."""
    ratios = ratio_names(measured)
    seconds = ["(r) s"] if "r" in measured else []
    lines = ["| step | " + " | ".join(f"({m}) MB/s" for m in measured) + " | (c) files/s | "
             + "".join(f"{name} | " for name in seconds)
             + " | ".join(f"({r[0]})/({r[2]})" for r in ratios) + " |",
             "|---" * (len(measured) + 2 + len(seconds) + len(ratios)) + "|"]  # fmt: skip
    for step in STEPS:
        cells = [spread(table[m][step]["mb_s"]) for m in measured]
        cells.append(str(table["c"][step]["files_s"]))
        cells += [spread(table["r"][step]["seconds"])] if seconds else []
        cells += [spread(table["ratios"][step][r]) for r in ratios]
        lines.append(f"| {step} | {' | '.join(cells)} |")
    return lines


def spread(values: dict) -> str:
    """Given a summary (median, min, max), return "median (min–max)"."""
    return f"{values['median']} ({values['min']}–{values['max']})"


def report(results: dict) -> str:
    """Return results as Markdown."""
    data, table = results["data"], results["modes"]
    lines = [
        "# Benchmark results",
        "",
        f"Made by `make bench` on {results['date']}: {data['bytes'] / 1e6:.0f} MB in {data['files']} files "
        f"(45% random, 45% text, 10% small files), {results['repetitions']} repetitions, median (min–max);",
        "a ratio is the median (min–max) of each repetition's own pair, run one after the other.",
        "(a) plain borg, local repository; (b) plain borg over ssh to a plain sshd; (c) the appliance; "
        "(r) restic over sftp to the same plain sshd as (b), its defaults.",
        "Data, repositories, restores and borg's caches are in memory (tmpfs): the software is measured, not the disk.",
        "",
        *modes_table(table, MODES),
    ]
    for many in results.get("many_sets", []):
        lines += ["", f"## Many small files: {many['files']} files of {many['bytes'] // many['files']} bytes", "",
                  *modes_table(many["modes"], MANY_MODES)]  # fmt: skip
    lines += ["", "## Compression (plain borg, local, first backup)", "",
              "| compression | seconds | MB/s | repository MB |", "|---|---|---|---|"]  # fmt: skip
    for name, row in results["compression"].items():
        lines.append(f"| `{name}` | {row['seconds']} | {row['mb_s']} | {row['repository_mb']} |")
    lines += ["", "## Scale and server cost", "",
              "| clients at once | succeeded | seconds | aggregate MB/s | server memory peak MiB | MiB per session | "
              "server CPU s per GB | per session | clients per core at 1 GB/day |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in results["scale"]:
        lines.append(f"| {row['clients']} | {row['succeeded']} | {row['seconds']} | {row['aggregate_mb_s']} | "
                     f"{row['server_memory_peak_mib']} | {row.get('server_memory_per_session_mib')} | "
                     f"{row.get('server_cpu_s_per_gb')} | {row.get('server_cpu_s_per_session')} | "
                     f"{row.get('clients_per_core_at_1gb_a_day')} |")  # fmt: skip
    thousand, idle = results["thousand_clients"], results["idle_sidecar"]
    lines += [
        "",
        f"Server with {thousand['clients']} clients: first start {thousand['first_start_s']} s (generates "
        f"{thousand['clients']} keypairs), restart {thousand['restart_s']} s, reload {thousand['reload_s']} s.",
        f"Idle sidecar: {idle['rss_mib']} MiB RSS, {idle['cgroup_memory_mib']} MiB cgroup memory, "
        f"{idle['cpu_percent_of_a_core']}% of a core.",
        "Image sizes (MB): " + ", ".join(f"{name} {size}" for name, size in results["image_sizes_mb"].items()) + ".",
    ]
    if "monitor" in results:
        lines += ["", "## Server monitor", "", *monitor_report(results["monitor"])]
    return "\n".join([*lines, ""])


def monitor_report(monitor: dict) -> list[str]:
    """Return the monitor's figures as Markdown lines."""
    later, check = monitor["later_scan_s"], monitor["repository_check_s"]
    return [
        f"{monitor['clients']} append-only clients of {monitor['repository_mb']} MB each (incompressible), "
        "scanned every 10 s, page cache warm.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| first scan (hashes every committed segment of {monitor['clients_hashed_in_first_scan']} clients) | "
        f"{monitor['first_scan_s']} s |",
        f"| CPU from start through the first scan | {monitor['start_and_first_scan_cpu_s']} s |",
        f"| later scans (stat only), {monitor['later_scans']} of them | {later['median']} s "
        f"({later['min']}–{later['max']}) |",
        f"| CPU while scanning every 10 s for {monitor['idle_seconds']} s | "
        f"{monitor['idle_cpu_percent_of_a_core']}% of a core |",
        f"| resident memory after the first scan, after idling, peak | {monitor['rss_mib_after_first_scan']}, "
        f"{monitor['rss_mib_after_idle']}, {monitor['rss_peak_mib']} MiB |",
        f"| `borg check --repository-only` of one repository | {check['median']} s ({check['min']}–{check['max']}) |",
    ]


if __name__ == "__main__":
    main()
