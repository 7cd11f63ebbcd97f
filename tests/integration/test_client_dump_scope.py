"""Dumps stay inside the sidecar's own compose project: another project's labelled databases on the same host are
left alone (and named in the log) unless BACKUP_DUMP_SCOPE=host says otherwise."""

from __future__ import annotations

from tests.harness.containers import BASE_IMAGE
from tests.harness.stack import client_command, fill_volume, make_client, start_server

SOCKET = "/var/run/docker.sock"


def test_a_sidecar_dumps_its_own_project_s_databases_only_unless_the_scope_is_the_host(sandbox, tmp_path):
    server = start_server(sandbox, ["db"])
    client = make_client(sandbox, server, "db", tmp_path)
    fill_volume(sandbox, client.data, "echo files > /data/file")
    mine = f"borg-appliance-test.scope={sandbox.prefix}"  # this scenario's containers only, whatever else runs
    projects = {"alpha": f"{sandbox.prefix}-alpha", "beta": f"{sandbox.prefix}-beta", "none": None}
    for name, project in projects.items():
        labels = ["--label", mine, "--label", "borg-appliance.dump=command",
                  "--label", f"borg-appliance.dump.command=echo {name}"]  # fmt: skip
        if project:
            labels += ["--label", f"com.docker.compose.project={project}"]
        sandbox.run(name, BASE_IMAGE, labels, ["sleep", "infinity"])
    sidecar = ["-v", f"{SOCKET}:{SOCKET}", "--label", f"com.docker.compose.project={projects['alpha']}"]
    env = {"BACKUP_DUMP_LABEL": mine}

    own = client_command(sandbox, client, ["run"], env=env, extra=sidecar)
    host = client_command(sandbox, client, ["run"], env={**env, "BACKUP_DUMP_SCOPE": "host"}, extra=sidecar)

    assert own.returncode == 0 and host.returncode == 0, own.stderr + host.stderr
    alpha, beta, none = (sandbox.name(name) for name in projects)
    assert f"container {alpha}: dumping command" in own.stderr
    assert f"container {beta}:" not in own.stderr and f"container {none}:" not in own.stderr
    assert (
        f"not dumping container(s) {beta}, {none}: another compose project or stack than this sidecar's "
        f"(com.docker.compose.project={projects['alpha']}); BACKUP_DUMP_SCOPE=host dumps them too"
    ) in own.stderr
    for container in (alpha, beta, none):
        assert f"container {container}: dumping command" in host.stderr, host.stderr
