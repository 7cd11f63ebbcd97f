"""The status page in a real browser: headless Chromium (Debian's, tests/images/chromium) opens it for a healthy,
a stale and an alerting client, reads what a person reads (--dump-dom) and keeps a screenshot of it
(.build/artefacts/); a plain HTTP client checks the password, the methods, the headers and /status.json."""

from __future__ import annotations

import json
import re
import secrets
import time
from html import escape
from pathlib import Path

from tests.harness.containers import CHROMIUM_IMAGE, CLIENT_IMAGE, logs, wait_until
from tests.harness.stack import client_command, fill_volume, make_client, start_server

ARTEFACTS = Path(__file__).resolve().parents[2] / ".build" / "artefacts"
PORT = 8080
# One container on the scenario's network asks the page what a browser and an intruder would: the answers as JSON.
PROBE = """
import base64, json, sys, urllib.request, urllib.error
url, password = sys.argv[1], sys.argv[2]
def ask(path, method="GET", password=None, data=None):
    request = urllib.request.Request(url + path, method=method, data=data)
    if password is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(b"anyone:" + password.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return {"code": answer.status, "headers": dict(answer.headers), "body": answer.read().decode()}
    except urllib.error.HTTPError as error:
        return {"code": error.code, "headers": dict(error.headers), "body": error.read().decode()}
print(json.dumps({
    "none": ask("/"), "wrong": ask("/", password="not the password"), "json": ask("/status.json", password=password),
    "page": ask("/", password=password), "head": ask("/", "HEAD", password=password),
    "post": ask("/", "POST", password=password, data=b"x=1"), "missing": ask("/admin", password=password),
}))
"""


def probe(sandbox, server, password: str) -> dict:
    result = sandbox.run("probe", CLIENT_IMAGE, ["--network", server.network, "--entrypoint", "python3"],
                         ["-c", PROBE, f"http://{server.container}:{PORT}", password], detach=False)  # fmt: skip
    return json.loads(result.stdout)


def status_json(server, password: str) -> dict:
    """Return /status.json as the server itself serves it (asked from inside its container)."""
    fetch = (
        f"import base64,sys,urllib.request as u;r=u.Request('http://127.0.0.1:{PORT}/status.json');"
        "r.add_header('Authorization','Basic '+base64.b64encode(b'x:'+sys.argv[1].encode()).decode());"
        "print(u.urlopen(r,timeout=10).read().decode())"
    )
    return json.loads(server.exec("python3", "-c", fetch, password).stdout)


def browse(sandbox, server, password: str, role: str, *arguments: str) -> str:
    """Open the page in headless Chromium with arguments; return what it printed."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    ARTEFACTS.chmod(0o777)  # the browser's own user writes the screenshot
    url = f"http://anyone:{password}@{server.container}:{PORT}/"
    result = sandbox.run(role, CHROMIUM_IMAGE, ["--network", server.network, "-v", f"{ARTEFACTS}:/artefacts"],
                         [*arguments, url], detach=False)  # fmt: skip
    return result.stdout


def test_the_status_page_shows_a_healthy_a_stale_and_an_alerting_client_in_a_browser(sandbox, tmp_path,
                                                                                     browser_image):  # fmt: skip
    password = secrets.token_hex(16)
    (tmp_path / "status_password").write_text(password + "\n")
    env = {"MONITOR_INTERVAL": "10s", "STATUS_PORT": str(PORT), "STATUS_PASSWORD_FILE": "/run/secrets/status_password",
           "BORG_CLIENT_DB_MAX_AGE": "1m"}  # fmt: skip
    # A month of web's sizes as earlier scans left them in the state volume, so the page has a trend to draw.
    now = time.time()
    sizes = {"web": [[round(now - days * 86400), size] for days, size in ((28, 120_000), (14, 230_000))]}
    fill_volume(sandbox, sandbox.volume("server-state"),
                f"mkdir -p /data/monitor && echo '{json.dumps(sizes)}' > /data/monitor/sizes.json")  # fmt: skip
    server = start_server(sandbox, ["db", "mail", "web"], env=env,
                          extra=["-v", f"{tmp_path / 'status_password'}:/run/secrets/status_password:ro"])  # fmt: skip
    serving = "status page: serving on port 8080 at / and /status.json, with a password"
    wait_until(lambda: serving in logs(server.container), 60, "the monitor's status page")  # it starts after sshd

    # db backs up once and then not again within its MAX_AGE of 1m; mail deletes its archive with its own key;
    # web backs up last and stays within the default 26h.
    clients = {name: make_client(sandbox, server, name, tmp_path) for name in ("db", "mail", "web")}
    for name, client in clients.items():
        fill_volume(sandbox, client.data, f"head -c 300000 /dev/urandom > /data/{name}.bin")
        run = client_command(sandbox, client, ["run"], env={"ARCHIVE_NAME": f"{name}-{{utcnow}}"})
        assert run.returncode == 0, run.stderr
    deleted = client_command(sandbox, clients["mail"], ["borg-client", "borg", "delete", "--glob-archives", "mail-*"])
    assert deleted.returncode == 0, deleted.stderr

    def shown() -> dict | None:
        found = {c["client"]: c for c in status_json(server, password)["clients"]}
        ready = found["db"]["alerts"] == ["stale"] and found["mail"]["alerts"] == ["client_deletes"]
        return found if ready and found["web"]["last_backup"] else None

    found = wait_until(shown, 150, "db stale and mail's client_deletes on /status.json")
    assert [(c["freshness"], c["alerts"]) for c in found.values()] == [
        ("stale", ["stale"]), ("fresh", ["client_deletes"]), ("fresh", [])]  # fmt: skip
    assert found["mail"]["alert_messages"]["client_deletes"].startswith("client mail: ")

    dom = browse(sandbox, server, password, "dom", "--dump-dom")
    assert "<script" not in dom
    assert '<p class="summary attention">Needs attention: db (stale); mail (client_deletes).</p>' in dom
    assert re.search(r'<tr id="client-db" class="alerting"><td data-label="Client"><b>db</b></td>'
                     r'<td data-label="Last backup"><span class="age stale">\d+m( \d+s)? ago, over the 1m limit</span>',
                     dom), dom  # fmt: skip
    assert re.search(
        r'<tr id="client-web" class=""><td data-label="Client"><b>web</b></td><td data-label="Last '
        r'backup"><span class="age fresh">(\d+s|\d+m( \d+s)?) ago, limit 1d 2h</span>',
        dom,
    ), dom
    mail = dom.split('<tr id="client-mail"')[1].split("</tr>")[0]
    assert (
        f"<li><b>client_deletes</b>: {escape(found['mail']['alert_messages']['client_deletes'], quote=False)}</li>"
        in mail
    )
    assert "<h2>Server disk</h2><p>/srv/borg: " in dom
    web = dom.split('<tr id="client-web"')[1].split("</tr>")[0]
    assert re.search(r'<svg class="chart" [^>]*aria-label="size of web over 30 days"><polyline [^>]*points="1\.0,'
                     r'27\.0 [0-9.]+,[0-9.]+ 119\.0,1\.0"></polyline></svg><br><small>\+\d+\.\d kB since '
                     r'\d{4}-\d\d-\d\d</small>', web), web  # fmt: skip

    browse(sandbox, server, password, "wide", "--screenshot=/artefacts/status-page.png", "--window-size=1200,720",
           "--hide-scrollbars")  # fmt: skip
    browse(sandbox, server, password, "phone", "--screenshot=/artefacts/status-page-phone.png",
           "--window-size=390,1400", "--hide-scrollbars")  # fmt: skip
    for name in ("status-page.png", "status-page-phone.png"):
        assert (ARTEFACTS / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    answers = probe(sandbox, server, password)
    for refused in ("none", "wrong"):
        assert answers[refused]["code"] == 401
        assert answers[refused]["headers"]["WWW-Authenticate"] == 'Basic realm="borg-appliance status", charset="UTF-8"'
        assert answers[refused]["body"] == "The status page needs its password (STATUS_PASSWORD_FILE).\n"
    assert (answers["post"]["code"], answers["post"]["headers"]["Allow"]) == (405, "GET, HEAD")
    assert answers["post"]["body"] == "Only GET and HEAD are answered here: the status page cannot change anything.\n"
    assert (answers["missing"]["code"], answers["missing"]["body"]) == (404, "Only / and /status.json are here.\n")
    assert (answers["head"]["code"], answers["head"]["body"]) == (200, "")
    page = answers["page"]
    assert (page["code"], page["headers"]["Content-Type"]) == (200, "text/html; charset=utf-8")
    assert {name: page["headers"][name] for name in ("Content-Security-Policy", "X-Content-Type-Options",
            "X-Frame-Options", "Referrer-Policy", "Cache-Control")} == {
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; "
                                   "base-uri 'none'; form-action 'none'",
        "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store"}  # fmt: skip
    document = json.loads(answers["json"]["body"])
    assert answers["json"]["headers"]["Content-Type"] == "application/json"
    assert sorted(document) == ["clients", "generated_at", "scanned_at", "server", "server_name"]
    assert [c["client"] for c in document["clients"]] == ["db", "mail", "web"]
    assert document["clients"][2]["size_history"][-1][1] == document["clients"][2]["repository_bytes"] > 300_000
    assert password not in logs(server.container)
