"""`monitor slo rules`: promtool accepts the file, and Prometheus' recorded ratios equal the direct computation.

Prometheus evaluates recording rules only at wall-clock now, and the simulated
history ends in the past. So the rules are backfilled with
`promtool tsdb create-blocks-from rules` (which evaluates them against the session's
Prometheus at the past instants we test) and a second Prometheus serves a copy of
the history plus those blocks, with the rule file loaded. This keeps the fixed,
reproducible history every other SLO test uses; a fleet ending "now" would make the
compared instants depend on when the rule evaluations happened to run.
"""

from __future__ import annotations

import shutil
import subprocess
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import requests
import yaml

from monitor.cli import main
from monitor.config import load_config
from monitor.simulate.local_prometheus import LocalPrometheus
from monitor.slo import EvaluationMode, evaluate_slos, load_slo_specs, load_spec_files
from monitor.slo.burn_rate import PAGE_CONDITIONS, TICKET_CONDITIONS
from monitor.slo.rule_file import RuleOptions, rule_file_text, write_rule_file
from monitor.slo.spec import CalendarPeriod, EventsSli, SloSpec
from monitor.sources.prometheus import PrometheusSource

pytestmark = pytest.mark.prometheus

# Recording and reading happen in the same Prometheus arithmetic; only the final
# division differs (Prometheus vs Python), so agreement is to float precision.
SAME_COMPUTATION_REL = 1e-9
INSTANTS = {
    "during the recommender's error spike": timedelta(hours=19, minutes=30),
    "at the end, legacy-tagger without traffic": timedelta(0),
}


def _rfc3339(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def slo_specs(sim_dir):
    return load_slo_specs(load_config(sim_dir / "monitor.yaml"))


# One SLO per service over every service's requests: a grouped SLO (one instance per `service`).
GROUPED = SloSpec(service="fleet", name="requests-availability", objective=0.999,
                  sli=EventsSli('rate(http_requests_total{code=~"5.."}[{{.window}}])',
                                "rate(http_requests_total[{{.window}}])"),
                  period=timedelta(days=30), labels={"team": "ml-platform"}, group_by=("service",))


@pytest.fixture(scope="module")
def rule_file(slo_specs, tmp_path_factory):
    path = tmp_path_factory.mktemp("slo-rules") / "slo-rules.yml"
    with open(path, "w", encoding="utf-8") as out:
        write_rule_file([*slo_specs, GROUPED], out)
    return path


@pytest.fixture(scope="module")
def recorded_prometheus(sim_dir, prometheus, rule_file, fleet_end, tmp_path_factory):
    """A second Prometheus on the same history plus the SLO rules backfilled at INSTANTS, rules loaded."""
    data = tmp_path_factory.mktemp("recorded") / "data"
    shutil.copytree(sim_dir / "blocks", data)
    for before_end in INSTANTS.values():
        at = fleet_end - before_end
        result = subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "rules", "--url", prometheus.url,
             "--start", _rfc3339(at - timedelta(minutes=2)), "--end", _rfc3339(at), "--eval-interval", "1m",
             "--output-dir", str(data), str(rule_file)], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
    server = LocalPrometheus(data, rule_files=[rule_file], log_path=data.parent / "prometheus.log").start()
    yield server
    server.stop()


def test_monitor_slo_rules_passes_promtool_check_rules(fleet_config_path, tmp_path, capsys):
    assert main(["slo", "rules", "--config", str(fleet_config_path)]) == 0
    path = tmp_path / "rules.yml"
    path.write_text(capsys.readouterr().out, encoding="utf-8")
    checked = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = path.read_text()
    # 7 SLOs: ratio + event rate for 7 windows and the period, Sloth's 7 metadata series,
    # and a page and ticket alert each.
    assert "SUCCESS: 175 rules found" in checked.stdout
    assert text.count("record: slo:sli_error:ratio_rate5m\n") == 7
    assert "record: slo:sli_error:ratio_rate28d" in text and "record: slo:sli_error:ratio_rate30d" in text
    assert "(14.4 * 0.001)" in text and "(13.44 * 0.001)" in text and "(6 * 0.01)" in text


def test_prometheus_loads_the_rule_file(recorded_prometheus):
    groups = requests.get(f"{recorded_prometheus.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    names = {g["name"] for g in groups}
    assert {"monitor-slo-sli-5m", "monitor-slo-sli-30d", "monitor-slo-sli-28d", "monitor-slo-meta",
            "monitor-slo-alerts"} <= names


def _recorded_at(source: PrometheusSource, window_key: str, at: datetime) -> datetime:
    """When the rule group of `window_key` last evaluated at or before `at`.

    Prometheus (and promtool's backfill) offset each group's evaluations by a hash of
    its name, so the recorded sample read at `at` was computed up to a minute earlier.
    """
    result = source.instant(f'max(timestamp(slo:sli_error:ratio_rate{window_key}))', at)
    return datetime.fromtimestamp(result.scalar(), tz=timezone.utc)


@pytest.mark.parametrize("before_end", list(INSTANTS.values()), ids=list(INSTANTS))
def test_recorded_ratios_equal_the_direct_computation(recorded_prometheus, prom, slo_specs, fleet_end, before_end):
    at = fleet_end - before_end
    with PrometheusSource(recorded_prometheus.url, timeout=10) as source:
        recorded = evaluate_slos(source, slo_specs, at, mode=EvaluationMode.RECORDED)
        # All SLOs' ratios and event rates over every window (7, 30d and 28d): one selector per
        # window, folded by the query engine into one query.
        assert source.stats.queries == 1
        window_keys = list(dict.fromkeys(k for r in recorded for k in r.error_ratio))
        evaluated_at = {key: _recorded_at(source, key, at) for key in window_keys}
    # Within the backfilled range (whether promtool's --end is inclusive depends on the group's offset).
    assert all(at - timedelta(minutes=2) <= t <= at for t in evaluated_at.values()), \
        {k: t.isoformat() for k, t in evaluated_at.items()}
    # The direct computation at the instant each window's rules were evaluated.
    direct = {key: evaluate_slos(prom, slo_specs, t) for key, t in evaluated_at.items()}
    compared = 0
    for index, got in enumerate(recorded):
        assert not got.problems, got.problems
        for key in got.error_ratio:
            want = direct[key][index]
            if want.error_ratio[key] is None:
                assert got.error_ratio[key] is None, (got.spec.id, key)
                continue
            assert got.error_ratio[key] == pytest.approx(want.error_ratio[key], rel=SAME_COMPUTATION_REL), \
                (got.spec.id, key)
            assert got.burn_rate[key] == pytest.approx(want.burn_rate[key], rel=SAME_COMPUTATION_REL)
            assert got.events_total[key] == pytest.approx(want.events_total[key], rel=SAME_COMPUTATION_REL)
            compared += 1
        want_period = direct[got.period_key][index]
        assert got.error_budget_remaining == pytest.approx(want_period.error_budget_remaining,
                                                           rel=SAME_COMPUTATION_REL)
    assert compared >= 7 * 8 - 4  # every window of every SLO, less legacy-tagger's empty ones
    # Decisions: no burn rate at these instants is within a minute's change of a threshold.
    decided = {r.spec.id: (r.page, r.ticket) for r in recorded}
    assert decided == {r.spec.id: (r.page, r.ticket) for r in evaluate_slos(prom, slo_specs, at)}
    if before_end == INSTANTS["during the recommender's error spike"]:
        assert decided["recommender-requests-availability"] == (True, False)
    else:
        assert decided["legacy-tagger-requests-availability"] == (None, False)


# --- Sloth compatibility: metadata series, flags, PrometheusRule, grouped and calendar SLOs ---

CRD = Path(__file__).parent / "fixtures" / "prometheus-operator" / "monitoring.coreos.com_prometheusrules.yaml"
SLOTH_GETTING_STARTED = Path(__file__).parent / "fixtures" / "sloth" / "getting-started.yml"
METADATA_RECORDS = ("slo:objective:ratio", "slo:error_budget:ratio", "slo:time_period:days",
                    "slo:current_burn_rate:ratio", "slo:period_burn_rate:ratio",
                    "slo:period_error_budget_remaining:ratio", "sloth_slo_info")


def _generate(capsys, *args: str) -> dict:
    assert main(["slo", "rules", "--spec", str(SLOTH_GETTING_STARTED), *args]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def _rules(doc: dict) -> list[dict]:
    groups = doc["spec"]["groups"] if "spec" in doc else doc["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _promtool_check(tmp_path: Path, doc: dict) -> str:
    path = tmp_path / "checked.yml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    checked = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return checked.stdout


def test_sloth_metadata_series_have_sloths_names_labels_and_expressions(capsys):
    spec = load_spec_files([SLOTH_GETTING_STARTED], default_period=timedelta(days=30))[0]
    rules = {rule["record"]: rule for rule in _rules(_generate(capsys)) if rule.get("record") in METADATA_RECORDS}
    assert set(rules) == set(METADATA_RECORDS)
    ids = {"sloth_id": spec.id, "sloth_service": spec.service, "sloth_slo": spec.name}
    selector = f'{{sloth_id="{spec.id}", sloth_service="{spec.service}", sloth_slo="{spec.name}"}}'
    # Sloth's expressions (internal/plugin/slo/core/metadata_rules_v1/plugin.go), byte for byte.
    assert rules["slo:objective:ratio"]["expr"] == "vector(0.999)"
    assert rules["slo:error_budget:ratio"]["expr"] == "vector(1-0.999)"
    assert rules["slo:time_period:days"]["expr"] == "vector(30)"
    assert rules["slo:current_burn_rate:ratio"]["expr"] == (
        f"slo:sli_error:ratio_rate5m{selector}\n/ on(sloth_id, sloth_slo, sloth_service) group_left\n"
        f"slo:error_budget:ratio{selector}\n")
    assert rules["slo:period_burn_rate:ratio"]["expr"].startswith(f"slo:sli_error:ratio_rate30d{selector}\n")
    assert rules["slo:period_error_budget_remaining:ratio"]["expr"] == f"1 - slo:period_burn_rate:ratio{selector}"
    for rule in rules.values():
        assert rule["labels"].items() >= {**ids, **spec.labels}.items(), rule["record"]
    info = rules["sloth_slo_info"]["labels"]
    assert info["sloth_mode"] == "cli-gen-prom" and info["sloth_spec"] == "prometheus/v1"
    assert info["sloth_objective"] == "99.9" and info["sloth_version"].startswith("monitor-")


def test_spec_labels_and_extra_labels_are_on_every_rule(capsys, tmp_path):
    doc = _generate(capsys, "--extra-labels", "cluster=eu-1", "--extra-labels", "env=prod")
    spec = load_spec_files([SLOTH_GETTING_STARTED], default_period=timedelta(days=30))[0]
    assert spec.labels  # owner, tier, ... from the Sloth file
    for rule in _rules(doc):
        assert rule["labels"].items() >= {"cluster": "eu-1", "env": "prod", **spec.labels}.items(), rule
    _promtool_check(tmp_path, doc)


@pytest.mark.parametrize("flags, records, alerts", [
    ((), True, True),
    (("--disable-recordings",), False, True),
    (("--disable-alerts",), True, False),
    (("--disable-recordings", "--disable-alerts"), False, False),
], ids=["both by default", "recordings left out", "alerts left out", "both left out"])
def test_disable_flags_leave_out_recordings_or_alerts(capsys, tmp_path, flags, records, alerts):
    doc = _generate(capsys, *flags)
    rules = _rules(doc)
    assert any("record" in r for r in rules) == records
    assert any("alert" in r for r in rules) == alerts
    _promtool_check(tmp_path, doc)


def _strict(schema: dict) -> dict:
    """The CRD schema with unknown fields refused (as `kubectl apply --validate=strict` does), metadata aside."""
    schema = dict(schema)
    if schema.get("pattern", "").startswith("^(?i)"):
        # Go's RE2 takes a flag group anywhere; Python's re only at the start.
        schema["pattern"] = "(?i)^" + schema["pattern"][len("^(?i)"):]
    if "properties" in schema:
        schema["properties"] = {k: v if k == "metadata" else _strict(v) for k, v in schema["properties"].items()}
        schema.setdefault("additionalProperties", False)
    if "items" in schema:
        schema["items"] = _strict(schema["items"])
    return schema


def test_prometheusrule_output_passes_the_crd_schema_and_promtool(tmp_path):
    out = tmp_path / "slos.yaml"
    assert main(["slo", "rules", "--spec", str(SLOTH_GETTING_STARTED), "--format", "prometheusrule",
                 "--name", "my-slos", "--namespace", "monitoring", "--metadata-label", "release=kube-prometheus",
                 "--extra-labels", "cluster=eu-1", "-o", str(out)]) == 0
    doc = yaml.safe_load(out.read_text())
    assert doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["kind"] == "PrometheusRule"
    assert doc["metadata"] == {"name": "my-slos", "namespace": "monitoring",
                               "labels": {"release": "kube-prometheus"}}
    crd = yaml.safe_load(CRD.read_text())
    schema = _strict(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    # The CRD leaves metadata to Kubernetes' ObjectMeta: checked against the built-in schema
    # (kubernetes-validate has no PrometheusRule, so on a kind with the same ObjectMeta).
    kubernetes_validate.validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc["metadata"]}, "1.30",
                                 strict=True)
    validator = jsonschema.Draft4Validator(schema)  # OpenAPI v3 schemas are JSON Schema draft 4 plus extensions
    validator.validate(doc)
    # The strict schema does refuse what the operator would not take.
    broken = {**doc, "spec": {"groups": [{**doc["spec"]["groups"][0], "rulez": []}]}}
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)
    assert "SUCCESS" in _promtool_check(tmp_path, doc["spec"])
    info = next(r for r in _rules(doc) if r.get("record") == "sloth_slo_info")
    assert info["labels"]["sloth_mode"] == "cli-gen-k8s"


def test_output_file_is_written_whole_and_replaces_the_old_one(tmp_path, capsys):
    out = tmp_path / "rules.yml"
    out.write_text("old\n")
    assert main(["slo", "rules", "--spec", str(SLOTH_GETTING_STARTED), "-o", str(out)]) == 0
    assert capsys.readouterr().out == ""
    assert yaml.safe_load(out.read_text())["groups"]
    assert [p.name for p in tmp_path.iterdir()] == ["rules.yml"]  # no temp file left behind


def _instant(url: str, expr: str, at: datetime) -> list[dict]:
    answer = requests.get(f"{url}/api/v1/query", params={"query": expr, "time": at.timestamp()}, timeout=60).json()
    assert answer["status"] == "success", (expr, answer)
    return answer["data"]["result"]


def _number(url: str, expr: str, at: datetime) -> float:
    """The value of a one-number expression (a scalar or a one-element vector) at `at`."""
    answer = requests.get(f"{url}/api/v1/query", params={"query": expr, "time": at.timestamp()}, timeout=60).json()
    assert answer["status"] == "success", (expr, answer)
    data = answer["data"]
    if data["resultType"] == "scalar":
        return float(data["result"][1])
    [sample] = data["result"]
    return float(sample["value"][1])


def _rule(text: str, name: str, spec: SloSpec) -> dict:
    rules = [r for g in yaml.safe_load(text)["groups"] for r in g["rules"]
             if (r.get("record") or r.get("alert")) == name and r["labels"].get("sloth_id", spec.id) == spec.id]
    assert rules, name
    return rules[0]


@pytest.mark.parametrize("before_end", list(INSTANTS.values()), ids=list(INSTANTS))
def test_a_grouped_slo_records_one_series_per_group_with_each_groups_numbers(
        recorded_prometheus, prom, slo_specs, fleet_end, before_end):
    at = fleet_end - before_end
    # The fleet's own per-service SLOs over http_requests_total are the independent reference.
    per_service = {s.service: s for s in slo_specs if "http_requests_total" in getattr(s.sli, "total_query", "")}
    assert len(per_service) >= 3
    with PrometheusSource(recorded_prometheus.url, timeout=10) as source:
        recorded_at = {key: _recorded_at(source, key, at) for key in ("5m", "1h", "30d")}
    # The direct computation at the instant each window's group evaluated (the groups are offset).
    direct_at = {key: {r.spec.service: r for r in evaluate_slos(prom, list(per_service.values()), t, min_events=0)}
                 for key, t in recorded_at.items()}
    text = rule_file_text([GROUPED], RuleOptions())
    compared = 0
    for key in ("5m", "1h", "30d"):
        selector = f'slo:sli_error:ratio_rate{key}{{sloth_id="{GROUPED.id}"}}'
        got = {s["metric"]["service"]: float(s["value"][1]) for s in _instant(recorded_prometheus.url, selector, at)}
        assert set(per_service) <= set(got), key
        for service in per_service:
            want = direct_at[key][service].error_ratio.get(key)  # a 28d SLO has no 30d window
            if want is None:
                continue
            assert got[service] == pytest.approx(want, rel=SAME_COMPUTATION_REL, abs=1e-15), (key, service)
            compared += 1
    assert compared >= 3 * 3 - 2
    # Sloth's burn-rate expression keeps the group label (its `group_left`).
    burn = {s["metric"]["service"]: float(s["value"][1])
            for s in _instant(recorded_prometheus.url, _rule(text, "slo:current_burn_rate:ratio", GROUPED)["expr"], at)}
    for service in per_service:
        want = direct_at["5m"][service].error_ratio["5m"]
        if want is not None:
            assert burn[service] == pytest.approx(want / GROUPED.error_budget, rel=1e-9), service
    # Each group pages on its own: the page alert's expression yields exactly the groups that page.
    page = _instant(recorded_prometheus.url, _rule(text, "FleetRequestsAvailabilitySLO", GROUPED)["expr"], at)
    want_page = {r.spec.service for r in evaluate_slos(prom, list(per_service.values()), at) if r.page}
    assert {s["metric"]["service"] for s in page} == want_page
    if before_end == INSTANTS["during the recommender's error spike"]:
        assert want_page == {"recommender"}
    assert all("sloth_window" not in s["metric"] and s["metric"]["team"] == "ml-platform" for s in page)


CALENDAR_ANCHOR = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("unit", ["M", "Q", "y", "w"], ids=["a month", "a quarter", "a year", "a week"])
def test_calendar_thresholds_use_the_real_period_length(prom, tmp_path, unit):
    spec = SloSpec(service="svc", name="cal", objective=0.999, sli=GROUPED.sli, group_by=(),
                   period=CalendarPeriod(1, unit, CALENDAR_ANCHOR))
    text = rule_file_text([spec], RuleOptions())
    _promtool_check(tmp_path, yaml.safe_load(text))
    instants = [datetime(2028, 2, 10, tzinfo=timezone.utc), datetime(2027, 2, 10, tzinfo=timezone.utc),
                datetime(2026, 11, 30, 23, 59, tzinfo=timezone.utc), datetime(2027, 7, 1, 0, 1, tzinfo=timezone.utc),
                datetime(2028, 12, 31, 12, tzinfo=timezone.utc)]
    days_expr = _rule(text, "slo:time_period:days", spec)["expr"]
    lengths = set()
    for at in instants:
        length = spec.period_length(at)
        lengths.add(length)
        assert _number(prom.url, days_expr, at) == length / timedelta(days=1), at
        for severity, conditions in (("page", PAGE_CONDITIONS), ("ticket", TICKET_CONDITIONS)):
            alert = [r for g in yaml.safe_load(text)["groups"] for r in g["rules"]
                     if r.get("alert") and r["labels"]["sloth_severity"] == severity][0]
            for condition in conditions:
                match = re.search(rf"ratio_rate{condition.long}\{{[^}}]*\}} > (\(.+?\))\) without", alert["expr"])
                want = condition.threshold(length) * spec.error_budget
                assert _number(prom.url, match.group(1), at) == pytest.approx(want, rel=1e-12), (at, condition)
    if unit != "w":
        assert len(lengths) > 1  # the instants do cover periods of different lengths


@pytest.mark.parametrize("period", [CalendarPeriod(1, "w", datetime(2026, 11, 16, tzinfo=timezone.utc)),
                                    CalendarPeriod(1, "M", CALENDAR_ANCHOR)],
                         ids=["a week starting Monday", "a month"])
def test_a_calendar_period_is_recorded_from_the_period_so_far(prom, fleet_end, period):
    spec = SloSpec(service="recommender", name="calendar", objective=0.999,
                   sli=EventsSli('sum(rate(http_requests_total{service="recommender",code=~"5.."}[{{.window}}]))',
                                 'sum(rate(http_requests_total{service="recommender"}[{{.window}}]))'),
                   period=period)
    text = rule_file_text([spec], RuleOptions())
    ratio = _rule(text, f"slo:sli_error:ratio_rate{spec.period_key}", spec)["expr"]
    total = _rule(text, f"slo:sli_total:rate{spec.period_key}", spec)["expr"]
    for at in (fleet_end - timedelta(hours=19), fleet_end - timedelta(days=2, hours=5)):
        [got_ratio] = _instant(prom.url, ratio, at)
        [got_total] = _instant(prom.url, total, at)
        [direct] = evaluate_slos(prom, [spec], at, min_events=0)
        window = spec.period_window(at).total_seconds()
        # Hourly rates summed vs one rate over the period: equal up to rate()'s extrapolation at each hour's edges.
        assert float(got_ratio["value"][1]) == pytest.approx(direct.error_ratio[spec.period_key], rel=1e-3), at
        assert float(got_total["value"][1]) * window == pytest.approx(direct.events_total[spec.period_key], rel=1e-3)
