"""The weekly report's announcement, end to end on the simulated week against the real Prometheus.

The daemon's weekly job writes the 2026-W47 report and queues a `report.published`
notification for `reports.announce`; routing queues a delivery for the announced
receiver's Slack and email integrations; the outbox worker sends them to the Slack
stand-in and to a real SMTP server on loopback (aiosmtpd). The email is parsed
back (multipart/alternative: text + the report page as HTML, its charts PNG parts
referenced by cid:) and the HTML part is opened in headless Chromium, its cid:
images resolved to the message's parts as a mail client does.

"Loads nothing from the network" is shown positively, not by the absence of an
error message: Chromium runs with `--proxy-server` pointing at a loopback HTTP
server that counts every request it gets, and `--proxy-bypass-list=<-loopback>`
(which removes Chromium's implicit bypass of localhost), so any http(s) or
websocket request the page makes, to any host, arrives at the counter. The
email's page must make none; a control page with one remote image must make
one, so the counter demonstrably sees fetches. Debian's Chromium also makes a few
requests for itself whatever the page (component update, account check), which no
flag switches off; they go to fixed Google service endpoints and are set aside
by exact host (and path), so a request from the page to any other place counts.
"""

from __future__ import annotations

import base64
import http.server
import json
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import numpy as np
import pytest
import yaml
from matplotlib.image import imread

from monitor.alerting.events import REPORT_PUBLISHED, ReportEvent
from monitor.alerting.notifications import NotificationKind
from monitor.alerting.repository import AlertRepository
from monitor.config import EmailConfig, OutputsConfig, ReceiverConfig, SlackConfig
from monitor.daemon import Daemon
from monitor.outputs.email import report_html_for_email
from monitor.outputs.outbox import Delivery, DeliveryStatus
from monitor.outputs.report_announce import (queue_report_announcement, report_deliveries, report_link,
                                             report_slack_message)
from monitor.simulate.local_prometheus import free_port
from monitor.store import StateStore
from smtp_server import SmtpServer
from standins.slack_api import SlackStandIn
from test_report_checks import external_references, html5_errors
from test_report_screenshot import CHART_BLUE, CHART_ORANGE, find_chromium

pytestmark = pytest.mark.prometheus

SLACK_TOKEN = "xoxb-report-announce-test-token"
REPORT_URL = "https://reports.example/weekly/"
# Chromium without its background traffic (updates, sync, first-run pings), so the counter sees the page only.
CHROMIUM_OFFLINE_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          "--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
                          "--hide-scrollbars", "--proxy-bypass-list=<-loopback>",
                          "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,Translate,MediaRouter")
# What Chromium fetches for itself, on a blank page too: the updater and the account check.
BROWSER_OWN_REQUESTS = re.compile(r"^(CONNECT (update\.googleapis\.com|accounts\.google\.com|clients2\.google\.com):443"
                                  r"|(GET|POST) http://(clients2\.google\.com/time/|update\.googleapis\.com/service/"
                                  r"update2/))")


class CountingProxy:
    """A loopback HTTP proxy that answers 502 to everything and remembers each request line."""

    def __init__(self):
        requests: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _count(self):
                requests.append(f"{self.command} {self.path}")
                self.send_response(502)
                self.send_header("content-length", "0")
                self.end_headers()

            do_GET = do_POST = do_HEAD = do_CONNECT = do_OPTIONS = _count  # noqa: N815 (stdlib names)

            def log_message(self, *args):
                pass

        self.requests = requests
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "CountingProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def page_requests(self) -> list[str]:
        """The requests, less those Chromium makes for itself."""
        return [r for r in self.requests if not BROWSER_OWN_REQUESTS.match(r)]


def open_offline(page: Path, png: Path, proxy: CountingProxy) -> subprocess.CompletedProcess:
    """Load `page` in headless Chromium with every network request going to `proxy`; screenshot it."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run(
            [find_chromium(), *CHROMIUM_OFFLINE_FLAGS, f"--proxy-server={proxy.url}", f"--user-data-dir={profile}",
             f"--screenshot={png}", "--window-size=1280,4000", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120)


@dataclass
class Announced:
    written_html: Path
    report_json: dict
    deliveries: list[Delivery]
    slack_calls: list
    slack_problems: list[str]
    mail_messages: list[EmailMessage]
    notifications: list[tuple[str, str, str]]


def _daemon_config(sim_dir: Path, prometheus_url: str, tmp: Path, slack_base_url: str, smarthost: str) -> Path:
    config = yaml.safe_load((sim_dir / "monitor.yaml").read_text())
    config["prometheus"]["url"] = prometheus_url
    config["state"] = {"path": str(tmp / "state.db")}
    config["slos"] = [str(sim_dir / "slos" / "*.yaml")]
    config["rules"] = [str(sim_dir / "rules" / "*.yaml")]
    for model in config["models"]:
        if model.get("drift", {}).get("log"):
            model["drift"]["log"]["path"] = str(sim_dir / model["drift"]["log"]["path"])
    config["reports"] = {"dir": str(tmp / "reports"), "weekly": "mon 08:00", "announce": ["leadership"]}
    config["http"] = {"listen": f"127.0.0.1:{free_port()}"}
    config["outputs"] = {
        "report_url": REPORT_URL,
        "receivers": [
            {"name": "leadership",
             "slack_configs": [{"channel": "#ml-review", "token_env": "ANNOUNCE_SLACK_TOKEN",
                                "base_url": slack_base_url, "allow_private": True}],
             "email_configs": [{"to": ["ML leads <ml-leads@example.com>"], "from": "monitor@reports.example.com",
                                "smarthost": smarthost, "require_tls": False, "allow_private": True}]},
            {"name": "not-announced",
             "email_configs": [{"to": ["someone@example.com"], "smarthost": smarthost, "require_tls": False,
                                "allow_private": True}]},
        ],
    }
    path = tmp / "monitor.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def announced(sim_dir, prometheus, fleet_end, tmp_path_factory) -> Announced:
    tmp = tmp_path_factory.mktemp("announce")
    with SlackStandIn(token=SLACK_TOKEN) as slack, SmtpServer() as smtp, pytest.MonkeyPatch.context() as patch:
        patch.setenv("ANNOUNCE_SLACK_TOKEN", SLACK_TOKEN)
        config_path = _daemon_config(sim_dir, prometheus.url, tmp, slack.base_url, smtp.smarthost)
        # Monday 08:00 after the simulated week: the job reports on ISO week 2026-W47.
        daemon = Daemon(str(config_path), replay_from=fleet_end + timedelta(hours=8))
        try:
            assert daemon.run_one_cycle().ok  # alerting history, which the report reads back
            daemon.write_weekly_report()
            # The same week written again reads the queued announcement back and is not announced again.
            daemon.write_weekly_report()
            daemon.delivery.route_pending()
            # The assembly builds every receiver integration: the daemon's own worker sends it.
            assert {"leadership/email", "leadership/slack"} <= set(daemon.delivery.worker.destinations)
            daemon.delivery.worker.drain_due()
            deliveries = daemon.delivery.outbox.deliveries()
            notifications = [(r["idempotency_key"], r["kind"], r["status"]) for r in
                             daemon.store.query("SELECT idempotency_key, kind, status FROM notifications")]
        finally:
            daemon.store.close()
    written = tmp / "reports" / "2026-W47"
    return Announced(written / "index.html", json.loads((written / "report.json").read_text()), deliveries,
                     list(slack.calls), list(slack.problems), [m.message for m in smtp.received], notifications)


def test_one_announcement_is_queued_and_delivered_to_the_announced_receiver_only(announced):
    announcements = [n for n in announced.notifications if n[1] == REPORT_PUBLISHED]
    assert announcements == [(f"{REPORT_PUBLISHED}:2026-W47", REPORT_PUBLISHED, "delivered")]
    assert sorted((d.destination, d.status) for d in announced.deliveries) == [
        ("leadership/email", DeliveryStatus.DELIVERED), ("leadership/slack", DeliveryStatus.DELIVERED)]
    assert len(announced.mail_messages) == 1 and len(announced.slack_calls) == 1


def test_slack_gets_the_headline_bullets_and_a_link(announced):
    assert announced.slack_problems == []
    [call] = announced.slack_calls
    assert call.method == "chat.postMessage" and call.answered == 200 and call.args["channel"] == "#ml-review"
    blocks = call.args["blocks"] if isinstance(call.args["blocks"], list) else json.loads(call.args["blocks"])
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text",
                                                    "text": "ML service review: Week 47, 2026 (16–22 Nov)"}}
    sentences = announced.report_json["headline"]["sentences"]
    assert len(sentences) >= 3
    bullets = blocks[1]["text"]["text"].split("\n")
    expected = [s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") for s in sentences]
    assert bullets == [f"• {s}" for s in expected]
    [button] = blocks[2]["elements"]
    assert button["url"] == "https://reports.example/weekly/2026-W47/"


_SVG = re.compile(r"<svg\b.*?</svg>", re.S)
_CHART_IMG = re.compile(r'<img class="chart" src="cid:([^"]+)" alt="([^"]*)"[^>]*>')


def html_and_images(message: EmailMessage) -> tuple[str, dict[str, bytes]]:
    """The HTML part and the images it may reference, by Content-ID (as a mail client resolves cid:)."""
    html_part = message.get_body(("html",))
    related = next(p for p in message.iter_parts() if p.get_content_type() == "multipart/related")
    images = {part["Content-ID"].strip("<>"): part.get_content() for part in related.iter_parts()
              if part.get_content_maintype() == "image"}
    return html_part.get_content().replace("\r\n", "\n"), images  # SMTP's line ends


def test_the_email_is_the_report_itself_plus_a_text_part(announced):
    [message] = announced.mail_messages
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "multipart/related"]
    assert message["Subject"] == "ML service review: Week 47, 2026 (16–22 Nov)"
    assert message["To"] == "ML leads <ml-leads@example.com>"
    assert re.fullmatch(r"<msg_[0-9a-f]{26}@reports\.example\.com>", message["Message-ID"])
    text = message.get_body(("plain",)).get_content()
    for sentence in announced.report_json["headline"]["sentences"]:
        assert f"- {sentence}" in text
    assert "Full report: https://reports.example/weekly/2026-W47/" in text
    html, images = html_and_images(message)
    page = announced.written_html.read_text()
    # Every chart of the page is a PNG part the HTML references by Content-ID, in the page's order.
    svgs = _SVG.findall(page)
    referenced = _CHART_IMG.findall(html)
    assert len(svgs) >= 3 and len(referenced) == len(svgs) and "<svg" not in html
    assert [alt for _, alt in referenced] == [re.search(r'aria-label="([^"]*)"', svg)[1] for svg in svgs]
    assert sorted(images) == sorted(cid for cid, _ in referenced)
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000 for png in images.values())
    # Apart from the charts, the page as written, its relative links made absolute under report_url.
    assert _CHART_IMG.sub("CHART", html) == report_html_for_email(
        _SVG.sub("CHART", page), "https://reports.example/weekly/2026-W47/")
    assert 'href="https://reports.example/weekly/2026-W47/report.json"' in html
    assert 'href="https://reports.example/weekly/index.html"' in html
    # Nothing a mail client would fetch: no http(s) src, no CSS url(), no <link>/<script>; only <a href> links
    # and the cid: images inside the message.
    sources = re.findall(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", html)
    assert len(sources) == len(re.findall(r"<img\b", html)) == len(svgs)
    assert all(source.startswith("cid:") for source in sources)
    fetched = [ref for ref in external_references(html) if not re.search(rf'<a href="{re.escape(ref)}"', html)
               and not ref.startswith("cid:") and ref != "<img>"]
    assert fetched == [] and html5_errors(html) == []


def test_the_email_html_renders_in_chromium_with_its_charts_and_fetches_nothing(announced, tmp_path):
    [message] = announced.mail_messages
    html, images = html_and_images(message)
    # A mail client shows a cid: image from the message's own part; a data: URI is that, for a browser.
    inlined = re.sub(r'src="cid:([^"]+)"',
                     lambda m: f'src="data:image/png;base64,{base64.b64encode(images[m[1]]).decode()}"', html)
    page = tmp_path / "email.html"
    page.write_text(inlined, encoding="utf-8")
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><html><body><img src="http://assets.example.test/logo.png"></body></html>')
    with CountingProxy() as proxy:
        control_run = open_offline(control, tmp_path / "control.png", proxy)
        seen_by_control = proxy.page_requests()
        proxy.requests.clear()
        run = open_offline(page, tmp_path / "email.png", proxy)
    assert control_run.returncode == 0, control_run.stderr[-2000:]
    # The counter sees a page's fetch.
    assert seen_by_control == ["GET http://assets.example.test/logo.png"], seen_by_control
    assert run.returncode == 0, run.stderr[-2000:]
    assert proxy.page_requests() == []
    pixels = imread(tmp_path / "email.png")[..., :3]
    for colour in (CHART_BLUE, CHART_ORANGE):
        close = np.all(np.abs(pixels - colour) < 0.03, axis=-1)
        assert close.sum() > 2_000, f"too few chart-coloured pixels ({close.sum()}): charts not rendered"


# -- rendering, without the fleet ------------------------------------------------------


def test_a_hostile_headline_is_escaped_in_slack():
    event = ReportEvent(REPORT_PUBLISHED, "2026-W47", "Week 47, 2026", ("<!channel> 1 of 2 SLOs met & <b>x</b>",),
                        "2026-11-23T08:00:00Z", url="https://reports.example/weekly/2026-W47/")
    message = report_slack_message(event)
    assert message.blocks[1]["text"]["text"] == "• &lt;!channel&gt; 1 of 2 SLOs met &amp; &lt;b&gt;x&lt;/b&gt;"
    assert "<!channel>" not in message.text


@pytest.mark.parametrize("report_url, link", [
    (None, None), ("https://reports.example/weekly/", "https://reports.example/weekly/2026-W47/"),
    ("https://reports.example/latest.html", "https://reports.example/latest.html")],
    ids=["no report_url: no link", "a directory URL gets the week's directory", "any other URL is used as it is"])
def test_the_report_link(report_url, link):
    assert report_link(report_url, "2026-W47") == link


def test_without_report_url_the_emails_relative_links_are_dropped():
    page = '<p><a href="../index.html">all</a> <a href="#cost">cost</a> <a href="https://x.example/">x</a></p>'
    assert report_html_for_email(page, None) == \
        '<p><a>all</a> <a href="#cost">cost</a> <a href="https://x.example/">x</a></p>'


def test_each_announced_receivers_slack_and_email_integrations_get_one_delivery(tmp_path):
    page = tmp_path / "index.html"
    page.write_text("<!DOCTYPE html><html><body><svg class=\"chart\"></svg></body></html>")
    event = ReportEvent(REPORT_PUBLISHED, "2026-W47", "Week 47, 2026", ("1 of 2 SLOs were met.",),
                        "2026-11-23T08:00:00Z", html_path=str(page), receivers=("default", "leads", "ghost"))
    outputs = OutputsConfig(
        slack=SlackConfig(channel="#alerts", token_env="T"),
        receivers=[ReceiverConfig("leads", slack_configs=[SlackConfig(channel="#leads", token_env="T")],
                                  email_configs=[EmailConfig(to=["a@example.com"]), EmailConfig(to=["b@example.com"])]),
                   ReceiverConfig("quiet", email_configs=[EmailConfig(to=["c@example.com"])])])
    items = report_deliveries(event, outputs, "report.published:2026-W47", 7)
    assert [(i.destination, i.event_type, i.notification_id) for i in items] == [
        ("slack", REPORT_PUBLISHED, 7), ("leads/slack", REPORT_PUBLISHED, 7), ("leads/email", REPORT_PUBLISHED, 7),
        ("leads/email#2", REPORT_PUBLISHED, 7)]
    for item in items:
        assert ReportEvent.from_dict(json.loads(item.body)) == event
        assert (json.loads(item.body).get("html") == page.read_text()) is ("email" in item.destination)


def test_a_queued_announcement_is_queued_once_and_reads_back_with_the_alerting_history(tmp_path):
    # The next report's incident and change sections read every notification: a report.published
    # row among them must decode, not break next week's report.
    store = StateStore(tmp_path / "state.db")
    try:
        event = ReportEvent(REPORT_PUBLISHED, "2026-W47", "Week 47, 2026", ("1 of 2 SLOs were met.",),
                            "2026-11-23T08:00:00Z", html_path=str(tmp_path / "index.html"), receivers=("leads",))
        assert queue_report_announcement(store, event) is True
        assert queue_report_announcement(store, event) is False
        [queued] = AlertRepository(store).notifications()
        assert queued.notification.kind is NotificationKind.REPORT_PUBLISHED and queued.status == "pending"
        assert queued.notification.payload == event
        assert queued.notification.created_at == datetime(2026, 11, 23, 8, tzinfo=timezone.utc)
    finally:
        store.close()
