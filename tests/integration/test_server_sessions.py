"""A client that opens sessions in a loop (broken, or an intruder with its key): at most MAX_SESSIONS of them run,
the rest are refused with a line the client reads, a line in the audit log and an alert, and another client's
backup at the same time succeeds."""

from __future__ import annotations

import json

from tests.harness.containers import CLIENT_IMAGE, exec_, health, logs, wait_until
from tests.harness.stack import SSH, client_command, fill_volume, make_client, received, start_receiver, start_server

HELD = 3  # BORG_CLIENT_WEB_MAX_SESSIONS
OPENED = 8
# Each session holds its borg serve until /tmp/stop exists (then its stdin ends); a refused one ends at once.
FLOOD = f"""
for number in $(seq {OPENED}); do
    (while [ ! -e /tmp/stop ]; do sleep 0.2; done) | {{
        $SSH borg@$SERVER borg serve 2> /tmp/err.$number; echo "$number $?" >> /tmp/ended; }} &
done
wait
echo "all ended: $(wc -l < /tmp/ended)"
"""
REFUSAL = (
    f"borg-server: client web has {HELD} sessions open already, as many as MAX_SESSIONS allows "
    "(BORG_CLIENT_WEB_MAX_SESSIONS, if set); this session is refused. Try again when one has ended; if web did not "
    "mean to open them, look for a broken or compromised program on its host"
)


def test_a_client_opening_many_sessions_gets_its_cap_the_rest_are_refused_and_alerted_others_back_up(sandbox, tmp_path):
    network = sandbox.network()
    receiver = start_receiver(sandbox, network)
    env = {"REPORT_URLS": "http://receiver:8080/alerts", "BORG_CLIENT_WEB_MAX_SESSIONS": str(HELD)}
    server = start_server(sandbox, ["web", "db"], env, network=network)
    web, db = make_client(sandbox, server, "web", tmp_path), make_client(sandbox, server, "db", tmp_path)
    fill_volume(sandbox, db.data, "head -c 3000000 /dev/urandom > /data/db.bin")
    fill_volume(sandbox, web.data, "echo web > /data/web.txt")

    options = [*web.options({"SSH": SSH, "SERVER": server.container}), "--entrypoint", "sh"]
    sandbox.run("flood", CLIENT_IMAGE, options, ["-c", FLOOD])
    flood = sandbox.name("flood")

    def ended() -> list[str]:
        return lines_in(flood, "cat /tmp/ended 2>/dev/null || true")

    wait_until(lambda: len(ended()) == OPENED - HELD, 60, "the sessions over the cap to be refused")
    refused = [line.split()[0] for line in ended()]
    assert all(line.split()[1] == "75" for line in ended()), ended()  # EX_TEMPFAIL: try again later
    for number in refused:
        assert lines_in(flood, f"cat /tmp/err.{number}") == [REFUSAL]

    # While web's three sessions hold on, db backs up as usual.
    backup = client_command(sandbox, db, ["run"])
    assert backup.returncode == 0, backup.stderr

    audit = [
        json.loads(line) for line in server.exec("cat", "/var/lib/borg-server/audit/sessions.jsonl").stdout.splitlines()
    ]
    refusals = [record for record in audit if record.get("refused")]
    assert len(refusals) == OPENED - HELD
    assert {(r["client"], r["refused"], r["exit_code"], r["message"]) for r in refusals} == {
        ("web", "max_sessions", 75, REFUSAL.removeprefix("borg-server: "))
    }

    server.exec("borg-server", "scan")
    (alert,) = wait_until(lambda: received(receiver, "sessions_refused", "raised"), 30, "the sessions_refused alert")
    first, last = min(r["finished_at"] for r in refusals), max(r["finished_at"] for r in refusals)
    assert alert["client"] == "web"
    assert alert["message"] == (
        f"client web: {OPENED - HELD} session(s) refused since {first} (the last at {last}, from "
        f"{refusals[-1]['source']}): {HELD} sessions of the client were open at once, as many as MAX_SESSIONS "
        f"allows. A broken or compromised client is opening sessions in a loop: look at the host "
        f"{refusals[-1]['source']}; its backups fail while this lasts, other clients' do not"
    )

    # Once its sessions end, web has its sessions back: nothing dead is counted.
    lines_in(flood, "touch /tmp/stop")
    wait_until(lambda: health(flood) == "exited", 60, "the held sessions to end")
    assert f"all ended: {OPENED}" in logs(flood)
    run = client_command(sandbox, web, ["run"])
    assert run.returncode == 0, run.stderr


def lines_in(container: str, script: str) -> list[str]:
    """Return the lines a shell script prints in a running container."""
    return exec_(container, "sh", "-c", script).stdout.splitlines()
