"""Tokens and cost per 1M tokens for an LLM served by vLLM, against the real Prometheus.

The simulated fleet's `llama-chat` runs on vLLM (two data-parallel engines, each on its
own GPU), exporting vLLM's own series. The truth is computed from the simulator's raw
series: tokens are each counter's v(end) - v(start) summed over engines (windows start
and end on written samples); GPU cost is GPU-hours (the DCGM series as Prometheus sees
them on the one-minute grid, tests/test_cost_prometheus.py) times the config's price;
cost per 1M tokens = GPU cost / (prompt + generation tokens) x 1e6.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.alerting.condition import Truth, evaluate_condition
from monitor.alerting.rule_spec import NoDataPolicy, load_rule_file
from monitor.cli import main
from monitor.config import ModelConfig, TokensConfig, load_config
from monitor.cost import compute_costs, cost_signals
from monitor.cost.collect import period_over_period
from monitor.cost.presets import resolve_model_metrics
from monitor.outputs.metrics import SignalCollector
from monitor.report.cost_section import build_cost_section
from monitor.report.period import custom_period
from monitor.signals import Signal
from monitor.simulate.fleet import CONFIG_GPU_PRICE, VLLM_MODEL
from test_cost_prometheus import _grid_values, _workload_gpus

REL = 1e-9
MODEL = VLLM_MODEL.name


@pytest.fixture
def config(fleet_config_path):
    return load_config(fleet_config_path)


def _counter_increase(fleet, metric: str, start, end) -> float:
    total = 0.0
    series = fleet.find(metric, model_name=MODEL)
    assert len(series) == len(VLLM_MODEL.gpus)  # one per engine
    for s in series:
        total += fleet.value_at(s, end) - fleet.value_at(s, start)
    return total


def _truth(fleet, start, end) -> dict:
    hours = 0.0
    gpus = _workload_gpus(fleet, VLLM_MODEL.namespace)
    assert len(gpus) == len(VLLM_MODEL.gpus)
    for _, percent in gpus:
        hours += len(_grid_values(fleet, percent, start, end)) / 60.0
    prompt = _counter_increase(fleet, "vllm:prompt_tokens_total", start, end)
    generation = _counter_increase(fleet, "vllm:generation_tokens_total", start, end)
    cost = hours * CONFIG_GPU_PRICE
    finished = sum(fleet.value_at(s, end) - fleet.value_at(s, start)
                   for s in fleet.find("vllm:request_success_total", model_name=MODEL)
                   if s.labels["finished_reason"] not in ("abort", "error"))
    return {"prompt_tokens": prompt, "generation_tokens": generation, "tokens": prompt + generation,
            "cost_usd": cost, "cost_per_1m_tokens": cost / (prompt + generation) * 1e6,
            "inferences": finished, "cost_per_1k": cost / finished * 1e3}


WINDOWS = [
    pytest.param(timedelta(days=7), timedelta(0), id="the whole week, mostly 5-minute history"),
    pytest.param(timedelta(hours=40), timedelta(hours=10), id="a window inside the 1-minute tail"),
]


def test_the_vllm_preset_reads_vllms_token_counters_summed_over_engines():
    metrics = resolve_model_metrics(ModelConfig(name="chat", preset="vllm"))
    assert metrics.prompt_tokens == 'vllm:prompt_tokens_total{model_name="chat"}'
    assert metrics.generation_tokens == 'vllm:generation_tokens_total{model_name="chat"}'
    assert resolve_model_metrics(ModelConfig(name="m", preset="triton")).prompt_tokens is None


def test_configured_token_counters_replace_the_presets():
    tokens = TokensConfig(prompt='tgi_request_input_length_sum{service="chat"}',
                          generation='tgi_request_generated_tokens_sum{service="chat"}')
    for preset in ("vllm", None):
        metrics = resolve_model_metrics(ModelConfig(name="chat", preset=preset, tokens=tokens,
                                                    inferences='tgi_request_count{service="chat"}'))
        assert (metrics.prompt_tokens, metrics.generation_tokens) == (tokens.prompt, tokens.generation)


@pytest.mark.prometheus
@pytest.mark.parametrize("ago, to_ago", WINDOWS)
def test_cost_per_million_tokens_matches_the_raw_counters(prom, config, fleet, fleet_end, ago, to_ago):
    start, end = fleet_end - ago, fleet_end - to_ago
    want = _truth(fleet, start, end)
    got = compute_costs(prom, config, start, end).entry(MODEL)
    assert got.prompt_tokens == pytest.approx(want["prompt_tokens"], rel=REL)
    assert got.generation_tokens == pytest.approx(want["generation_tokens"], rel=REL)
    assert got.cost_usd == pytest.approx(want["cost_usd"], rel=REL)
    assert got.cost_per_1m_tokens == pytest.approx(want["cost_per_1m_tokens"], rel=REL)
    # Requests that ended in abort or error are not inferences.
    assert got.inferences == pytest.approx(want["inferences"], rel=REL)
    assert got.cost_per_1k == pytest.approx(want["cost_per_1k"], rel=REL)
    # A Triton model has no token counters: no data, not 0.
    ranker = compute_costs(prom, config, start, end).entry("ranker")
    assert (ranker.prompt_tokens, ranker.generation_tokens, ranker.cost_per_1m_tokens) == (None, None, None)


@pytest.mark.prometheus
def test_cost_json_and_metrics_carry_tokens_and_cost_per_million(prom, config, fleet_config_path, fleet, fleet_end,
                                                                 capsys):
    start = fleet_end - timedelta(days=7)
    want = _truth(fleet, start, fleet_end)
    assert main(["cost", "--config", str(fleet_config_path), "--from", start.isoformat(),
                 "--to", fleet_end.isoformat(), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    entry = next(e for e in out["models"] if e["model"] == MODEL and e["version"] is None)
    for key in ("prompt_tokens", "generation_tokens", "tokens", "cost_per_1m_tokens"):
        assert entry[key] == pytest.approx(want[key], rel=REL), key
    ranker = next(e for e in out["models"] if e["model"] == "ranker" and e["version"] is None)
    assert ranker["tokens"] is None and ranker["cost_per_1m_tokens"] is None
    assert main(["cost", "--config", str(fleet_config_path), "--from", start.isoformat(),
                 "--to", fleet_end.isoformat()]) == 0
    table = capsys.readouterr().out
    assert f"{want['cost_per_1m_tokens']:,.4f}" in table and "prompt + generation tokens" in table

    collector = SignalCollector()
    collector.update(cost_signals(prom, config, fleet_end))
    registry = CollectorRegistry()
    registry.register(collector)
    samples = {(s.name, s.labels.get("model"), s.labels.get("version")): s
               for family in text_string_to_metric_families(generate_latest(registry).decode())
               for s in family.samples}
    assert samples[("monitor_cost_per_million_tokens_usd", MODEL, "")].value == pytest.approx(
        want["cost_per_1m_tokens"], rel=REL)
    assert samples[("monitor_model_prompt_tokens", MODEL, "")].value == pytest.approx(want["prompt_tokens"], rel=REL)
    assert samples[("monitor_model_generation_tokens", MODEL, "")].value == pytest.approx(
        want["generation_tokens"], rel=REL)
    # Only models that count tokens carry token gauges.
    assert ("monitor_cost_per_million_tokens_usd", "ranker", "") not in samples


@pytest.mark.prometheus
def test_week_over_week_and_the_reports_cost_section_carry_cost_per_million(prom, config, fleet, fleet_end):
    end, period = fleet_end, timedelta(days=3)
    now, before = _truth(fleet, end - period, end), _truth(fleet, end - 2 * period, end - period)
    comparison = period_over_period(prom, config, end, period)
    change = comparison.cost_per_1m_tokens_change[(MODEL, None)]
    assert change == pytest.approx(now["cost_per_1m_tokens"] / before["cost_per_1m_tokens"] - 1, rel=1e-6)

    section = build_cost_section(prom, config, custom_period(end - period, end))
    row = next(r for r in section.rows if r.model == MODEL and r.version is None)
    assert row.counts_tokens
    assert row.cost_per_1m_tokens == pytest.approx(now["cost_per_1m_tokens"], rel=REL)
    assert row.prompt_tokens == pytest.approx(now["prompt_tokens"], rel=REL)
    assert row.cost_per_1m_tokens_wow_change == pytest.approx(change, rel=1e-9)
    assert not next(r for r in section.rows if r.model == "ranker" and r.version is None).counts_tokens


def test_the_default_rule_tickets_on_cost_per_million_tokens_up_30_percent():
    rules = load_rule_file(Path(__file__).resolve().parent.parent / "monitor" / "default_rules" / "cost.yaml")
    rule = next(r for r in rules if r.alert == "ModelCostPerMillionTokensIncrease")
    assert rule.labels["severity"] == "ticket" and rule.no_data is NoDataPolicy.KEEP
    signals = [Signal("cost_per_1m_tokens_wow_change", {"model": MODEL, "version": ""}, 0.31),
               Signal("cost_per_1m_tokens_wow_change", {"model": "steady", "version": ""}, 0.29),
               Signal("cost_per_1m_tokens_wow_change", {"model": MODEL, "version": "v2"}, 0.9),
               Signal("cost_per_1m_tokens_wow_change", {"model": "new", "version": ""}, None)]
    truths = {i.labels["model"]: i.truth for i in evaluate_condition(rule.condition, signals)}
    assert truths == {MODEL: Truth.TRUE, "steady": Truth.FALSE, "new": Truth.UNKNOWN}
