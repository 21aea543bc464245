"""The query engine (`PrometheusSource.run`) against the real Prometheus: folded answers equal
each query's own, one bad query's error stays its own, and no fold reads more than the budget.

Expected answers are each query sent alone (`instant`/`range`), which the engine's
folding must not change; sample counts are checked against the server's own stats.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

import pytest
import requests

from monitor.config import load_config
from monitor.cost import cost_signals
from monitor.drift.prediction_drift import compute_config_drift
from monitor.simulate.fleet import FLEET
from monitor.sources.folding import Family, parse_selector, plan_merges, regex_escape, render
from monitor.sources.prometheus import (InstantQuery, InstantResult, PrometheusSource, PrometheusUnavailable,
                                       QueryError, RangeQuery, RangeResult)

pytestmark = pytest.mark.prometheus

MODELS = [m.name for m in FLEET]


def _samples(result: InstantResult) -> dict[tuple, float | None]:
    return {tuple(sorted(s.labels.items())): s.value for s in result.samples}


def _series(result: RangeResult) -> dict[tuple, tuple[list, list]]:
    return {tuple(sorted(s.labels.items())): (s.timestamps.tolist(), s.values.tolist()) for s in result.series}


def _queries(fleet_end):
    """Inference increases over several windows and two instants, and a raw selector."""
    out = []
    for hours_before in (0, 5):
        at = fleet_end - timedelta(hours=hours_before)
        for model in MODELS:
            for window in ("5m", "1h", "1d"):
                out.append(InstantQuery(f'sum by (version) (increase(nv_inference_count{{model="{model}"}}[{window}]))',
                                        at))
        out.append(InstantQuery('DCGM_FI_DEV_GPU_UTIL{gpu="0"}', at))
    return out


def test_folded_instant_answers_equal_each_querys_own(prom, fleet_end):
    batch = _queries(fleet_end)
    answers = prom.run(batch)
    folded = prom.stats.queries
    assert set(answers) == set(batch)
    for query in batch:
        alone = prom.instant(query.query, query.at)
        got = answers[query]
        assert isinstance(got, InstantResult) and got.query == query.query
        assert _samples(got) == _samples(alone), query.query
    # One fold per instant, after the 1d shape's probe: the engine had not measured it,
    # and a day's window is heavy enough that one goes alone first (its samples then cut the folds).
    assert folded == 3


def test_a_scalar_query_cannot_be_tagged_but_still_gets_its_answer(prom, fleet_end):
    batch = [InstantQuery("scalar(vector(3))", fleet_end), InstantQuery("vector(4)", fleet_end)]
    answers = prom.run(batch)
    assert answers[batch[0]].scalar() == 3.0 and answers[batch[1]].scalar() == 4.0
    # The refused fold is not a failed query: every query got its answer.
    assert prom.stats.errors == 0 and prom.stats.retried_folds == 1 and prom.stats.queries == 3


def test_folded_range_answers_equal_each_querys_own(prom, fleet_end):
    start, end, step = fleet_end - timedelta(hours=3), fleet_end, timedelta(minutes=10)
    batch = [RangeQuery(f'sum by (version) (rate(nv_inference_count{{model="{m}"}}[15m]))', start, end, step)
             for m in MODELS]
    answers = prom.run(batch)
    assert prom.stats.queries == 1
    for query in batch:
        assert _series(answers[query]) == _series(prom.range(query.query, start, end, step))


def test_one_bad_query_in_a_fold_gets_its_own_error_and_the_others_their_answers(prom, fleet_end):
    good = [InstantQuery(f'sum(rate(http_requests_total{{service="{s.name}"}}[1h]))', fleet_end) for s in FLEET]
    bad = InstantQuery("sum(rate(http_requests_total[1h])", fleet_end)
    answers = prom.run([*good[:3], bad, *good[3:]])
    error = answers[bad]
    assert isinstance(error, QueryError) and error.query == bad.query
    assert error.error_type == "bad_data" and not error.server_fault and "parse error" in error.message
    assert prom.stats.errors == 1 and prom.stats.retried_folds == 1
    for query in good:
        assert _samples(answers[query]) == _samples(prom.instant(query.query, fleet_end))


def test_a_down_server_gives_every_query_its_own_unavailable_error(prometheus, fleet_end):
    source = PrometheusSource(prometheus.url, timeout=5, retries=0)
    batch = _queries(fleet_end)
    prometheus.stop()
    try:
        answers = source.run(batch)
    finally:
        prometheus.start()
    assert set(answers) == set(batch)
    for query, answer in answers.items():
        assert isinstance(answer, PrometheusUnavailable) and answer.server_fault and answer.query == query.query


def test_family_members_are_one_query_per_figure_and_equal_their_own_queries(prom, fleet_end):
    template = "sum$by(version, le) (increase($selector[1d]))"
    members = [InstantQuery.member(Family(template, f'model_prediction_score_bucket{{model="{m}"}}'), fleet_end)
               for m in MODELS]
    # A member that shares its label value with another, and one on an absent value (no data).
    members.append(InstantQuery.member(Family(template, 'model_prediction_score_bucket{model="ranker", }'),
                                       fleet_end))
    members.append(InstantQuery.member(Family(template, 'model_prediction_score_bucket{model="no-such"}'),
                                       fleet_end))
    answers = prom.run(members)
    # One query for the figure, after a probe: the engine had not measured this day-long
    # shape, so one label value's query goes first, alone, and the rest are cut on it.
    assert prom.stats.queries == 2
    assert prom.run(members) and prom.stats.queries == 3, "once learned: one query per figure"
    for query in members:
        own = prom.instant(query.query, fleet_end)
        assert _samples(answers[query]) == _samples(own), query.query
        assert all("model" not in s.labels for s in answers[query].samples)
    assert answers[members[-1]].samples == []


def test_a_failed_family_query_is_retried_member_by_member_each_with_its_own_error(prom, fleet_end):
    members = [InstantQuery.member(Family("sum$by(version) (rate($selector[5m])", f'nv_inference_count{{model="{m}"}}'),
                                   fleet_end) for m in MODELS[:3]]
    answers = prom.run(members)
    assert prom.stats.queries == 1 + len(members)
    for query in members:
        error = answers[query]
        assert isinstance(error, QueryError) and error.query == query.query and error.error_type == "bad_data"


def test_no_query_reads_more_than_the_sample_budget_once_learned(prometheus, fleet_end):
    batch = [InstantQuery(f'sum(rate(http_requests_total{{service="{s.name}",code=~"{c}"}}[{w}]))', fleet_end)
             for s in FLEET for c in ("5..", "2..", ".*") for w in ("1d", "3d", "7d")]
    unbounded = PrometheusSource(prometheus.url, timeout=30)
    whole = unbounded.run(batch)
    total = unbounded.stats.samples
    budget = total // 6
    bounded = PrometheusSource(prometheus.url, timeout=30, sample_budget=budget)
    for _cycle in range(2):  # learns each shape's samples per query, then folds on them
        bounded.run(batch)
    bounded.stats = dataclasses.replace(bounded.stats, queries=0, samples=0, max_query_samples=0)
    answers = bounded.run(batch)
    assert bounded.stats.samples == total
    # Heavy queries fold only with their own shape, so what a fold read tells what each reads.
    assert 0 < bounded.stats.max_query_samples <= budget
    assert bounded.stats.queries >= 6
    for query in batch:
        assert _samples(answers[query]) == _samples(whole[query])


def test_samples_read_are_the_servers_own_stats(prom, prometheus, fleet_end):
    query = 'sum(rate(http_requests_total{service="ranker"}[1d]))'
    prom.instant(query, fleet_end)
    raw = requests.post(f"{prometheus.url}/api/v1/query",
                        data={"query": query, "time": fleet_end.timestamp(), "stats": "all"}, timeout=10).json()
    expected = raw["data"]["stats"]["samples"]["totalQueryableSamples"]
    assert expected > 1000
    assert prom.stats.samples == prom.stats.max_query_samples == expected


def test_cost_and_drift_queries_do_not_grow_with_the_number_of_models(fleet_config_path, prometheus, fleet_end):
    config = load_config(fleet_config_path)
    # Each model again under a new name, on a model label value no series has (no data).
    copies = [dataclasses.replace(m, name=f"{m.name}-copy", inferences=None, preset="triton",
                                  predictions=re.sub(r'model="[^"]*"', f'model="{m.name}-copy"', m.predictions or "")
                                  or None, drift=dataclasses.replace(m.drift, log=None) if m.drift else None)
              for m in config.models]
    doubled = dataclasses.replace(config, models=[*config.models, *copies])
    counts = []
    for cfg in (config, doubled):
        source = PrometheusSource(prometheus.url, timeout=30)
        cost_signals(source, cfg, fleet_end)
        compute_config_drift(source, cfg, fleet_end)
        counts.append(source.stats.queries)
    # Per-model queries would double the count (one per model: 2x). What may differ is one query:
    # a fresh engine probes each unmeasured heavy shape with one value alone before cutting the
    # rest by what it read, and which chunk boundary that lands on depends on the values present.
    assert counts[0] <= counts[1] <= counts[0] + 1, counts


@pytest.mark.parametrize("value", ["a.b", "a|b", "(x)", "[y]", "p+q*", "^s$", "back\\slash", 'quo"te', "{n}"])
def test_a_merged_label_matcher_matches_exactly_its_values(value):
    # RE2 and Python's re agree on backslash-escaped punctuation.
    pattern = "|".join(regex_escape(v) for v in [value, "other"])
    assert re.fullmatch(pattern, value) and re.fullmatch(pattern, "other")
    assert not re.fullmatch(pattern, value + "x") and not re.fullmatch(pattern, "a")


def test_only_selectors_differing_in_one_equality_matcher_merge():
    template = "sum$by(version) (rate($selector[5m]))"
    same = [Family(template, f'nv_inference_count{{model="{m}",job="triton"}}') for m in ("a", "b")]
    other_job = Family(template, 'nv_inference_count{model="c",job="other"}')
    regex = Family(template, 'nv_inference_count{model=~"d.*",job="triton"}')
    opaque = Family(template, "nv_inference_count offset 5m")
    merges, lone = plan_merges([*same, other_job, regex, opaque])
    [(merge, values)] = merges.items()
    assert merge.label == "model" and values == {same[0]: "a", same[1]: "b"}
    assert set(lone) == {other_job, regex, opaque}
    assert merge.query(["a", "b"]) == ('sum by (version, model) (rate(nv_inference_count'
                                       '{job="triton",model=~"a|b"}[5m]))')
    assert parse_selector('m{a="x,y}", b!~"z\\"q"}')[1][1].value == 'z\\"q'
    assert render("max$by() ($selector)", "m", ()) == "max (m)"
    assert render("max$by(a) ($selector)", "m", ("b",)) == "max by (a, b) (m)"


def test_a_cold_batch_of_a_heavy_family_stays_within_the_budget_from_its_first_query(prometheus, fleet_end):
    template = "sum$by(version, le) (increase($selector[3d]))"
    members = [InstantQuery.member(Family(template, f'model_prediction_score_bucket{{model="{m}"}}'), fleet_end)
               for m in MODELS]
    unbounded = PrometheusSource(prometheus.url, timeout=30, sample_budget=10 ** 12)
    whole = unbounded.run(members)
    per_model = []
    for member in members:
        before = unbounded.stats.samples
        unbounded.instant(member.query, fleet_end)
        per_model.append(unbounded.stats.samples - before)
    assert sum(per_model) > 0
    # The budget is what folds are planned to read; members of one shape differ, so the
    # limit no query may pass is twice it (the daemon's: 500,000 planned, 1,000,000 limit).
    budget = int(1.5 * max(per_model))
    assert sum(per_model) > 2 * budget, "the whole family in one query would pass the limit"
    cold = PrometheusSource(prometheus.url, timeout=30, sample_budget=budget)
    answers = cold.run(members)
    assert 0 < cold.stats.max_query_samples <= 2 * budget, (per_model, cold.stats)
    assert cold.stats.samples == sum(per_model)
    for query in members:
        assert _samples(answers[query]) == _samples(whole[query]), query.query
