"""Notifications reach real services as a person reads them: an ntfy server and an SMTP server (Debian's
packages), through Apprise's ntfy:// and mailto://; kept while a service is down, also across a restart of the
sidecar or the server, and sent once when it is back. (A replica's own alert: test_replica.py.)"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from borg_common.values import human_size
from tests.harness.containers import CLIENT_IMAGE, SERVER_IMAGE, docker, health, wait_until
from tests.harness.notifiers import start_ntfy, start_smtp
from tests.harness.stack import alert_seen, client_command, fill_volume, make_client, start_server

MAIL = "mailto://smtp:2525?from=backup@example.org&to=admin@example.org"
NEXT = (
    "Next: read the run's log (docker logs of the sidecar, or its day log under /var/lib/borg-client/logs), "
    "fix the cause, then run borg-client run to back up now; see docs/explanation/backup-run.md."
)
TOKEN = "AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"
AGO = r"(?:(?:\d+m )?\d+s|\d+m)"  # how long ago a backup of this scenario ended, as a person reads it


@pytest.fixture(scope="module", autouse=True)
def receiver_images(database_images) -> None:
    """The ntfy and SMTP images are made with the database images (make test-images)."""


def last_run(sandbox, web) -> dict:
    return json.loads(client_command(sandbox, web, ["status", "--json"]).stdout)["last_runs"][-1]


def waiting(sandbox, web) -> list[str]:
    """Return the notifications waiting in the sidecar's outbox (file names)."""
    listing = sandbox.run("ls", CLIENT_IMAGE, ["-v", f"{web.state}:/state", "--entrypoint", "sh"],
                          ["-c", "ls /state/notify-outbox 2>/dev/null || true"], detach=False)  # fmt: skip
    return listing.stdout.split()


def failed_body(run: dict) -> str:
    took = int(run["duration_s"])
    started = run["started_at"].replace("T", " ").replace("+00:00", " UTC")
    return (
        f"{FAILURE_SENTENCE}\n"
        "There is no good backup of this client yet.\n"
        f"Started {started}, took {f'{took}s' if took else '0s'}.\n"
        f"{NEXT}"
    )


FAILURE_SENTENCE = (
    "Borg create failed (exit 83): the server does not let this key reach that path; check BORG_REPO (./main) and "
    "CLIENT_NAME (borg: Repository path not allowed: /srv/borg/other [PathNotAllowed])."
)


def test_a_failed_backup_reaches_ntfy_and_mail_as_a_person_reads_it(sandbox, tmp_path):
    server = start_server(sandbox, ["web"])
    ntfy, smtp = start_ntfy(sandbox, server.network), start_smtp(sandbox, server.network)
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "echo one > /data/file")
    env = {
        "NOTIFY_URLS": f"ntfy://ntfy/backups {MAIL}",
        "BORG_REPO": f"ssh://borg@{server.container}:22/srv/borg/other",
    }

    run = client_command(sandbox, web, ["run"], env=env, extra=["--hostname", "app-host"])

    assert run.returncode == 2, run.stderr
    report = last_run(sandbox, web)
    [message] = ntfy.messages("backups")
    assert message["title"] == "backup of web failed on app-host"
    assert message["message"] == failed_body(report)
    [mail] = smtp.mails()
    assert mail["Subject"] == "backup of web failed on app-host"
    assert (mail["From"], mail["To"]) == ("backup@example.org", "admin@example.org")
    assert mail.get_body(("plain",)).get_content() == failed_body(report)
    assert waiting(sandbox, web) == []


def test_a_failure_while_ntfy_is_down_arrives_once_after_it_is_back_across_a_restart_of_the_sidecar(sandbox, tmp_path):
    server = start_server(sandbox, ["web"])
    ntfy = start_ntfy(sandbox, server.network)
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "echo one > /data/file")
    notifying = {"NOTIFY_URLS": "ntfy://ntfy/backups", "REPORT_TIMEOUT": "2s"}
    ntfy.stop()

    failing = {**notifying, "BORG_REPO": f"ssh://borg@{server.container}:22/srv/borg/other"}
    run = client_command(sandbox, web, ["run"], env=failing, extra=["--hostname", "app-host"])

    assert run.returncode == 2, run.stderr  # the backup's outcome, not the notification's
    assert "backup failure: borg create failed (exit 83)" in run.stderr, run.stderr
    assert (
        "to ntfy://…: gave up after 5 attempt(s), last the service did not take it (name not found); kept in the "
        "outbox" in run.stderr
    ), run.stderr
    assert len(waiting(sandbox, web)) == 1
    failed = last_run(sandbox, web)

    ntfy.start()
    sandbox.run("sidecar", CLIENT_IMAGE, [*web.options({**notifying, "BACKUP_CRON": "0 0 1 1 *"}),
                                          "--hostname", "app-host"])  # fmt: skip
    sidecar = sandbox.name("sidecar")
    wait_until(lambda: ntfy.messages("backups"), 60, "the failure's notification")
    wait_until(lambda: last_run(sandbox, web)["started_at"] != failed["started_at"], 120, "the catch-up backup")
    docker("kill", "--signal", "USR1", sidecar)  # one more run, one more flush: nothing is sent twice
    wait_until(lambda: len(json.loads(client_command(sandbox, web, ["status", "--json"]).stdout)["last_runs"]) == 3,
               120, "the second backup")  # fmt: skip

    [message] = ntfy.messages("backups")  # the successes are not sent (NOTIFY_ON: failure warning alert)
    assert (message["title"], message["message"]) == ("backup of web failed on app-host", failed_body(failed))
    assert waiting(sandbox, web) == []


def notifications_waiting(server) -> int:
    """Return what borg-server status --json --server counts in the server's notifications' outbox."""
    return json.loads(server.exec("borg-server", "status", "--json", "--server").stdout)["server"][
        "notifications_waiting"
    ]


def test_a_delete_by_the_clients_own_key_reaches_ntfy_once_though_ntfy_was_down_across_a_restart_of_the_server(
    sandbox, tmp_path
):
    server = start_server(sandbox, ["web"], env={"NOTIFY_URLS": "ntfy://ntfy/server", "MONITOR_INTERVAL": "1w"})
    ntfy = start_ntfy(sandbox, server.network)
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "echo one > /data/file")
    for name in ("first", "second"):
        assert client_command(sandbox, web, ["run"], env={"ARCHIVE_NAME": f"{name}-{{utcnow}}"}).returncode == 0
    first = client_command(sandbox, web, ["list", "--short"]).stdout.split()[0]
    deleted = client_command(sandbox, web, ["borg-client", "borg", "delete", f"::{first}"])
    assert deleted.returncode == 0, deleted.stderr
    ntfy.stop()

    # The alert is raised while ntfy is down: its notification waits, also across a restart of the server.
    server.exec("borg-server", "scan")
    alert = wait_until(lambda: alert_seen(server.container, "client_deletes", "raised"), 30, "the alert")
    assert notifications_waiting(server) == 1
    docker("restart", server.container)  # its first scan tries again, ntfy still down
    wait_until(lambda: health(server.container) == "healthy", 60, "the server to start again")
    assert notifications_waiting(server) == 1
    assert "notifications waiting: 1" in server.exec("borg-server", "status").stdout.splitlines()[-1]

    # ntfy is back: the next scan delivers it, and the scan after that sends nothing again.
    ntfy.start()
    server.exec("borg-server", "scan")
    [message] = wait_until(lambda: ntfy.messages("server"), 60, "the alert's notification")
    server.exec("borg-server", "scan")
    assert [m["id"] for m in ntfy.messages("server")] == [message["id"]]
    assert notifications_waiting(server) == 0
    assert message["title"] == f"deletes by the client's own key: client web on {server.container}"
    why = alert["message"].removeprefix("client web: ")
    assert message["message"] == (
        f"{why[0].upper()}{why[1:]}.\nAt {alert['at']}.\nHow to answer it: docs/how-to/answer-an-alert.md"
    )
    assert "not by the admin key" in why and "Next: see what was deleted with borg-server audit web" in why


@pytest.mark.parametrize(
    ("urls", "problem"),
    [
        ("ntfy:/ntfy/backups", "the 1st URL (no scheme) is not a URL: it must start with a scheme such as "
         "mailto://, ntfy:// or gotify://"),
        ("ntfy://ntfy/ok ntfyy://ntfy.example.org/topic", "the 2nd URL (ntfyy://ntfy.example.org/…) has a scheme "
         "Apprise does not know (ntfyy://)"),
        (f"tgram://{TOKEN}", "the 1st URL (tgram://…) is not a tgram:// URL Apprise can use: a part is missing or "
         "malformed"),
    ],
)  # fmt: skip
def test_a_url_apprise_cannot_use_stops_both_images_at_start_naming_the_setting_never_the_token(
    sandbox, tmp_path, urls, problem
):
    server = start_server(sandbox, ["web"])
    ntfy = start_ntfy(sandbox, server.network)
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "echo one > /data/file")
    line = f"  NOTIFY_URLS: {problem}; see docs/how-to/notifications.md"

    run = client_command(sandbox, web, ["run"], env={"NOTIFY_URLS": urls})
    started = sandbox.run("bad-server", SERVER_IMAGE, ["--network", server.network, "-e", "BORG_CLIENTS=web",
                          "-e", f"NOTIFY_URLS={urls}"], detach=False, check=False)  # fmt: skip

    assert run.returncode == 2 and line in run.stderr.splitlines(), run.stderr
    assert started.returncode != 0 and line in started.stderr.splitlines(), started.stderr
    for said in (run.stdout + run.stderr, started.stdout + started.stderr):
        assert TOKEN not in said and "Traceback" not in said
    assert json.loads(client_command(sandbox, web, ["status", "--json"]).stdout)["last_runs"] == []  # nothing ran
    assert ntfy.messages("backups") == [] and waiting(sandbox, web) == []


def test_the_digest_of_a_stale_and_a_healthy_client_reaches_ntfy_from_the_server_and_from_the_sidecar(
    sandbox, tmp_path
):
    # db last backed up three days ago, as the monitor's state remembers it; web has two weeks of sizes for its trend.
    now = datetime.now(UTC)
    three_days_ago = (now - timedelta(days=3)).isoformat(timespec="seconds")
    sizes = {"web": [[round(now.timestamp()) - 14 * 86400, 100]]}
    db = {"version": 2, "first_seen": three_days_ago, "last_backup": three_days_ago}
    fill_volume(sandbox, sandbox.volume("server-state"), (
        f"mkdir -p /data/monitor/clients && echo '{json.dumps(sizes)}' > /data/monitor/sizes.json && "
        f"echo '{json.dumps(db)}' > /data/monitor/clients/db.json"
    ))  # fmt: skip
    server = start_server(sandbox, ["db", "web"], env={"NOTIFY_URLS": "ntfy://ntfy/server", "NOTIFY_ON": "failure"})
    ntfy = start_ntfy(sandbox, server.network)
    web = make_client(sandbox, server, "web", tmp_path)
    fill_volume(sandbox, web.data, "head -c 200000 /dev/urandom > /data/web.bin")
    assert client_command(sandbox, web, ["run"]).returncode == 0
    server.exec("borg-server", "scan")  # db's stale alert is raised, web's size joins its history

    sent = server.exec("borg-server", "digest")

    [message] = wait_until(lambda: ntfy.messages("server"), 30, "the server's digest")  # NOTIFY_ON does not stop it
    assert sent.stdout == f"{message['title']}\n\n{message['message']}\n"
    assert sent.stderr.splitlines()[-1] == "digest: sent to 1 URL(s) of NOTIFY_URLS"
    assert message["title"] == f"weekly digest: 2 clients, 1 stale on {server.container}"
    status = {c["client"]: c for c in json.loads(server.exec("borg-server", "status", "--json").stdout)}
    db, healthy, closing = message["message"].split("\n\n")
    db_lines, web_lines, closing_lines = db.splitlines(), healthy.splitlines(), closing.splitlines()
    assert re.fullmatch(r"db: STALE, last backup 3d( \d+[hms])? ago, over the 1d 2h limit", db_lines[0]), db
    assert db_lines[1:] == [
        f"Size {human_size(status['db']['repository_bytes'])} (+0 B since {now:%Y-%m-%d}), no quota",  # the first scan
        "Last check: never. Compaction: nothing to compact",  # AUTO_COMPACT=admin, no admin delete
    ]
    assert re.fullmatch(rf"web: last backup {AGO} ago, limit 1d 2h", web_lines[0]), healthy
    since = datetime.fromtimestamp(sizes["web"][0][0], UTC).strftime("%Y-%m-%d")
    grown = human_size(status["web"]["repository_bytes"] - 100)
    assert web_lines[1] == f"Size {human_size(status['web']['repository_bytes'])} (+{grown} since {since}), no quota"
    assert web_lines[2] == db_lines[2]
    assert re.fullmatch(r"Server disk /srv/borg: \d+\.\d [kMGT]B free of \d+\.\d [kMGT]B \(\d+% used\)\.",
                        closing_lines[0]), closing  # fmt: skip
    assert re.fullmatch(r"Figures of \d{4}-\d\d-\d\d \d\d:\d\d UTC; borg-server status shows them now\.",
                        closing_lines[1]), closing  # fmt: skip
    monday = now.replace(hour=8, minute=0, second=0, microsecond=0) + timedelta(days=(7 - now.weekday()) % 7)
    monday += timedelta(days=7) if monday <= now else timedelta()
    assert closing_lines[2] == (
        f"The next digest comes {monday:%Y-%m-%d} 08:00 UTC; if it does not, notifications from {server.container} "
        "are not getting through."
    )

    own = client_command(sandbox, web, ["digest"], env={"NOTIFY_URLS": "ntfy://ntfy/web"}, extra=["--hostname",
                         "app-host"])  # fmt: skip

    assert own.returncode == 0, own.stderr
    [mine] = wait_until(lambda: ntfy.messages("web"), 30, "the sidecar's digest")
    assert own.stdout == f"{mine['title']}\n\n{mine['message']}\n"
    assert re.fullmatch(rf"weekly digest of web on app-host: backed up {AGO} ago, 1 reminder", mine["title"]), mine
    lines = mine["message"].splitlines()
    assert re.fullmatch(rf"Last good backup \(web-[0-9T:-]+\) finished {AGO} ago, at \d{{4}}-\d\d-\d\d \d\d:\d\d UTC\.",
                        lines[0]), lines  # fmt: skip
    assert re.fullmatch(r"Last archive: 20\d\.\d kB, 1 file\(s\)\.", lines[1]), lines
    assert re.fullmatch(r"Repository: \d+\.\d kB on the server, deduplicated and compressed\.", lines[2]), lines
    assert lines[3:7] == ["Last prune: none in the journal.", "",
                          "Reminder: recovery kit: never confirmed saved: run borg-client recovery-kit, keep its "
                          "output off this host, then borg-client recovery-kit --confirm-saved; see "
                          "docs/how-to/host-lost.md",
                          ""]  # fmt: skip
    assert lines[7].startswith("The next digest comes ") and lines[7].endswith(
        "; if it does not, notifications from web on app-host are not getting through."
    )
    assert waiting(sandbox, web) == []
    assert [m["title"] for m in ntfy.messages("server")] == [message["title"]]  # the alert is not sent (NOTIFY_ON)
