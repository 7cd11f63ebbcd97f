"""The Docker harness that integration scenarios and bench/ share: containers.py (the docker CLI, a Sandbox per
scenario, polling), stack.py (servers, sidecars, attackers, receivers), tables.py with settings_runner.py
(a table of cases in one container) and worlds.py (the shared worlds that scenarios only read)."""
