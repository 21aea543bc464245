"""The web UI's read pages over real cycles of the simulated fleet, through the daemon's HTTP server.

Two cycles of the fleet's history run against the real Prometheus (recommender's error
spike makes its SLO page fire at -20h+20m, as in tests/test_pipeline_scenarios.py),
with a rule whose alert carries hostile labels. The UI is then served by the daemon's
own `HealthServer` on 127.0.0.1:0 and read with `requests`. The numbers on the pages
are checked against the cycle's own signals (`CycleReport.signals`) and the raw fleet,
never against the UI's view code.
"""

from __future__ import annotations

import http.client
import json
import math
import re
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlparse

import html5lib
import pytest
import requests
import yaml
from prometheus_client import CollectorRegistry

from hostile import HOSTILE_LABEL_RULES, HUGE_VALUE as HUGE, QUOTES_VALUE as QUOTES, SCRIPT_VALUE as SCRIPT
from monitor.config import Config, load_config
from monitor.http_endpoints import HealthServer
from monitor.pipeline import run_cycle, save_ui_snapshot
from monitor.signals import Signal
from monitor.sources.prometheus import PrometheusSource
from monitor.store import StateStore
from monitor.ui import snapshot
from monitor.ui.app import UiContext, make_ui_app
from test_report_checks import html5_errors

pytestmark = pytest.mark.prometheus

REPO = Path(__file__).resolve().parent.parent
BURNING = "recommender-requests-availability"
# One SLO per service through a group label made by label_replace, its values wrapped in markup;
# a loose objective, so none of its groups pages (recommender's own SLO stays the only one).
GROUPED = "fleet-availability"
GROUPED_SLOS = """\
version: prometheus/v1
service: fleet
slos:
  - name: availability
    objective: 95
    group_by: [svc]
    sli:
      events:
        error_query: sum by (svc) (label_replace(rate(http_requests_total{code=~"5.."}[{{.window}}]), "svc", "<b>$1</b>", "service", "(.*)"))
        total_query: sum by (svc) (label_replace(rate(http_requests_total[{{.window}}]), "svc", "<b>$1</b>", "service", "(.*)"))
"""
NS = "{http://www.w3.org/1999/xhtml}"
URL_ATTRIBUTES = ("href", "src", "action", "formaction", "srcset", "poster", "data", "cite", "ping", "background")


class Served:
    def __init__(self, base: str, report, config, store: StateStore, state_path: Path):
        self.base, self.report, self.config, self.store, self.state_path = base, report, config, store, state_path

    def get(self, path: str, status: int = 200, method: str = "GET") -> requests.Response:
        response = requests.request(method, self.base + path, timeout=10)
        assert response.status_code == status, (path, response.status_code, response.text[:500])
        return response

    def page(self, path: str):
        """GET an HTML page, check what every page must carry, and return its parsed tree."""
        response = self.get(path)
        assert response.headers["Content-Type"].startswith("text/html")
        check_security_headers(response)
        assert html5_errors(response.text) == [], path
        document = html5lib.parse(response.text)
        check_no_external_urls(document, response.text)
        check_accessible(document)
        return document


def check_security_headers(response: requests.Response) -> None:
    policy = response.headers["Content-Security-Policy"]
    directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'", "inline script is never allowed"
    assert "unsafe-inline" not in policy and "http" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def check_no_external_urls(document, text: str) -> None:
    """Nothing the page loads, links to or posts to leaves this server: no attribute holds a URL with a
    scheme or a host, and nothing in the head names one. (Text may quote one: a runbook URL in the
    generated rules is shown, not fetched.)"""
    for element in document.iter():
        for name, value in element.attrib.items():
            if name in URL_ATTRIBUTES:
                parsed = urlparse(value.strip())
                assert not parsed.scheme and not parsed.netloc, (element.tag, name, value)
            assert not re.search(r"(?i)https?:|^\s*//", value), (element.tag, name, value)
    head = text.split("<body", 1)[0]
    assert not re.search(r"(?i)https?://|//[a-z0-9-]+\.", head), "no external URL in the head"


def check_accessible(document) -> None:
    """Every form field has a label; every table has header cells."""
    labelled = {label.get("for") for label in document.iter(f"{NS}label")}
    for tag in ("input", "textarea", "select"):
        for field in document.iter(f"{NS}{tag}"):
            if field.get("type") in ("hidden", "submit"):
                continue
            assert field.get("id") in labelled, f"{tag} {field.get('name')} has no <label for>"
    for table in document.iter(f"{NS}table"):
        assert list(table.iter(f"{NS}th")), "a table without <th> headers"


def text_of(element) -> str:
    return " ".join("".join(element.itertext()).split())


def table_rows(document, table_id: str) -> list[list[str]]:
    table = next(t for t in document.iter(f"{NS}table") if t.get("id") == table_id)
    body = table.find(f"{NS}tbody")
    return [[text_of(cell) for cell in row.findall(f"{NS}td")] for row in body.findall(f"{NS}tr")]


def headers(document, table_id: str) -> list[str]:
    table = next(t for t in document.iter(f"{NS}table") if t.get("id") == table_id)
    return [text_of(th) for th in table.iter(f"{NS}th")]


@pytest.fixture(scope="module")
def served(sim_dir, prometheus, fleet_end, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ui")
    # As the `fleet_config_path` fixture does (that one is per test): the fleet's config, this Prometheus.
    doc = yaml.safe_load((sim_dir / "monitor.yaml").read_text())
    doc["prometheus"]["url"] = prometheus.url
    (tmp / "hostile.yaml").write_text(HOSTILE_LABEL_RULES)
    (tmp / "grouped-slos.yaml").write_text(GROUPED_SLOS)
    doc["slos"] = [str(sim_dir / pattern) for pattern in doc["slos"]] + [str(tmp / "grouped-slos.yaml")]
    doc["rules"] = [str(REPO / "monitor" / "default_rules" / "*.yaml"), str(tmp / "hostile.yaml")]
    doc["state"] = {"path": str(tmp / "state.db")}
    doc["reports"] = {"dir": str(tmp / "reports")}
    path = sim_dir / "scenario-ui-pages.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    config = load_config(path)
    # An archive with one report, and a secret beside it that must stay unreachable.
    week = tmp / "reports" / "2026-W47"
    week.mkdir(parents=True)
    (week / "index.html").write_text("<!DOCTYPE html><title>week 47</title><p>the report</p>")
    (week / "report.json").write_text(json.dumps({"period": {"label": "Week 47, 2026", "start": "2026-11-16"},
                                                  "headline": {"slos_met": 3, "cost_per_1k": 0.5}}))
    (tmp / "secret.txt").write_text("not for the web")
    at = fleet_end + timedelta(hours=-20 + 1 / 3)
    store = StateStore(tmp / "state.db")
    with PrometheusSource.from_config(config.prometheus) as source:
        run_cycle(config, store, source, at - timedelta(minutes=30))
        report = run_cycle(config, store, source, at)
    assert report.ok, report.error
    save_ui_snapshot(store, report)  # as the daemon does after each cycle
    app = make_ui_app(UiContext(store=store, config=lambda: config, clock=lambda: at))
    server = HealthServer("127.0.0.1:0", CollectorRegistry(), lambda: (True, "ok"), app=app).start()
    try:
        yield Served(f"http://{server.address}", report, config, store, tmp / "state.db")
    finally:
        server.stop()
        store.close()


def signal_value(report, name: str, **labels: str) -> float | None:
    [found] = [s for s in report.signals if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
               and ("window" in labels or "window" not in s.labels)]
    return found.value


def slo_signal(report, name: str, **labels: str):
    [found] = [s for s in report.signals if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    return found


def row_ids(row: dict) -> dict:
    """The labels naming a /slos row's SLO instance: its id, and its group's labels (`svc="<b>ranker</b>"`)."""
    return {"slo_id": row["SLO"], **dict(re.findall(r'(\w+)="([^"]*)"', row["Group"]))}


def percent(value: float, digits: int) -> str:
    return f"{value * 100:.{digits}f}%"


# -- /slos ----------------------------------------------------------------------------------

def test_the_fast_burning_slo_is_the_first_row_of_slos_and_shows_the_page_state(served, fleet, fleet_end):
    document = served.page("/slos")
    rows = table_rows(document, "slo-table")
    columns = headers(document, "slo-table")
    first = dict(zip(columns, rows[0]))
    assert first["SLO"] == BURNING
    assert first["Status"] == "page"
    # The cycle itself says this SLO's page condition holds, and no other's.
    paging = [s.labels["slo_id"] for s in served.report.signals if s.name == "slo_page" and s.value == 1.0]
    assert paging == [BURNING]
    # Every SLO of the cycle has a row.
    ids = {s.labels["slo_id"] for s in served.report.signals if s.name == "slo_page"}
    assert {dict(zip(columns, r))["SLO"] for r in rows} == ids


def test_the_slo_rows_show_the_cycles_numbers(served):
    document = served.page("/slos")
    columns = headers(document, "slo-table")
    rows = [dict(zip(columns, r)) for r in table_rows(document, "slo-table")]
    report = served.report
    assert len(rows) == sum(s.name == "slo_page" for s in report.signals)
    for row in rows:
        ids = row_ids(row)
        budget = slo_signal(report, "slo_error_budget_remaining", **ids)
        assert row["Objective"] == percent(budget.evidence["objective"], 3)
        expected_budget = "no data" if budget.value is None else percent(budget.value, 1)
        assert row["Budget left"] == expected_budget
        total, bad = budget.evidence["events_total"], budget.evidence["events_bad"]
        expected_attainment = "no data" if not total else percent((total - bad) / total, 3)
        assert row["Attainment"] == expected_attainment
        page, ticket = (slo_signal(report, name, **ids).value for name in ("slo_page", "slo_ticket"))
        expected_status = ("page" if page == 1 else "ticket" if ticket == 1
                           else "exhausted" if budget.value is not None and budget.value <= 0
                           else "no data" if page is None and ticket is None else "ok")
        assert row["Status"] == expected_status, ids
        for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d"):
            burn = slo_signal(report, "slo_burn_rate", window=window, **ids).value
            assert row[f"Burn {window}"] == ("no data" if burn is None else f"{burn:.2f}×"), (ids, window)


def test_the_page_burn_rate_on_slos_matches_the_raw_fleet(served, fleet, fleet_end):
    """Independently of the cycle: the 1h burn rate of the burning SLO from the simulated counters."""
    document = served.page("/slos")
    columns = headers(document, "slo-table")
    row = dict(zip(columns, table_rows(document, "slo-table")[0]))
    at = served.report.evaluated_at
    objective = slo_signal(served.report, "slo_error_budget_remaining", slo_id=BURNING).evidence["objective"]
    ratio = _fleet_error_ratio(fleet, "recommender", at, timedelta(hours=1))
    shown = float(row["Burn 1h"].rstrip("×"))
    assert math.isclose(shown, ratio / (1 - objective), rel_tol=0.02), (shown, ratio / (1 - objective))


def _fleet_error_ratio(fleet, service: str, at, window: timedelta) -> float:
    """bad (code 500) / all requests of `service` over `window` before `at`, from the raw simulated counters."""
    def increase(series) -> float:
        return fleet.value_at(series, at) - fleet.value_at(series, at - window)
    bad = sum(increase(s) for s in fleet.find("http_requests_total", service=service, code="500"))
    total = sum(increase(s) for s in fleet.find("http_requests_total", service=service))
    return bad / total


def test_slos_filter_by_service_and_query_and_sort_server_side(served):
    document = served.page("/slos?service=recommender")
    columns = headers(document, "slo-table")
    rows = [dict(zip(columns, r)) for r in table_rows(document, "slo-table")]
    assert rows and {r["Service"] for r in rows} == {"recommender"}
    # A search matches ids and label values: fraud-detector's SLO, and the fleet SLO's fraud-detector group.
    document = served.page("/slos?q=fraud")
    rows = [dict(zip(columns, r)) for r in table_rows(document, "slo-table")]
    assert sorted((r["SLO"], r["Group"]) for r in rows) == [
        (GROUPED, 'svc="<b>fraud-detector</b>"'), ("fraud-detector-requests-availability", "")]
    document = served.page("/slos?q=" + requests.utils.quote('svc=<b>ranker'))
    rows = [dict(zip(columns, r)) for r in table_rows(document, "slo-table")]
    assert [(r["SLO"], r["Group"]) for r in rows] == [(GROUPED, 'svc="<b>ranker</b>"')]
    document = served.page("/slos?sort=budget")
    budgets = [slo_signal(served.report, "slo_error_budget_remaining", **row_ids(dict(zip(columns, r)))).value
               for r in table_rows(document, "slo-table")]
    present = [b for b in budgets if b is not None]
    assert present == sorted(present) and budgets[:len(present)] == present


def test_a_grouped_slo_has_a_row_per_group_with_its_label_shown_as_text(served):
    document = served.page(f"/slos?q={GROUPED}")
    columns = headers(document, "slo-table")
    rows = [dict(zip(columns, r)) for r in table_rows(document, "slo-table")]
    groups = {s.labels["svc"] for s in served.report.signals if s.name == "slo_page" and s.labels["slo_id"] == GROUPED}
    assert len(groups) == 6 and all(g.startswith("<b>") for g in groups)
    assert sorted(r["Group"] for r in rows) == sorted(f'svc="{g}"' for g in groups)
    table = next(t for t in document.iter(f"{NS}table") if t.get("id") == "slo-table")
    assert not list(table.iter(f"{NS}b")), "a group label value is text, not markup"
    for row in rows:
        group = row["Group"].removeprefix('svc="').removesuffix('"')
        budget = slo_signal(served.report, "slo_error_budget_remaining", slo_id=GROUPED, svc=group).value
        assert row["Budget left"] == ("no data" if budget is None else percent(budget, 1))


# -- /slos/<id> -----------------------------------------------------------------------------

def test_the_slo_page_shows_its_windows_against_thresholds_history_promql_and_charts(served):
    document = served.page(f"/slos/{BURNING}")
    text = text_of(document)
    assert "holds: page" in text
    # Its alert fired in this cycle: the history shows the transition to firing.
    assert "SLOErrorBudgetBurnPage" in text and "firing" in text
    # The generated PromQL of the spec.
    assert "sum(" in text and "recommender" in text and "monitor-slo-alerts" in text
    images = [img.get("src") for img in document.iter(f"{NS}img")]
    assert len(images) == 2
    for src in images:
        response = served.get(src)
        assert response.headers["Content-Type"].startswith("image/svg+xml")
        assert response.text.lstrip().startswith("<svg") and "script" not in response.text.lower()
    api = served.get(f"/api/v1/slos/{BURNING}").json()
    [instance] = api["instances"]
    page = [c for c in instance["conditions"] if c["severity"] == "page" and c["long"] == "1h"][0]
    assert page["long_burn_rate"] == slo_signal(served.report, "slo_burn_rate", slo_id=BURNING, window="1h").value
    assert page["holds"] is True and page["threshold"] == pytest.approx(14.4)
    assert instance["history_hours"] > 24


def test_a_grouped_slos_page_draws_each_groups_history_from_the_store(served):
    document = served.page(f"/slos/{GROUPED}")
    images = [img.get("src") for img in document.iter(f"{NS}img")]
    assert len(images) == 12, "a burn-rate and a budget chart for each of the six groups"
    for src in images[:2]:
        assert served.get(src).text.lstrip().startswith("<svg")
    api = served.get(f"/api/v1/slos/{GROUPED}").json()
    assert len(api["instances"]) == 6 and all(i["history_hours"] > 24 for i in api["instances"])


def test_an_unknown_slo_is_not_found(served):
    served.get("/slos/no-such-slo", status=404)
    served.get("/api/v1/slos/no-such-slo", status=404)


# -- /alerts, hostile labels ------------------------------------------------------------------

def test_alerts_list_the_firing_page_with_its_notification_and_a_prefilled_silence_form(served):
    document = served.page("/alerts")
    forms = [f for f in document.iter(f"{NS}form") if f.get("action") == "/silences"]
    firing = [a for a in served.report.alerts.values() if a.state.value in ("firing", "pending", "no_data")]
    assert len(forms) == len(firing) > 0
    page = next(a for a in firing if a.alertname == "SLOErrorBudgetBurnPage")
    section = next(s for s in document.iter(f"{NS}section") if s.get("id") == f"alert-{page.fingerprint}")
    form = section.find(f".//{NS}form")
    assert form.get("method") == "post"
    fields = {f.get("name"): f for tag in ("input", "textarea") for f in form.iter(f"{NS}{tag}")}
    assert set(fields) == {"csrf_token", "matchers", "duration", "comment", "author"}
    assert fields["csrf_token"].get("type") == "hidden"
    assert fields["duration"].get("value") == "2h"
    matchers = fields["matchers"].text.splitlines()
    assert matchers[0] == 'alertname="SLOErrorBudgetBurnPage"'
    assert 'slo_id="recommender-requests-availability"' in matchers and 'severity="page"' in matchers
    # The cycle queued a firing notification for it: it is listed.
    queued = [q for q in served.report.notifications
              if any(a.fingerprint == page.fingerprint for a in getattr(q.notification.payload, "alerts", ()))]
    assert queued
    assert "firing" in text_of(section)
    api = {a["fingerprint"]: a for a in served.get("/api/v1/alerts").json()["alerts"]}
    assert len(api[page.fingerprint]["notifications"]) == len(queued)


def test_hostile_label_values_render_as_text(served):
    response = served.get("/alerts")
    document = html5lib.parse(response.text)
    scripts = list(document.iter(f"{NS}script"))
    # The one script the page has is the UI's own, by URL.
    assert [s.get("src") for s in scripts] == ["/ui.js"] and all(not (s.text or "").strip() for s in scripts)
    for element in document.iter():
        assert not any(name.startswith("on") for name in element.attrib), (element.tag, element.attrib)
        assert element.tag != f"{NS}img"
    text = text_of(document)
    assert SCRIPT in text and QUOTES in text and HUGE in text
    # In the silence form too, exactly as the matcher syntax quotes them.
    textareas = [t.text for t in document.iter(f"{NS}textarea") if "HostileLabels" in (t.text or "")]
    assert textareas and f'script="{SCRIPT}"' in textareas[0].splitlines()
    assert f'huge="{HUGE}"' in textareas[0].splitlines()
    # And in the JSON twin, byte for byte.
    hostile = [a for a in served.get("/api/v1/alerts").json()["alerts"] if a["alertname"] == "HostileLabels"]
    assert hostile and hostile[0]["labels"]["quotes"] == QUOTES


# -- /, /models/<name> ------------------------------------------------------------------------

def test_the_overview_counts_what_fires_and_what_is_at_risk(served):
    document = served.page("/")
    alerts = served.report.alerts.values()
    firing = [a for a in alerts if a.state.value == "firing" and not a.silenced_by and not a.inhibited]
    by_id = {e.get("id"): text_of(e) for e in document.iter() if e.get("id")}
    assert by_id["firing-pages"] == str(sum(a.labels.get("severity") == "page" for a in firing))
    assert by_id["firing-tickets"] == str(sum(a.labels.get("severity") == "ticket" for a in firing))
    assert int(by_id["firing-pages"]) >= 1
    drifting = {s.labels["model"] for s in served.report.signals if s.name == "drift_detected" and s.value == 1.0}
    assert by_id["models-drifting"] == str(len(drifting))
    costs = [s for s in served.report.signals if s.name == "cost_usd" and not s.labels.get("version")]
    spent = sum(s.value for s in costs if s.value is not None and s.evidence.get("inferences"))
    inferences = sum(s.evidence["inferences"] for s in costs if s.value is not None and s.evidence.get("inferences"))
    assert by_id["cost-per-1k"] == f"${spent / inferences * 1000:,.4f}"
    api = served.get("/api/v1/overview").json()
    assert api["cycle"]["cycle_id"] == served.report.cycle_id
    assert BURNING in {r["slo_id"] for r in api["slos_at_risk"]}


def test_a_model_page_shows_cost_utilisation_and_drift_from_the_cycle(served):
    report = served.report
    models = sorted({s.labels["model"] for s in report.signals if s.name == "cost_per_1k"})
    assert models
    served_versions = 0
    for name in models:
        document = served.page(f"/models/{name}")
        columns = headers(document, "cost-table")
        costs = {r[0]: dict(zip(columns, r)) for r in table_rows(document, "cost-table")}
        versions = {s.labels["version"] or "all" for s in report.signals
                    if s.name == "cost_per_1k" and s.labels["model"] == name}
        assert set(costs) == versions
        for version, row in costs.items():
            labels = {"model": name, "version": "" if version == "all" else version}
            per_1k = signal_value(report, "cost_per_1k", **labels)
            assert row["Per 1k, this week"] == ("no data" if per_1k is None else f"${per_1k:,.4f}")
            spent = signal_value(report, "cost_usd", **labels)
            assert row["Cost"] == ("no data" if spent is None else f"${spent:,.2f}")
        shown = next(e for e in document.iter() if e.get("id") == "gpu-utilization")
        utilisation = [s.value for s in report.signals if s.name == "gpu_utilization" and s.labels["model"] == name]
        assert text_of(shown) == (f"{utilisation[0] * 100:.1f}%" if utilisation and utilisation[0] is not None
                                  else "no data")
        api = served.get(f"/api/v1/models/{name}").json()
        serving = {s.labels["version"] for s in report.signals if s.name == "model_inference_rate"
                   and s.labels["model"] == name and s.labels["version"] and (s.value or 0) > 0}
        assert {v["version"] for v in api["versions"] if v["serving"]} == serving
        served_versions += len(serving)
        total = next(c for c in api["costs"] if c["version"] is None)
        assert total["cost_per_1k"] == signal_value(report, "cost_per_1k", model=name, version="")
        assert api["gpu_utilization"] == (utilisation[0] if utilisation else None)
        drifted = {(s.labels["version"], s.labels["column"]): s.value == 1.0
                   for s in report.signals if s.name == "drift_detected" and s.labels["model"] == name}
        assert {(d["version"], d["column"]): d["drifted"] for d in api["drift"]} == drifted
    assert served_versions > 0
    served.get("/models/no-such-model", status=404)


# -- /reports -------------------------------------------------------------------------------

def test_reports_lists_the_archive_and_serves_its_files(served):
    document = served.page("/reports")
    links = [a.get("href") for a in document.iter(f"{NS}a")]
    assert "/reports/2026-W47/index.html" in links
    page = served.get("/reports/2026-W47/index.html")
    assert "the report" in page.text and page.headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src" not in page.headers["Content-Security-Policy"]


@pytest.mark.parametrize("path", ["/reports/../secret.txt", "/reports/%2e%2e/secret.txt",
                                  "/reports/..%2fsecret.txt", "/reports/2026-W47/../../secret.txt",
                                  "/reports//etc/passwd", "/reports/%2fetc%2fpasswd"],
                         ids=["dot dot", "encoded dot dot", "encoded slash", "dot dot from a week",
                              "absolute path", "encoded absolute path"])
def test_a_path_outside_the_reports_directory_is_not_served(served, path):
    """Sent byte for byte (requests would normalise the dots away)."""
    host, port = served.base.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read().decode(errors="replace")
    connection.close()
    assert "not for the web" not in body and "root:" not in body
    assert response.status in (404, 308, 301), response.status


# -- the snapshot -----------------------------------------------------------------------------

def test_the_snapshot_holds_the_cycles_signals_and_a_standby_decodes_it_once(served):
    loaded = snapshot.CACHE.load(served.store)
    assert loaded.cycle_id == served.report.cycle_id
    # Another process's store on the same file (a standby replica): it decodes the saved blob, once.
    with StateStore(served.state_path) as standby:
        decoded = snapshot.CACHE.load(standby)
        assert decoded is not loaded and decoded.cycle_id == served.report.cycle_id
        assert len(decoded.signals) == len(served.report.signals)
        for saved, signal in zip(decoded.signals, served.report.signals):
            assert saved.name == signal.name and dict(saved.labels) == dict(signal.labels)
            assert saved.value == (signal.value if signal.value is None or math.isfinite(signal.value) else None)
        assert snapshot.CACHE.load(standby) is decoded


def test_pages_before_the_first_cycle_say_there_are_no_figures_yet(tmp_path, fleet_config_path):
    config = load_config(fleet_config_path)
    with StateStore(tmp_path / "empty.db") as store:
        app = make_ui_app(UiContext(store=store, config=lambda: config))
        server = HealthServer("127.0.0.1:0", CollectorRegistry(), lambda: (True, "ok"), app=app).start()
        try:
            base = f"http://{server.address}"
            for path in ("/", "/slos", "/alerts"):
                response = requests.get(base + path, timeout=10)
                assert response.status_code == 200
                assert "no cycle has succeeded yet" in response.text
            assert requests.get(base + "/api/v1/overview", timeout=10).json()["cycle"]["cycle_id"] is None
        finally:
            server.stop()


def test_errors_and_static_files_carry_the_security_headers_and_nothing_external(served):
    missing = served.get("/models/<script>", status=404)
    check_security_headers(missing)
    assert "<script>" not in missing.text
    # A path no route matches at all, and a method no route takes: the router's own answers.
    check_security_headers(served.get("/no/such/page", status=404))
    check_security_headers(served.get("/slos", status=405, method="DELETE"))
    for path, kind in (("/ui.css", "text/css"), ("/ui.js", "text/javascript")):
        response = served.get(path)
        assert response.headers["Content-Type"].startswith(kind)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        code = re.sub(r"/\*.*?\*/|^\s*//.*$", "", response.text, flags=re.S | re.M)  # comments may say anything
        assert not re.search(r"(?i)@import|url\(|https?:|//[a-z0-9-]+\.", code), path


# -- the snapshot's encoding, on its own -------------------------------------------------------

def _signals_for_round_trip() -> list[Signal]:
    return [
        Signal("slo_burn_rate", {"slo_id": "a-b", "window": "5m"}, 14.4, {"error_ratio": 0.0144, "events_total": None}),
        Signal("slo_page", {"slo_id": "a-b"}, None),
        Signal("cost_per_1k", {"model": SCRIPT, "version": QUOTES}, float("nan"), {"inferences": float("inf")}),
        Signal("slo_burn_rate", {"slo_id": "c-d", "window": "1h"}, 0.0, {"error_ratio": -0.0, "events_total": 1e300}),
        Signal("fleet_gpu_hours", {}, 12.5),
        Signal("slo_page", {"slo_id": "c-d" + HUGE}, 1.0),
        Signal("definition_error", {"kind": "slo", "name": "x", "error": "bad_data: parse error \u2603\n"}, 1.0),
    ]


def test_a_snapshot_reads_back_every_signal_in_order_with_no_data_for_nan_and_infinities():
    signals = _signals_for_round_trip()
    at = datetime(2026, 11, 22, 4, 20, tzinfo=timezone.utc)
    back = snapshot.decode(snapshot.encode(snapshot.CycleSnapshot(7, at, at - timedelta(seconds=3), at, tuple(signals))))
    assert (back.cycle_id, back.evaluated_at, back.duration_s) == (7, at, 3.0)
    assert [(s.name, dict(s.labels)) for s in back.signals] == [(s.name, dict(s.labels)) for s in signals]

    def finite(value):
        return value if value is not None and math.isfinite(value) else None
    assert [s.value for s in back.signals] == [finite(s.value) for s in signals]
    assert [dict(s.evidence) for s in back.signals] == [{k: finite(v) for k, v in s.evidence.items()}
                                                         for s in signals]


@pytest.mark.parametrize("blob", [b"", b"not a snapshot", b"monitor-ui-snapshot 2 5\n" + b"\x00" * 40,
                                  b"monitor-ui-snapshot 99 5\n", b"monitor-ui-snapshot 2 x\n"],
                         ids=["empty", "foreign bytes", "damaged body", "a newer format", "a cycle id that is no number"])
def test_a_snapshot_that_cannot_be_read_is_reported_on_the_pages_not_a_crash(tmp_path, blob):
    config = Config()
    with StateStore(tmp_path / "state.db") as store:
        store.put_blob(snapshot.NAMESPACE, snapshot.KEY, blob, 0.0)
        app = make_ui_app(UiContext(store=store, config=lambda: config))
        server = HealthServer("127.0.0.1:0", CollectorRegistry(), lambda: (True, "ok"), app=app).start()
        try:
            for path in ("/", "/slos", "/api/v1/slos"):
                response = requests.get(f"http://{server.address}{path}", timeout=10)
                assert response.status_code == 200, (path, response.text[:300])
                assert "UI snapshot" in response.text and "Traceback" not in response.text
        finally:
            server.stop()


def test_the_ui_templates_ship_with_the_package_where_the_report_templates_are_found():
    data_files = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    shipped = {Path(p).name for p in REPO.glob("reports/ui/*") if any(
        Path(p).match(pattern) for pattern in data_files["share/monitor/reports/ui"])}
    on_disk = {p.name for p in (REPO / "reports" / "ui").iterdir() if p.is_file()}
    assert on_disk == shipped and {"base.html.j2", "slos.html.j2", "ui.js.j2"} <= shipped
