"""A full disk on the server: alerted before it fills, a backup that does not fit fails and says why,
and once the data shrinks the next run succeeds with no manual step; the history stays intact."""

from __future__ import annotations

import json

from tests.harness.containers import CLIENT_IMAGE, SERVER_IMAGE, health, logs, wait_until
from tests.harness.stack import Server, client_command, fill_volume, make_client, start_receiver

RECEIVER_URL = "http://receiver:8080/alerts"


def start_small_server(sandbox, network: str, env: dict[str, str]) -> Server:
    """Start a server for client web whose /srv/borg is a 120 MB tmpfs; wait until healthy."""
    state, export = sandbox.volume("server-state"), sandbox.volume("server-pairing-web")
    options = ["--network", network, "--hostname", sandbox.name("server"),
               "--mount", "type=tmpfs,destination=/srv/borg,tmpfs-size=120m",
               "-v", f"{state}:/var/lib/borg-server", "-v", f"{export}:/var/lib/borg-server/export/web"]  # fmt: skip
    for key, value in {"BORG_CLIENTS": "web", "BORG_SERVER_NAME": sandbox.name("server"), **env}.items():
        options += ["-e", f"{key}={value}"]
    sandbox.run("server", SERVER_IMAGE, options)
    server = Server(sandbox.name("server"), network, "", state, {"web": export})
    wait_until(lambda: health(server.container) in ("healthy", "exited"), 60, "the server to become healthy")
    assert health(server.container) == "healthy", logs(server.container)
    return server


def server_status(server: Server) -> dict:
    return json.loads(server.exec("borg-server", "status", "--json", "--server").stdout)


def data_digest(sandbox, volume: str) -> str:
    """Return the sha256 of /data/first.bin in the volume."""
    options = ["-v", f"{volume}:/data:ro", "--entrypoint", "sha256sum"]
    return sandbox.run("digest", CLIENT_IMAGE, options, ["/data/first.bin"], detach=False).stdout.split()[0]


def test_a_full_disk_is_alerted_fails_one_run_with_its_cause_and_the_next_run_recovers(sandbox, tmp_path):
    network = sandbox.network()
    receiver = start_receiver(sandbox, network)
    env = {"MONITOR_INTERVAL": "10s", "REPORT_URLS": RECEIVER_URL, "DISK_ALERT_USED": "15%", "DISK_RESERVE": "4M"}
    server = start_small_server(sandbox, network, env)
    web = make_client(sandbox, server, "web", tmp_path)

    fill_volume(sandbox, web.data, "head -c 20000000 /dev/urandom > /data/first.bin")
    first_digest = data_digest(sandbox, web.data)
    first = client_command(sandbox, web, ["run"], env={"ARCHIVE_NAME": "first-{utcnow}"})
    assert first.returncode == 0, first.stderr

    # The alert reaches the receiver while the disk still has most of its room.
    server.exec("borg-server", "scan")
    wait_until(lambda: [a for a in received(receiver) if a["state"] == "raised"], 10, "the disk alert")
    raised = next(a for a in received(receiver) if a["state"] == "raised")
    assert raised["client"] is None and "DISK_ALERT_USED 15%" in raised["message"], raised
    figures = server_status(server)
    assert figures["server"]["alerts"] == ["disk"] and figures["server"]["used_ratio"] < 0.3, figures
    assert figures["server"]["total_bytes"] == 120 * 1024 * 1024
    # The server wrote its reserve into the repository's config, and that is no tampering.
    config = server.exec("cat", "/srv/borg/web/main/config").stdout
    assert "additional_free_space = 4000000" in config, config
    assert "tampering" not in figures["clients"][0]["alerts"], figures

    fill_volume(sandbox, web.data, "head -c 200000000 /dev/urandom > /data/big.bin")
    too_big = client_command(sandbox, web, ["run"])
    assert too_big.returncode != 0
    said = too_big.stderr.lower()
    assert "no space" in said or "insufficient free space" in said, too_big.stderr

    # The data shrinks; the monitor removes what the failed transaction left; the next run needs no one.
    fill_volume(sandbox, web.data, "rm /data/big.bin /data/first.bin && head -c 1000000 /dev/urandom > /data/small")
    server.exec("borg-server", "scan")
    wait_until(lambda: server_status(server)["server"]["free_bytes"] > 60_000_000, 10, "the space to be freed")
    after = client_command(sandbox, web, ["run"], env={"ARCHIVE_NAME": "after-{utcnow}"})
    assert after.returncode == 0, after.stderr
    check = client_command(sandbox, web, ["check"])
    assert check.returncode == 0, check.stderr

    listing = client_command(sandbox, web, ["list", "--short"]).stdout.split()
    archive = next(name for name in listing if name.startswith("first-"))
    script = f"borg-client restore {archive} --target /tmp/r >&2 && sha256sum /tmp/r/backup/data/first.bin"
    options = [*web.options(), "--entrypoint", "sh"]
    restored = sandbox.run("restore", CLIENT_IMAGE, options, ["-c", script], detach=False, check=False)
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.split()[0] == first_digest


def received(receiver) -> list[dict]:
    bodies = [entry["body"] for entry in receiver.accepted()]
    return [body for body in bodies if isinstance(body, dict) and body.get("alert") == "disk"]


def test_the_run_right_after_space_is_back_succeeds_without_waiting_for_the_monitor(sandbox, tmp_path):
    network = sandbox.network()
    server = start_small_server(sandbox, network, {"MONITOR_INTERVAL": "1h"})  # no scan cleans up in between
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "head -c 5000000 /dev/urandom > /data/first.bin")
    assert client_command(sandbox, web, ["run"], env={"ARCHIVE_NAME": "first-{utcnow}"}).returncode == 0

    fill_volume(sandbox, web.data, "head -c 200000000 /dev/urandom > /data/big.bin")
    too_big = client_command(sandbox, web, ["run"])
    assert too_big.returncode != 0 and "no space" in too_big.stderr.lower(), too_big.stderr
    assert int(server.exec("df", "--output=avail", "-B1", "/srv/borg").stdout.split()[1]) < 5_000_000

    # The data shrinks; the very next session removes what the failed transaction left, before its borg serve.
    fill_volume(sandbox, web.data, "rm /data/big.bin")
    after = client_command(sandbox, web, ["run"], env={"ARCHIVE_NAME": "after-{utcnow}"})
    assert after.returncode == 0, after.stderr
    check = client_command(sandbox, web, ["check"])
    assert check.returncode == 0, check.stderr
    assert "client web: removed " in logs(server.container)
    assert "of segments a failed backup left after its last commit" in logs(server.container)
    listing = client_command(sandbox, web, ["list", "--short"]).stdout.split()
    assert [name[:6] for name in listing] == ["first-", "after-"], listing
