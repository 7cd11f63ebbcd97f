"""The benchmark's "all" flags are what the appliance runs borg create with (bench/flags.py keeps them by hand)."""

from bench import flags
from borg_client import borg


def test_the_bench_measures_the_flags_the_appliance_runs_borg_create_with(config):
    argv = borg.create_argv(config, "a", ["/backup/data"])
    create = argv.index("create")
    options = argv[create + 1 : -2]
    compression = options.index("--compression")
    del options[compression : compression + 2]  # the bench gives every variant the same compression
    assert argv[1:create] == flags.ALL_COMMON.split()
    assert options == flags.ALL_CREATE.split()
