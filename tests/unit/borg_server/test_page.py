"""The status page (status/page.py): what a person reads for a healthy, a stale and an alerting client, the
trend chart, the server's disk, and /status.json with the same facts."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from html.parser import HTMLParser

from borg_server.status.facts import ServerStatus
from borg_server.status.page import Section, Snapshot, render_html, render_json
from tests.unit.borg_server.sample_status import client_status

NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
T = NOW.timestamp()
DAY = 86400


status = functools.partial(client_status, auto_compact="admin", max_age_s=26 * 3600)


HEALTHY = status("web", last_backup="2026-12-05T02:58:00+00:00", repository_bytes=1_200_000,
                 quota_bytes=50_000_000, quota_used=0.024, last_check="ok", last_check_at="2026-12-04T00:00:00+00:00",
                 last_compaction_at="2026-12-01T04:00:00+00:00", last_compaction_freed_bytes=300_000)  # fmt: skip
STALE = status("db", last_backup="2026-12-03T01:00:00+00:00", repository_bytes=5_000_000, alerts=["stale"],
               alert_messages={"stale": "no backup of db for 2d 2h"}, last_check="failed",
               last_check_at="2026-12-04T00:00:00+00:00")  # fmt: skip
ALERTING = status("mail", last_backup="2026-12-05T02:00:00+00:00", repository_bytes=3_000_000,
                  alerts=["client_deletes"], alert_messages={"client_deletes": "2 deletes by <the client's> own key"},
                  unacknowledged_deletes=2, compaction_blocked="deletes by the client's own key")  # fmt: skip
SERVER = ServerStatus("/srv/borg", 100_000_000_000, 70_000_000_000, 0.3, 1_000_000_000, [], notifications_waiting=3)
HISTORY = {"web": [(T - 20 * DAY, 1_000_000), (T - 10 * DAY, 1_100_000), (T - 60, 1_200_000)]}
SNAPSHOT = Snapshot("backup-host", T - 60, 900, [STALE, ALERTING, HEALTHY], SERVER, HISTORY)


class Text(HTMLParser):
    """The page as a person reads it: the text of each paragraph and of each cell, per row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self.paragraphs: list[str] = []
        self.row: str | None = None
        self.text: list[str] | None = None
        self.svgs = 0

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.row = dict(attrs).get("id")
        if tag in ("td", "p"):
            self.text = []
        self.svgs += tag == "svg"

    def handle_endtag(self, tag):
        if tag == "td" and self.row:
            self.rows.setdefault(self.row, []).append(" ".join("".join(self.text).split()))
        if tag == "p":
            self.paragraphs.append(" ".join("".join(self.text).split()))

    def handle_data(self, data):
        if self.text is not None:
            self.text.append(data)


def read(html: str) -> Text:
    parser = Text()
    parser.feed(html)
    return parser


def test_the_page_shows_a_healthy_a_stale_and_an_alerting_client_as_a_person_reads_them():
    page = read(render_html(SNAPSHOT, NOW))

    assert page.paragraphs[0] == "Needs attention: db (stale); mail (client_deletes)."
    assert page.paragraphs[1] == ("Figures from the monitor's scan at 2026-12-05 02:59 UTC (it scans every 15m); "
                                  "ages as of 2026-12-05 03:00 UTC. Also as status.json.")  # fmt: skip
    assert page.rows == {
        "client-db": ["db", "2d 2h ago, over the 1d 2h limit", "5.0 MB no trend yet", "no quota",
                      "stale: no backup of db for 2d 2h", "failed, 2026-12-04 00:00 UTC", "nothing to compact"],
        "client-mail": ["mail", "1h ago, limit 1d 2h", "3.0 MB no trend yet", "no quota",
                        "client_deletes: 2 deletes by <the client's> own key", "never",
                        "held: deletes by the client's own key"],
        "client-web": ["web", "2m ago, limit 1d 2h", "1.2 MB +200.0 kB since 2026-11-15", "2% of 50.0 MB", "none",
                       "ok, 2026-12-04 00:00 UTC", "nothing to compact; last 2026-12-01 04:00 UTC, freed 300.0 kB"],
    }  # fmt: skip
    assert page.paragraphs[2:] == ["/srv/borg: 70.0 GB free of 100.0 GB (30% used), 1.0 GB kept for clean-up",
                                   "Server alerts: none",
                                   "Notifications: 3 waiting in the outbox for delivery"]  # fmt: skip


def test_the_age_is_coloured_against_max_age_and_the_trend_is_an_inline_svg_line():
    html = render_html(SNAPSHOT, NOW)

    assert '<span class="age stale">2d 2h ago, over the 1d 2h limit</span>' in html
    assert '<span class="age fresh">2m ago, limit 1d 2h</span>' in html
    assert (
        '<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="1.0,27.0 60.0,14.0 119.0,1.0"/>' in html
    )
    assert read(html).svgs == 1  # one chart: the clients with a single sample have no trend yet
    assert "<script" not in html and "&lt;the client&#x27;s&gt;" in html


def test_past_three_quarters_of_max_age_the_age_is_due():
    due = status("web", last_backup="2026-12-04T03:00:00+00:00")  # 24h of 26h

    assert '<span class="age due">1d ago, limit 1d 2h</span>' in render_html(Snapshot("h", T, 900, [due]), NOW)


def test_all_well_is_said_in_one_sentence_and_a_client_never_backed_up_needs_attention():
    assert read(render_html(Snapshot("h", T, 900, [HEALTHY], SERVER), NOW)).paragraphs[0] == (
        "All 1 client backed up within their limits; no open alerts."
    )
    assert read(render_html(Snapshot("h", T, 900, [status("new")], SERVER), NOW)).paragraphs[0] == (
        "Needs attention: new (no backup yet)."
    )


def test_before_the_first_scan_the_page_says_it_fills_in_after_it():
    assert read(render_html(Snapshot("backup-host"), NOW)).paragraphs == [
        "The monitor has not finished its first scan yet; this page fills in after it."
    ]


def test_status_json_has_the_facts_of_status_json_with_ages_now_and_the_size_history():
    document = json.loads(render_json(SNAPSHOT, NOW))

    assert (document["server_name"], document["generated_at"], document["scanned_at"]) == (
        "backup-host", "2026-12-05T03:00:00+00:00", "2026-12-05T02:59:00+00:00")  # fmt: skip
    assert document["server"]["free_bytes"] == 70_000_000_000
    web = document["clients"][2]
    assert {key: web[key] for key in ("client", "age_s", "freshness", "size_trend", "size_history")} == {
        "client": "web",
        "age_s": 120,
        "freshness": "fresh",
        "size_trend": {"since": "2026-11-15T03:00:00+00:00", "change_bytes": 200_000},
        "size_history": [["2026-11-15T03:00:00+00:00", 1_000_000], ["2026-11-25T03:00:00+00:00", 1_100_000],
                         ["2026-12-05T02:59:00+00:00", 1_200_000]],
    }  # fmt: skip
    assert document["clients"][0]["alert_messages"] == {"stale": "no backup of db for 2d 2h"}


COPIES = Section(
    key="replica", title="Copies from the primary primary:22", lines=("This server is a replica.",),
    headings=("Client", "Open alerts"),
    rows=(("app", ("app", {"replica_mismatch": "segments <7> differ"})), ("web", ("web", {}))),
    document={"copies": ["app", "web"]}, attention=("app (replica_mismatch)",),
)  # fmt: skip


def test_a_section_another_layer_adds_is_a_table_of_its_own_in_the_page_its_summary_and_status_json():
    snapshot = Snapshot("replica-host", T - 60, server=SERVER, sections=(COPIES,), source="the replicator's last look")

    html = render_html(snapshot, NOW)
    page = read(html)

    assert page.paragraphs[0] == "Needs attention: app (replica_mismatch)."
    assert page.paragraphs[1].startswith("Figures from the replicator's last look at 2026-12-05 02:59 UTC; ")
    assert page.paragraphs[2] == "This server is a replica."
    assert page.rows == {
        "replica-app": ["app", "replica_mismatch: segments <7> differ"],
        "replica-web": ["web", "none"],
    }
    assert '<section id="replica"><h2>Copies from the primary primary:22</h2>' in html
    assert "<li><b>replica_mismatch</b>: segments &lt;7&gt; differ</li>" in html
    assert "<th>Last backup</th>" not in html  # no table of clients: a replica's clients are its copies
    assert json.loads(render_json(snapshot, NOW))["replica"] == {"copies": ["app", "web"]}


def test_a_page_with_only_a_section_and_nothing_open_says_so():
    quiet = Section("replica", "Copies", (), ("Client",), (), {}, empty="No copy yet.")
    page = read(render_html(Snapshot("replica-host", T - 60, sections=(quiet,)), NOW))

    assert page.paragraphs[0] == "No open alerts."
    assert page.paragraphs[2] == "No copy yet."
