"""The web UI in a real browser (Debian's Chromium through Playwright) against a live daemon.

One `monitor run` process per module replays the simulated fleet from inside recommender's
error spike (its availability SLO pages), against the session's real Prometheus, with
`http.auth` configured (a bearer token, and 127.0.0.1 as a trusted proxy whose
X-Forwarded-User names the writer), the Slack stand-in as the receiver, and an alert rule
whose labels are hostile (`<script>`, quotes, an `onerror` image, 10 KB). The page alert
repeats every few seconds, so "silencing it stops its next notification" is something the
Slack stand-in can see, or not.

Every page is opened through a context that aborts, and records, any request whose host is
not 127.0.0.1, and that collects console messages, dialogs and page errors. `make
ui-screenshots` runs this module with UI_SCREENSHOT_DIR set to keep a PNG of each page.
"""

from __future__ import annotations

import json
import os
import re
import signal
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import yaml
from playwright.sync_api import expect, sync_playwright

from browser import Watch, accessibility_problems, launch, screenshot_dir
from hostile import HOSTILE_LABEL_RULES, HUGE_VALUE as HUGE, QUOTES_VALUE as QUOTES, SCRIPT_VALUE as SCRIPT
from monitor.alerting.lifecycle import AlertState
from monitor.alerting.repository import AlertRepository
from monitor.cli import main as cli_main
from monitor.simulate.local_prometheus import free_port
from monitor.store import StateStore
from standins.slack_api import SlackStandIn
from test_daemon_process import DaemonProcess, wait_for

pytestmark = pytest.mark.prometheus

INTERVAL_S = 2
REPEAT_S = 6
TOKEN_ENV, TOKEN = "MONITOR_UI_BROWSER_TOKEN", "ui-browser-token-5b0c7e"
SLACK_ENV, SLACK_TOKEN = "MONITOR_UI_BROWSER_SLACK", "xoxb-ui-browser"
BURNING = "recommender-requests-availability"
PAGE_ALERT = "SLOErrorBudgetBurnPage"
ON_CALL = {"X-Forwarded-User": "alice"}


class Scenario:
    def __init__(self, daemon: DaemonProcess, config_path: Path, state_path: Path, slack: SlackStandIn):
        self.daemon, self.config_path, self.state_path, self.slack = daemon, config_path, state_path, slack

    @property
    def url(self) -> str:
        return self.daemon.url

    def silences(self) -> list:
        with StateStore(self.state_path) as store:
            return AlertRepository(store).silences()

    def alerts(self) -> dict:
        with StateStore(self.state_path) as store:
            return {a.alertname + "/" + a.labels.get("service", ""): a for a in AlertRepository(store).alerts().values()}

    def page_posts(self) -> list:
        """Slack calls that told #ml-alerts recommender's page is firing (posts and updates alike)."""
        return [c for c in self.slack.accepted() if PAGE_ALERT in json.dumps(c.args)
                and "recommender" in json.dumps(c.args) and "RESOLVED" not in str(c.args.get("text"))]

    def successful_cycles(self) -> float:
        return self.daemon.metric('monitor_cycles_total{result="success"}')


@pytest.fixture(scope="module")
def scenario(sim_dir, prometheus, fleet_end, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ui-browser")
    saved_env = {name: os.environ.get(name) for name in (TOKEN_ENV, SLACK_ENV)}
    os.environ.update({TOKEN_ENV: TOKEN, SLACK_ENV: SLACK_TOKEN})
    (tmp / "hostile.yaml").write_text(HOSTILE_LABEL_RULES)
    with SlackStandIn(token=SLACK_TOKEN) as slack:
        config = yaml.safe_load((sim_dir / "monitor.yaml").read_text())
        config["prometheus"] = {"url": prometheus.url, "timeout": "10s"}
        config["state"] = {"path": str(tmp / "state.db")}
        config["slos"] = [str(sim_dir / "slos" / "*.yaml")]
        config["rules"] = [str(sim_dir / "rules" / "*.yaml"), str(tmp / "hostile.yaml")]
        for model in config["models"]:
            log = model.get("drift", {}).get("log")
            if log:
                log["path"] = str(sim_dir / log["path"])
        config["schedule"] = {"evaluate_every": f"{INTERVAL_S}s"}
        config["http"] = {"listen": f"127.0.0.1:{free_port()}",
                          "auth": {"bearer_token_env": TOKEN_ENV, "trusted_proxies": ["127.0.0.1"]}}
        config["reports"] = {"dir": str(tmp / "reports")}
        # Repeats every few seconds, so the page's next notification comes (or not) within the test.
        config["alerting"] = {"group_interval": f"{INTERVAL_S}s", "repeat_interval": f"{REPEAT_S}s"}
        config["outputs"] = {
            "retry_schedule": ["0s", "1s"],
            "route": {"receiver": "ops", "routes": [{"matchers": ['alertname="HostileLabels"'],
                                                     "receiver": "nowhere"}]},
            "receivers": [{"name": "ops", "slack_configs": [{"channel": "#ml-alerts", "token_env": SLACK_ENV,
                                                             "base_url": slack.base_url, "allow_private": True}]},
                          {"name": "nowhere"}],
        }
        config_path = tmp / "monitor.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        # Inside recommender's error spike (end-20h .. end-19h20m): its SLO pages from the first cycle.
        replay_from = (fleet_end - timedelta(hours=19, minutes=40)).isoformat()
        daemon = DaemonProcess(config_path, replay_from, tmp / "daemon.log", config["http"]["listen"]).start()
        try:
            found = Scenario(daemon, config_path, tmp / "state.db", slack)
            wait_for(lambda: found.successful_cycles() >= 1, 180, "a successful cycle")
            wait_for(lambda: len(found.page_posts()) >= 2, 120, "recommender's page notified, then repeated")
            yield found
        finally:
            if daemon.process is not None:
                daemon.stop(signal.SIGKILL)
            for name, value in saved_env.items():
                os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def watch() -> Watch:
    """Everything every context of the module requested and logged (checked at the end)."""
    return Watch()


@pytest.fixture
def on_call(browser, watch):
    """A browser behind the trusted proxy: every request carries X-Forwarded-User: alice."""
    context = browser.new_context(extra_http_headers=ON_CALL)
    watch.attach(context)
    yield context.new_page()
    context.close()


@pytest.fixture
def anonymous(browser, watch):
    """A browser that reached the UI directly: no user header, no token."""
    context = browser.new_context()
    watch.attach(context)
    yield context.new_page()
    context.close()


def silence_section(page):
    return page.locator("section.alert").filter(has=page.locator("h2", has_text=PAGE_ALERT)).filter(
        has_text="recommender")


def test_the_fast_burning_slo_is_at_the_top_of_slos_and_shows_the_page_state(scenario, on_call):
    # Which SLO pages, from the daemon's own /metrics (the signals, not the UI's view of them).
    paging = {re.search(r'sloth_id="([^"]*)"', key).group(1) for key, value in scenario.daemon.metrics().items()
              if key.startswith("monitor_slo_page_alert{") and value == 1}
    assert paging == {BURNING}
    on_call.goto(f"{scenario.url}/slos")
    first = on_call.locator("#slo-table tbody tr").first
    expect(first.locator("td").first).to_have_text(BURNING)
    status = first.locator("td").last
    expect(status).to_have_text("page")
    assert "status-page" in status.locator("span").get_attribute("class")
    # The order is the server's: the same first row in the JSON twin.
    api = requests.get(f"{scenario.url}/api/v1/slos", timeout=10).json()
    assert api["slos"][0]["slo_id"] == BURNING and api["slos"][0]["page"]


def test_silencing_the_page_from_alerts_stops_its_next_notification(scenario, on_call, capsys):
    on_call.goto(f"{scenario.url}/alerts")
    section = silence_section(on_call)
    expect(section).to_have_count(1)
    matchers = section.locator("textarea[name=matchers]").input_value()
    assert f'alertname="{PAGE_ALERT}"' in matchers and 'service="recommender"' in matchers
    section.get_by_label("Duration").fill("1h")
    section.get_by_label("Comment").fill("rolling back recommender")
    section.get_by_label("Author").fill("alice")
    with on_call.expect_navigation():
        section.get_by_role("button", name="Silence").click()
    assert on_call.url == f"{scenario.url}/silences"

    [silence] = scenario.silences()
    assert silence.created_by == "alice" and silence.comment == "rolling back recommender"
    row = on_call.locator(f"#silence-{silence.id}")
    expect(row).to_contain_text("active")
    expect(row).to_contain_text('service="recommender"')
    # Judged at the replayed time the silence was made at (the wall clock is weeks later).
    code = cli_main(["silence", "list", "--json", "--config", str(scenario.config_path),
                     "--at", silence.starts_at.isoformat()])
    listed = json.loads(capsys.readouterr().out)
    assert code == 0 and [s["id"] for s in listed] == [silence.id] and listed[0]["createdBy"] == "alice"
    assert listed[0]["status"] == "active"

    # Once a cycle evaluated after the silence has run, the page is muted: no post for it in
    # several repeat intervals, where before it was posted every REPEAT_S seconds.
    cycles = scenario.successful_cycles()
    wait_for(lambda: scenario.successful_cycles() >= cycles + 2, 60, "two cycles after the silence")
    wait_for(lambda: scenario.alerts()[f"{PAGE_ALERT}/recommender"].silenced_by == (silence.id,), 30,
             "the page alert to be marked silenced")
    page_alert = scenario.alerts()[f"{PAGE_ALERT}/recommender"]
    assert page_alert.state is AlertState.FIRING  # silenced, not resolved: the SLO still burns
    posts = len(scenario.page_posts())
    cycles = scenario.successful_cycles()
    wait_for(lambda: scenario.successful_cycles() >= cycles + 3 * REPEAT_S / INTERVAL_S, 120,
             "three repeat intervals of cycles")
    assert len(scenario.page_posts()) == posts, "the silenced page was notified again"
    on_call.goto(f"{scenario.url}/alerts")
    expect(silence_section(on_call).locator("h2")).to_contain_text("firing")
    expect(on_call.locator("#alert-table")).to_contain_text("silenced")


def test_a_write_without_auth_or_csrf_token_is_refused_and_writes_nothing(scenario, anonymous, on_call):
    before = scenario.silences()
    # Anonymous: the form is there (reads are open), the write is not.
    anonymous.goto(f"{scenario.url}/alerts")
    section = silence_section(anonymous)
    section.get_by_label("Comment").fill("not allowed")
    with anonymous.expect_response(lambda r: r.request.method == "POST") as answer:
        section.get_by_role("button", name="Silence").click()
    assert answer.value.status == 401
    expect(anonymous.get_by_role("alert")).to_contain_text("authentication required")

    # Authenticated, but the form's CSRF token is gone (a forged post has none).
    on_call.goto(f"{scenario.url}/alerts")
    section = silence_section(on_call)
    section.locator("input[name=csrf_token]").evaluate("field => field.remove()")
    section.get_by_label("Comment").fill("forged")
    with on_call.expect_response(lambda r: r.request.method == "POST") as answer:
        section.get_by_role("button", name="Silence").click()
    assert answer.value.status == 403
    expect(on_call.get_by_role("alert")).to_contain_text("CSRF")
    # A token rendered for someone else does not carry over either.
    forged = on_call.request.post(f"{scenario.url}/silences", form={
        "matchers": 'service="recommender"', "duration": "1h", "comment": "forged", "csrf_token": "0.0"})
    assert forged.status == 403
    assert scenario.silences() == before


def test_hostile_labels_render_as_text_and_no_script_runs(scenario, on_call, watch):
    # A silence whose matcher, comment and author are hostile, made through the token API.
    made = on_call.request.post(f"{scenario.url}/api/v1/silences", headers={"Authorization": f"Bearer {TOKEN}"},
                                data={"matchers": [f'script="{SCRIPT}"'], "duration": "1h",
                                      "comment": SCRIPT + QUOTES, "created_by": QUOTES})
    assert made.status == 201, made.text()
    for path in ("/alerts", "/silences"):
        on_call.goto(f"{scenario.url}{path}")
        on_call.wait_for_load_state("load")
        expect(on_call.get_by_text(SCRIPT).first).to_be_visible()
        expect(on_call.get_by_text("onerror=alert(1)").first).to_be_visible()
        assert on_call.locator("main script, main img").count() == 0
    on_call.goto(f"{scenario.url}/alerts")
    hostile = on_call.locator("section.alert").filter(has=on_call.locator("h2", has_text="HostileLabels"))
    expect(hostile.locator("td", has_text=HUGE)).to_have_count(1)
    assert not [line for line in watch.console if "pwned" in line], watch.console
    assert watch.dialogs == [] and watch.page_errors == []


PAGES = ("/", "/slos", f"/slos/{BURNING}", "/alerts", "/silences", "/models/recommender", "/reports")


def test_every_page_has_labelled_fields_headed_tables_and_status_words(scenario, on_call, tmp_path):
    shots = screenshot_dir(tmp_path)
    for path in PAGES:
        response = on_call.goto(f"{scenario.url}{path}")
        assert response.status == 200, path
        assert accessibility_problems(on_call) == [], path
        name = path.strip("/").replace("/", "-") or "overview"
        on_call.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        assert (shots / f"{name}.png").stat().st_size > 5_000


def test_no_request_left_loopback_and_no_page_logged_an_error(watch):
    assert watch.urls, "no request was recorded"
    assert watch.off_loopback() == [] and watch.blocked == []
    assert watch.page_errors == []
    assert not [line for line in watch.console if line.startswith("error") and "401" not in line
                and "403" not in line], watch.console
