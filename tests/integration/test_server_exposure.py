"""What the server exposes besides sshd: a thousand idle connections to the metrics port stop neither
the monitor's scans nor its alerts, and /metrics answers again once they are gone."""

from __future__ import annotations

from tests.harness.containers import CLIENT_IMAGE, logs, wait_until
from tests.harness.stack import client_command, fill_volume, make_client, start_receiver, start_server

FLOOD = """
import socket, sys, time, urllib.request
held, refused = [], 0
for _ in range(1000):  # connections that never send a request
    try:
        held.append(socket.create_connection((sys.argv[1], 9100), timeout=5))
    except OSError:
        refused += 1
print(f"opened {len(held)} refused {refused}", flush=True)
time.sleep(float(sys.argv[2]))  # hold them while the test makes the monitor alert
closed = 0
for connection in held:  # by now the server has closed every one of them
    connection.settimeout(0.01)
    try:
        closed += connection.recv(1) == b""
    except ConnectionResetError:
        closed += 1
    except OSError:
        pass
print(f"closed by the server {closed}", flush=True)
body = urllib.request.urlopen(f"http://{sys.argv[1]}:9100/metrics", timeout=10).read().decode()
print("metrics ok" if "borg_appliance_client_append_only" in body else "metrics missing", flush=True)
"""


def test_a_connection_flood_on_the_metrics_port_stops_neither_scans_nor_alerts(sandbox, tmp_path):
    network = sandbox.network()
    receiver = start_receiver(sandbox, network)
    env = {"MONITOR_INTERVAL": "10s", "METRICS_PORT": "9100", "REPORT_URLS": "http://receiver:8080/alerts"}
    server = start_server(sandbox, ["web"], env=env, network=network)
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "head -c 2000000 /dev/urandom > /data/one.bin")
    assert client_command(sandbox, web, ["run"], env={"ARCHIVE_NAME": "first-{utcnow}"}).returncode == 0

    sandbox.run("flood", CLIENT_IMAGE, ["--network", network, "--entrypoint", "python3"],
                ["-c", FLOOD, server.container, "60"])  # fmt: skip
    flood = sandbox.name("flood")
    wait_until(lambda: "opened" in logs(flood), 60, "the flood's connections")
    opened = int(logs(flood).split("opened ")[1].split()[0])
    assert opened >= 900, logs(flood)  # the kernel accepts them; the server closes what it will not serve

    # While the connections are held, the monitor keeps scanning and a delete still becomes an alert.
    scans = logs(server.container).count("scanned 1 clients")
    deleted = client_command(sandbox, web, ["borg-client", "borg", "delete", "--glob-archives", "first-*"])
    assert deleted.returncode == 0, deleted.stderr
    wait_until(lambda: any(entry["body"].get("alert") == "client_deletes" for entry in receiver.accepted()), 30,
               "the client_deletes alert at the receiver during the flood")  # fmt: skip
    wait_until(lambda: logs(server.container).count("scanned 1 clients") >= scans + 2, 30, "two more scans")
    assert "opened" in logs(flood) and "closed by the server" not in logs(flood)  # still held

    wait_until(lambda: "metrics" in logs(flood).split("closed by the server")[-1], 90, "the flood to end")
    assert f"closed by the server {opened}" in logs(flood)
    assert "metrics ok" in logs(flood)
