"""Grouped SLOs against the real Prometheus: one spec over inference-gateway's 5 endpoints.

The simulated gateway's `/v1/recommend` fails 5% of requests for 40 minutes, 6 hours
before the fleet's end; its four other endpoints stay at the fleet's baseline. Every
group's numbers are checked against pandas over that group's raw simulated counters,
the query count against the number of groups, and the alerts through full cycles.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml
from prometheus_client import generate_latest

from monitor.cli import main
from monitor.outputs.metrics import DaemonMetrics
from monitor.simulate.fleet import GATEWAY_BURNING_ENDPOINT, GATEWAY_ENDPOINTS, GATEWAY_SERVICE
from monitor.slo import evaluate_slos, load_spec_files, slo_signals
from monitor.slo.burn_rate import WINDOWS
from monitor.slo.evaluate import slo_windows
from monitor.slo.groups import TooManyGroups
from monitor.sources.prometheus import PrometheusSource
from monitor.store import StateStore

pytestmark = pytest.mark.prometheus

REPO = Path(__file__).resolve().parent.parent
DEFAULT_RULES = REPO / "monitor" / "default_rules" / "*.yaml"
INSIDE_HISTORY_REL = 1e-9
PERIOD_REL = 1e-3
CLOSED_HOURS_REL = 0.01   # closed_hours.py's bound (0.5% on events) for a ratio of two sums
OBJECTIVE = 0.999
PAGE_30D = (14.4, 6.0)     # the SRE workbook's page thresholds for a 30-day period
TICKET_30D = (3.0, 1.0)
SELECTOR = f'gateway_requests_total{{service="{GATEWAY_SERVICE}"{{extra}}}}'


def _spec_text(extra_matchers: str = "", max_groups: int | None = None, group_by: str = "[endpoint]") -> str:
    selector = SELECTOR.replace("{extra}", extra_matchers)
    bad = selector[:-1] + ',code=~"5.."}'
    bound = f"\n    max_groups: {max_groups}" if max_groups is not None else ""
    return f"""\
version: prometheus/v1
service: {GATEWAY_SERVICE}
labels: {{owner: platform}}
slos:
  - name: availability
    objective: {OBJECTIVE * 100:g}
    group_by: {group_by}{bound}
    sli:
      events:
        error_query: sum by (endpoint) (rate({bad}[{{{{.window}}}}]))
        total_query: sum by (endpoint) (rate({selector}[{{{{.window}}}}]))
"""


def _specs(tmp_path: Path, name: str = "gateway.yaml", **kwargs):
    path = tmp_path / name
    path.write_text(_spec_text(**kwargs))
    return load_spec_files([str(path)], default_period=timedelta(days=30))


def _incident_start(fleet) -> datetime:
    return datetime.fromisoformat(fleet.incident("endpoint_errors")["start"].replace("Z", "+00:00"))


def _counters(fleet, endpoint: str) -> tuple[pd.Series, pd.Series]:
    """(bad, total) cumulative counts of one endpoint, per minute, from the raw simulated series."""
    index = pd.to_datetime(fleet.timestamps, unit="s", utc=True)
    found = fleet.find("gateway_requests_total", service=GATEWAY_SERVICE, endpoint=endpoint)
    assert len(found) == 3, found
    total = pd.Series(sum(s.values for s in found), index=index)
    bad = pd.Series(sum(s.values for s in found if s.labels["code"].startswith("5")), index=index)
    return bad, total


def _expected(fleet, endpoint: str, at: datetime, min_events: float = 10.0) -> dict:
    bad, total = _counters(fleet, endpoint)
    at_ts = pd.Timestamp(at)
    ratios, events = {}, {}
    for key, window in {**WINDOWS, "30d": timedelta(days=30)}.items():
        first = max(at_ts - window, total.index[0])
        n_bad, n_total = bad.loc[at_ts] - bad.loc[first], total.loc[at_ts] - total.loc[first]
        events[key] = (n_bad, n_total)
        ratios[key] = None if n_total < min_events or n_total <= 0 else n_bad / n_total
    burns = {k: None if r is None else r / (1 - OBJECTIVE) for k, r in ratios.items()}

    def both(long: str, short: str, threshold: float) -> bool:
        return burns[long] > threshold and burns[short] > threshold

    page = both("1h", "5m", PAGE_30D[0]) or both("6h", "30m", PAGE_30D[1])
    ticket = both("1d", "2h", TICKET_30D[0]) or both("3d", "6h", TICKET_30D[1])
    return {"ratios": ratios, "burns": burns, "events": events, "page": page, "ticket": ticket,
            "budget": 1 - ratios["30d"] / (1 - OBJECTIVE)}


def _assert_matches(result, want: dict, rel_long: float) -> None:
    for key in WINDOWS:
        rel = INSIDE_HISTORY_REL if WINDOWS[key] <= timedelta(hours=6) else rel_long
        assert result.error_ratio[key] == pytest.approx(want["ratios"][key], rel=rel, abs=1e-12), key
        assert result.burn_rate[key] == pytest.approx(want["burns"][key], rel=rel, abs=1e-9), key
    assert result.error_ratio["30d"] == pytest.approx(want["ratios"]["30d"], rel=max(PERIOD_REL, rel_long))
    bad, total = want["events"]["30d"]
    assert result.events_total["30d"] == pytest.approx(total, rel=max(PERIOD_REL, rel_long))
    assert result.events_bad["30d"] == pytest.approx(bad, rel=max(PERIOD_REL, rel_long), abs=1.0)
    assert result.error_budget_remaining == pytest.approx(want["budget"], abs=max(PERIOD_REL, rel_long))
    assert (result.page, result.ticket) == (want["page"], want["ticket"])


@pytest.mark.parametrize("minutes_in", [30, -60, 120], ids=[
    "half an hour into the endpoint's burn only that endpoint pages",
    "an hour before the burn no endpoint pages",
    "two hours in, after the burn, no endpoint pages any more"])
def test_each_group_matches_pandas_over_its_own_counters(fleet, prom, tmp_path, minutes_in):
    at = _incident_start(fleet) + timedelta(minutes=minutes_in)
    results = evaluate_slos(prom, _specs(tmp_path), at)

    assert [r.group for r in results] == [(("endpoint", e),) for e in sorted(GATEWAY_ENDPOINTS)]
    for result in results:
        endpoint = result.group_labels["endpoint"]
        assert result.id == f'{GATEWAY_SERVICE}-availability{{endpoint="{endpoint}"}}'
        assert list(result.error_ratio) == [*WINDOWS, "30d"]
        _assert_matches(result, _expected(fleet, endpoint, at), INSIDE_HISTORY_REL)
        assert not result.problems and result.query_error is None
    paging = {r.group_labels["endpoint"] for r in results if r.page}
    assert paging == ({GATEWAY_BURNING_ENDPOINT} if minutes_in == 30 else set())


def test_closed_hours_keep_each_groups_values(fleet, prom, tmp_path):
    """The incremental path (long windows from closed hours in the state store) per group."""
    at = _incident_start(fleet) + timedelta(minutes=30)
    specs = _specs(tmp_path)
    with StateStore(tmp_path / "state.db") as store:
        first = evaluate_slos(prom, specs, at - timedelta(hours=2), store=store)
        results = evaluate_slos(prom, specs, at, store=store)
    assert len(first) == len(results) == len(GATEWAY_ENDPOINTS)
    for result in results:
        _assert_matches(result, _expected(fleet, result.group_labels["endpoint"], at), CLOSED_HOURS_REL)
        assert not result.problems
    assert {r.group_labels["endpoint"] for r in results if r.page} == {GATEWAY_BURNING_ENDPOINT}


@pytest.mark.parametrize("with_store", [False, True], ids=["direct", "with closed hours"])
def test_the_query_count_per_window_does_not_depend_on_the_number_of_groups(fleet, prometheus, tmp_path,
                                                                            with_store):
    at = _incident_start(fleet) + timedelta(minutes=30)
    endpoints = sorted(GATEWAY_ENDPOINTS)
    counted = {}
    for groups in (1, 2, 5):
        matcher = ',endpoint=~"' + "|".join(endpoints[:groups]) + '"'
        specs = _specs(tmp_path, f"gateway-{groups}.yaml", extra_matchers=matcher)
        # fold=1: no tagged `or`, so every sub-query is its own HTTP query and is counted.
        with PrometheusSource(prometheus.url, timeout=10) as source:
            if with_store:
                with StateStore(tmp_path / f"state-{groups}.db") as store:
                    results = evaluate_slos(source, specs, at, subqueries_per_query=1, store=store)
            else:
                results = evaluate_slos(source, specs, at, subqueries_per_query=1)
            counted[groups] = source.stats.queries
        assert len(results) == groups
    assert counted[1] == counted[2] == counted[5], counted
    if not with_store:
        # One `bad` and one `total` query per window, for all groups at once.
        assert counted[5] == 2 * len(slo_windows(specs[0], at))


def test_more_groups_than_max_groups_is_a_definition_error_not_a_truncation(fleet, prom, tmp_path):
    at = _incident_start(fleet) + timedelta(minutes=30)
    [result] = evaluate_slos(prom, _specs(tmp_path, max_groups=4), at)
    assert result.group == () and result.page is None
    assert result.query_error is not None and not result.query_error.server_fault
    assert "5 groups of (endpoint) exceed max_groups 4" in result.problems[0]
    [signal] = slo_signals([result])
    assert signal.name == "definition_error" and signal.labels["name"] == f"{GATEWAY_SERVICE}-availability"
    assert "too_many_groups: 5 groups of (endpoint) exceed max_groups 4" in signal.labels["error"]


def test_a_spec_over_max_groups_keeps_no_closed_hours(fleet, prom, tmp_path):
    at = _incident_start(fleet) + timedelta(minutes=30)
    with StateStore(tmp_path / "state.db") as store:
        [result] = evaluate_slos(prom, _specs(tmp_path, max_groups=4), at, store=store)
        rows = store.query("SELECT COUNT(*) FROM period_values")[0][0]
    assert isinstance(result.query_error, TooManyGroups)
    assert rows == 0


def test_group_labels_reach_metrics_next_to_slo_id(fleet, prom, tmp_path):
    at = _incident_start(fleet) + timedelta(minutes=30)
    metrics = DaemonMetrics()
    metrics.signals.update(slo_signals(evaluate_slos(prom, _specs(tmp_path), at)))
    text = generate_latest(metrics.registry).decode()
    page = [line for line in text.splitlines() if line.startswith("monitor_slo_page_alert{")]
    assert len(page) == len(GATEWAY_ENDPOINTS)
    firing = [line for line in page if line.endswith(" 1.0")]
    assert firing == [f'monitor_slo_page_alert{{endpoint="{GATEWAY_BURNING_ENDPOINT}",'
                      f'sloth_id="{GATEWAY_SERVICE}-availability",sloth_service="{GATEWAY_SERVICE}",'
                      f'sloth_slo="availability"}} 1.0']


class _Daemon:
    """`monitor run --once --at` over a config of its own, as test_pipeline_scenarios steps it."""

    def __init__(self, fleet_config_path: Path, tmp_path: Path, capsys):
        self.spec = tmp_path / "gateway.yaml"
        config = yaml.safe_load(fleet_config_path.read_text())
        config.update(rules=[str(DEFAULT_RULES)], slos=[str(self.spec)], models=[],
                      state={"path": str(tmp_path / "state.db")})
        self.config = tmp_path / "monitor.yaml"
        self.config.write_text(yaml.safe_dump(config, sort_keys=False))
        self.capsys = capsys

    def run(self, at: datetime, spec_text: str) -> dict:
        self.spec.write_text(spec_text)
        code = main(["run", "--once", "--at", at.isoformat(), "--json", "--config", str(self.config)])
        out = self.capsys.readouterr()
        assert code == 0, out.err
        return json.loads(out.out)

    def pages(self) -> dict[str, str]:
        assert main(["alerts", "--json", "--all", "--config", str(self.config)]) == 0
        alerts = json.loads(self.capsys.readouterr().out)["alerts"]
        return {a["labels"]["endpoint"]: a["state"] for a in alerts
                if a["labels"]["alertname"] == "SLOErrorBudgetBurnPage"}


def test_only_the_burning_group_pages_and_a_vanished_group_is_no_data_never_resolved(
        fleet, fleet_config_path, tmp_path, capsys, caplog):
    daemon = _Daemon(fleet_config_path, tmp_path, capsys)
    at = _incident_start(fleet) + timedelta(minutes=30)
    cycle = daemon.run(at, _spec_text())
    assert daemon.pages() == {GATEWAY_BURNING_ENDPOINT: "firing"}
    [page] = [t for t in cycle["transitions"] if t["labels"]["alertname"] == "SLOErrorBudgetBurnPage"]
    assert page["labels"] == {"alertname": "SLOErrorBudgetBurnPage", "severity": "page",
                              "service": GATEWAY_SERVICE, "slo": "availability",
                              "slo_id": f"{GATEWAY_SERVICE}-availability", "endpoint": GATEWAY_BURNING_ENDPOINT}

    # The burning endpoint's series vanish (here: the SLI no longer selects them):
    # its instance is gone from every window, and its firing page goes to no data.
    daemon.run(at + timedelta(minutes=5), _spec_text(extra_matchers=f',endpoint!="{GATEWAY_BURNING_ENDPOINT}"'))
    assert daemon.pages() == {GATEWAY_BURNING_ENDPOINT: "no_data"}

    # Over max_groups: a definition error in the cycle, and the page keeps its state.
    cycle = daemon.run(at + timedelta(minutes=10), _spec_text(max_groups=2))
    assert cycle["cycle"]["definition_errors"] == [{
        "kind": "slo", "name": f"{GATEWAY_SERVICE}-availability",
        "error": "too_many_groups: 5 groups of (endpoint) exceed max_groups 2; "
                 "raise max_groups or group by fewer labels"}]
    assert (f"1 definitions in error (their alerts keep their state): slo {GATEWAY_SERVICE}-availability: "
            f"too_many_groups: 5 groups of (endpoint) exceed max_groups 2") in caplog.text  # the cycle's log
    assert daemon.pages() == {GATEWAY_BURNING_ENDPOINT: "no_data"}
    assert not [s for s in cycle["signals"] if s["name"].startswith("slo_")]


def test_groups_gone_from_the_short_windows_are_no_data_there_and_stay_instances(fleet, prom, tmp_path):
    """Ten minutes after the history ends every endpoint's series have stopped: each group is still
    an instance (its long windows hold it) with no data in the 5m window, never a healthy 0."""
    at = fleet.end + timedelta(minutes=10)
    results = evaluate_slos(prom, _specs(tmp_path), at)
    assert [r.group_labels["endpoint"] for r in results] == sorted(GATEWAY_ENDPOINTS)
    for result in results:
        assert result.error_ratio["5m"] is None and result.burn_rate["5m"] is None
        assert result.events_total["5m"] is None
        assert result.error_ratio["1h"] is not None


def test_monitor_slo_shows_one_row_per_group_and_fails_over_max_groups(fleet, fleet_config_path, tmp_path, capsys):
    at = (_incident_start(fleet) + timedelta(minutes=30)).isoformat()
    spec = tmp_path / "gateway.yaml"
    spec.write_text(_spec_text())
    assert main(["slo", "--config", str(fleet_config_path), "--spec", str(spec), "--at", at, "--json"]) == 0
    slos = json.loads(capsys.readouterr().out)["slos"]
    assert [(s["id"], s["slo_id"], s["group"]) for s in slos] == [
        (f'{GATEWAY_SERVICE}-availability{{endpoint="{e}"}}', f"{GATEWAY_SERVICE}-availability", {"endpoint": e})
        for e in sorted(GATEWAY_ENDPOINTS)]
    assert [s["group"]["endpoint"] for s in slos if s["alerts"]["page"]] == [GATEWAY_BURNING_ENDPOINT]

    spec.write_text(_spec_text(max_groups=3))
    assert main(["slo", "--config", str(fleet_config_path), "--spec", str(spec), "--at", at]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == (f"monitor: error: SLO {GATEWAY_SERVICE}-availability: 5 groups of (endpoint) "
                                    f"exceed max_groups 3; raise max_groups or group by fewer labels")
    assert "exceed max_groups 3" in captured.out  # the table's problem line


def _raw_spec(tmp_path: Path, by: str) -> list:
    selector = SELECTOR.replace("{extra}", "")
    bad = selector[:-1] + ',code=~"5.."}'
    path = tmp_path / "raw.yaml"
    path.write_text(f"""\
version: prometheus/v1
service: {GATEWAY_SERVICE}
slos:
  - name: availability-raw
    objective: {OBJECTIVE * 100:g}
    group_by: [endpoint]
    sli:
      raw:
        error_ratio_query: sum{by}(rate({bad}[{{{{.window}}}}])) / sum{by}(rate({selector}[{{{{.window}}}}]))
""")
    return load_spec_files([str(path)], default_period=timedelta(days=30))


def test_a_raw_sli_that_keeps_its_group_labels_is_split_by_them(fleet, prom, tmp_path):
    at = _incident_start(fleet) + timedelta(minutes=30)
    results = evaluate_slos(prom, _raw_spec(tmp_path, " by (endpoint) "), at)
    assert [r.group_labels["endpoint"] for r in results] == sorted(GATEWAY_ENDPOINTS)
    for result in results:
        want = _expected(fleet, result.group_labels["endpoint"], at)
        for key in ("5m", "30m", "1h", "6h"):
            assert result.error_ratio[key] == pytest.approx(want["ratios"][key], rel=INSIDE_HISTORY_REL)
        assert result.page == want["page"]


def test_a_raw_sli_that_drops_its_group_labels_is_a_definition_error(fleet, prom, tmp_path):
    at = _incident_start(fleet) + timedelta(minutes=30)
    [result] = evaluate_slos(prom, _raw_spec(tmp_path, ""), at)
    assert result.group == () and result.page is None
    [signal] = slo_signals([result])
    assert signal.name == "definition_error"
    assert signal.labels["error"] == ("grouping: a series of the raw SLI lacks the group_by label 'endpoint': a "
                                      "grouped SLO's error ratio query must keep its group labels "
                                      "(`... by (endpoint)`)")


def test_the_report_has_one_row_per_group_with_its_own_attainment_and_burn_rate_chart(fleet, prom, tmp_path):
    from monitor.report.period import ReportPeriod
    from monitor.report.slo_section import build_slo_section

    start = _incident_start(fleet) - timedelta(hours=23)
    period = ReportPeriod(start, start + timedelta(days=1), "day", "the day around the endpoint's burn")
    section = build_slo_section(prom, _specs(tmp_path), period)
    assert [r.slo_id for r in section.rows] == [f'{GATEWAY_SERVICE}-availability{{endpoint="{e}"}}'
                                                for e in sorted(GATEWAY_ENDPOINTS)]
    for row in section.rows:
        endpoint = row.slo_id.split('"')[1]
        bad, total = _counters(fleet, endpoint)
        end, first = pd.Timestamp(period.end), pd.Timestamp(period.start)
        want = 1 - (bad.loc[end] - bad.loc[first]) / (total.loc[end] - total.loc[first])
        assert row.attainment == pytest.approx(want, rel=1e-9)
        peak = max(v for v in row.burn_rate.values if v is not None)
        # The burning endpoint's hourly burn rate peaks over the hour of its 40-minute 5% burn.
        assert (peak > 14.4) == (endpoint == GATEWAY_BURNING_ENDPOINT), (endpoint, peak)


def test_generated_rules_record_and_alert_per_group_in_promtool(tmp_path, capsys):
    """`monitor slo rules` on a grouped spec: recordings `sum by` the group labels, and the burn-rate
    alerts fire for the burning endpoint alone, carrying its label (promtool's rule unit tests).
    Annotations are left out: this is about which series alert, not their text."""
    import subprocess

    spec = tmp_path / "gateway.yaml"
    spec.write_text(_spec_text())
    assert main(["slo", "rules", "--spec", str(spec)]) == 0
    rules = yaml.safe_load(capsys.readouterr().out)
    # The SLI recordings; Sloth's metadata series derive from them.
    recordings = [r for g in rules["groups"] for r in g["rules"] if r.get("record", "").startswith("slo:sli_")]
    assert recordings and all("sum by (endpoint)" in r["expr"] for r in recordings)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    ok, fail = "0+1000x150", "0+50x150"   # per minute: 5% errors on the burning endpoint, 70 minutes in
    series = [(endpoint, code, values) for endpoint in ("/v1/search", GATEWAY_BURNING_ENDPOINT)
              for code, values in (("200", ok), ("500", fail if endpoint == GATEWAY_BURNING_ENDPOINT else "0x150"))]
    labels = {"sloth_id": f"{GATEWAY_SERVICE}-availability", "sloth_service": GATEWAY_SERVICE,
              "sloth_slo": "availability", "owner": "platform", "endpoint": GATEWAY_BURNING_ENDPOINT}
    test = {
        "rule_files": ["rules.yaml"], "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [{"series": f'gateway_requests_total{{service="{GATEWAY_SERVICE}",endpoint="{e}",'
                                        f'code="{c}"}}', "values": v} for e, c, v in series],
            "alert_rule_test": [{
                "eval_time": "70m", "alertname": "InferenceGatewayAvailabilitySLO",
                # Only 70 minutes of history: the 1d and 3d windows hold the same 5%, so the ticket holds too.
                "exp_alerts": [{"exp_labels": {**labels, "sloth_severity": severity}}
                               for severity in ("page", "ticket")]}],
        }],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test, sort_keys=False))
    checked = subprocess.run(["promtool", "test", "rules", "test.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
