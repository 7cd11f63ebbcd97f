"""`make bench BENCH_ARGS="--only flags"`: what each of the appliance's `borg create` flags costs.

A first backup of the many-small-files set into a fresh repository per measurement, with no flags, with
each of the appliance's create flags alone, and with all of them (what borg_client.borg.create_argv
builds), over ssh to a plain sshd (as (b)) and to the appliance's server (as (c), but plain borg, no
sidecar). Output is thrown away (`>/dev/null 2>&1`) except in the variant read by a pipe, which shows
what a reader of borg's output costs beside what borg pays for writing it. Within a repetition every
variant runs once per target, in an order rotated by one each repetition; each variant's ratio is
against "no flags" of the same target and repetition. `--profile` adds borg's own `--debug-profile`
of "no flags" and "all" and prints the functions that took the most time of their own (pstats, tottime).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from bench.modes import (
    COMPRESSION,
    PLAIN_ENV,
    RSH,
    TIMER,
    bench_sandbox,
    mounts,
    pairing_rsh,
    run_script,
    start_plain_sshd,
    steps,
)
from tests.harness.containers import Sandbox
from tests.harness.stack import start_server

TARGETS = ("plain", "appliance")  # the plain sshd of (b); the appliance's server (forced command, broker)
PROFILED = ("no flags", "all")
PROFILE_LINES = 25


@dataclass(frozen=True)
class Variant:
    """One way of running `borg create`: borg's common options (before `create`), create's own, piped or not."""

    name: str
    common: str = ""
    create: str = ""
    piped: bool = False

    def command(self, repository: str, profile: str = "") -> str:
        """Return the shell command that makes the first backup into repository, its output thrown away or piped."""
        profiling = f"--debug-profile {profile} " if profile else ""
        borg = f"borg {profiling}{self.common} create --compression {COMPRESSION} {self.create} {repository}::a"
        borg = " ".join(borg.split()) + " /backup/data"
        output = "2>&1 | cat >/dev/null" if self.piped else ">/dev/null 2>&1"
        return f"bash -o pipefail -c '{borg} {output}'"


# What borg_client.borg.create_argv and command() give every `borg create` (besides --compression; no
# --timestamp, --read-special: those only with settings the bench does not use). Keep them in step.
ALL_COMMON = "--log-json --lock-wait 600"
ALL_CREATE = "--json --list --filter AME --show-rc --checkpoint-interval 600 --exclude-caches"
VARIANTS = (
    Variant("no flags"),
    Variant("--list --filter AME", create="--list --filter AME"),
    Variant("--log-json", common="--log-json"),
    Variant("--list --filter AME --log-json", common="--log-json", create="--list --filter AME"),
    Variant("--json", create="--json"),
    Variant("--show-rc", create="--show-rc"),
    Variant("--exclude-caches", create="--exclude-caches"),
    Variant("--checkpoint-interval 600", create="--checkpoint-interval 600"),
    Variant("--lock-wait 600", common="--lock-wait 600"),
    Variant("all", common=ALL_COMMON, create=ALL_CREATE),
    Variant("all, read by a pipe", common=ALL_COMMON, create=ALL_CREATE, piped=True),
)


def rotated(repetition: int) -> list[int]:
    """Given a repetition (from 0), return the variants' indexes in the order it runs them: rotated by one each."""
    shift = repetition % len(VARIANTS)
    indexes = list(range(len(VARIANTS)))
    return indexes[shift:] + indexes[:shift]


def script(setup: list[str], repositories: list[tuple[str, str]], order: list[int]) -> str:
    """Given the shell lines that set up borg's environment (and BORG_RSH for the target), a (repository URL,
    BORG_RSH) per variant and the order, return the script that times each variant's first backup ("vN_ms")."""
    lines = [TIMER, PLAIN_ENV, *setup]
    for index in order:
        repository, rsh = repositories[index]
        lines += [f'export BORG_RSH="{rsh}"', f"borg init -e keyfile-blake2 {repository} >&2 || exit 1",
                  f"step v{index} {VARIANTS[index].command(repository)}"]  # fmt: skip
    return "\n".join(lines) + "\n"


@dataclass
class World:
    """The two targets, started once for a whole measurement: where each variant of each repetition goes."""

    sandbox: Sandbox
    data: Path
    repetitions: int

    def __post_init__(self) -> None:
        self.sshd = start_plain_sshd(self.sandbox)
        # One client of the appliance's server per measurement: each first backup goes into a fresh repository.
        self.clients = [f"f{number}" for number in range(len(VARIANTS) * self.repetitions + len(PROFILED))]
        self.server = start_server(self.sandbox, self.clients, network=self.sshd.network)

    def options(self, role: str) -> list[str]:
        """Return the options of a measuring container: both targets' keys and pairings, the data, memory volumes."""
        pairings = [word for client in self.clients for word in ("-v", f"{self.server.exports[client]}:/p/{client}:ro")]
        return [*self.sshd.options(), *pairings, *mounts(self.sandbox, role, self.data)]

    def plain(self, number: int) -> tuple[str, str]:
        """Return measurement number's repository on the plain sshd and its BORG_RSH."""
        return f"ssh://borg@{self.sshd.host}:22/repos/r{number}", RSH

    def appliance(self, number: int) -> tuple[str, str]:
        """Return measurement number's repository (a client of its own) on the appliance's server and its BORG_RSH."""
        pairing = f"/p/{self.clients[number]}"
        return f"$(cat {pairing}/repo_url)", pairing_rsh(pairing)

    def target(self, name: str, number: int) -> tuple[str, str]:
        return self.plain(number) if name == "plain" else self.appliance(number)


def measure(data: Path, repetitions: int, profile: bool) -> dict:
    """Return {"seconds": {target: {variant: [seconds per repetition]}}}; with profile also
    {"profiles": {target: {variant: top functions}}}."""
    sandbox = bench_sandbox()
    try:
        world = World(sandbox, data, repetitions)
        seconds = {target: {variant.name: [] for variant in VARIANTS} for target in TARGETS}
        for repetition in range(repetitions):
            for target in TARGETS:
                first = repetition * len(VARIANTS)
                repositories = [world.target(target, first + index) for index in range(len(VARIANTS))]
                role = f"flags-{target}-{repetition}"
                timed = steps(run_script(sandbox, role, world.options(role), script([world.sshd.pin()], repositories,
                                                                                     rotated(repetition))))  # fmt: skip
                for index, variant in enumerate(VARIANTS):
                    seconds[target][variant.name].append(timed[f"v{index}"])
                done = ", ".join(f"{name} {values[-1]:.2f} s" for name, values in seconds[target].items())
                print(f"  repetition {repetition + 1}, {target}: {done}")
        result: dict = {"seconds": seconds}
        if profile:
            result["profiles"] = {target: profiles(world, target, len(VARIANTS) * repetitions) for target in TARGETS}
        return result
    finally:
        sandbox.cleanup()


PRINT_STATS = (
    "import pstats, sys; pstats.Stats(sys.argv[1], stream=sys.stdout).sort_stats('tottime').print_stats({lines})"
)


def profiles(world: World, target: str, first: int) -> dict[str, str]:
    """Profile the PROFILED variants' first backups with borg's --debug-profile; return {variant: top functions}."""
    texts = {}
    for offset, name in enumerate(PROFILED):
        variant = next(variant for variant in VARIANTS if variant.name == name)
        repository, rsh = world.target(target, first + offset)
        role = f"profile-{target}-{offset}"
        lines = [TIMER, PLAIN_ENV, world.sshd.pin(), f'export BORG_RSH="{rsh}"',
                 f"borg init -e keyfile-blake2 {repository} >&2 || exit 1",
                 f"{variant.command(repository, '/state/borg.pyprof')} || exit 1",
                 f'python3 -c "{PRINT_STATS.format(lines=PROFILE_LINES)}" /state/borg.pyprof']  # fmt: skip
        texts[name] = run_script(world.sandbox, role, world.options(role), "\n".join(lines) + "\n")
        print(f"  profile, {target}, {name}:\n{texts[name]}")
    return texts


def table(seconds: dict[str, dict[str, list[float]]]) -> list[str]:
    """Given {target: {variant: seconds per repetition}}, return Markdown rows: per target the seconds and the
    speed against "no flags" of the same repetition (its seconds / the variant's), median (min–max)."""
    lines = ["| variant | " + " | ".join(f"{target} s | {target} speed vs no flags" for target in seconds) + " |",
             "|---" * (1 + 2 * len(seconds)) + "|"]  # fmt: skip
    for variant in VARIANTS:
        cells = []
        for by_variant in seconds.values():
            values = by_variant[variant.name]
            ratios = [none / value for none, value in zip(by_variant["no flags"], values, strict=True)]
            cells += [spread(values), spread(ratios)]
        lines.append(f"| `{variant.name}` | " + " | ".join(cells) + " |")
    return lines


def spread(values: list[float]) -> str:
    """Given values, return "median (min–max)", rounded to 3 digits after the point (2 for seconds above 10)."""
    digits = 2 if min(values) >= 10 else 3
    return f"{round(statistics.median(values), digits)} ({round(min(values), digits)}–{round(max(values), digits)})"


def report(result: dict, files: int, file_bytes: int, repetitions: int, date: str) -> str:
    """Return bench/flags.md: how it was measured, the table and, when profiled, the top functions."""
    lines = ["# What the appliance's borg create flags cost", "",
             f"Made by `make bench BENCH_ARGS=\"--only flags\"` on {date}: first backups of {files} files of "
             f"{file_bytes} bytes, each into a fresh repository, repetitions: {repetitions}, median (min–max);",
             "speed is each repetition's \"no flags\" seconds over the variant's (below 1: the flags cost time).",
             "plain: plain borg over ssh to a plain sshd; appliance: plain borg to the appliance's server.",
             "Data, repositories and borg's caches are in memory (tmpfs).", "", *table(result["seconds"])]  # fmt: skip
    for target, texts in result.get("profiles", {}).items():
        for name, text in texts.items():
            lines += ["", f"## Profile: {target}, {name} (borg --debug-profile, by tottime)", "", "```",
                      text.strip(), "```"]  # fmt: skip
    return "\n".join([*lines, ""])
