"""The signal condition language: parsing, catalogue checks and three-valued evaluation."""

from __future__ import annotations

import pytest

from monitor.alerting.condition import (ConditionSyntaxError, Truth, check_against_catalogue, evaluate_condition,
                                        parse_condition)
from monitor.signals import Signal


def slo(name: str, value: float | None, slo_id: str = "checkout/availability", **extra: str) -> Signal:
    return Signal(name, {"slo_id": slo_id, "service": slo_id.split("/")[0], "slo": slo_id.split("/")[1], **extra},
                  value)


def truths(condition: str, signals: list[Signal]) -> dict[str, Truth]:
    return {i.labels["slo_id"] if "slo_id" in i.labels else i.labels.get("model", ""): i.truth
            for i in evaluate_condition(parse_condition(condition), signals)}


@pytest.mark.parametrize("text, column", [
    pytest.param("slo_page ==", 12, id="a comparison without a number is rejected at the end"),
    pytest.param("slo_page 1", 10, id="a missing comparison operator is rejected at the number"),
    pytest.param('slo_burn_rate{window="1h" > 2', 27, id="an unclosed selector is rejected at the comparison"),
    pytest.param("slo_page == 1 and", 18, id="a dangling and is rejected"),
    pytest.param("(slo_page == 1", 15, id="an unclosed parenthesis is rejected"),
    pytest.param('drift_psi{model=~"("} > 0.2', 18, id="an invalid regex is rejected at the regex"),
    pytest.param("slo_page = 1", 10, id="a single equals sign is not a comparison"),
    pytest.param("slo_page == 1 # x", 15, id="an unexpected character is rejected where it is"),
])
def test_syntax_errors_name_the_column(text, column):
    with pytest.raises(ConditionSyntaxError) as caught:
        parse_condition(text)
    assert caught.value.column == column


@pytest.mark.parametrize("text, problem", [
    pytest.param("slo_pages == 1", "unknown signal 'slo_pages'", id="an unknown signal is named"),
    pytest.param('slo_page{window="1h"} == 1', "signal 'slo_page' has no label 'window'",
                 id="a label the signal does not carry is named"),
    pytest.param('gpu_utilization{model="a"} < 0.2 and cost_per_1kk > 1', "unknown signal 'cost_per_1kk'",
                 id="an unknown signal on the right of and is found"),
])
def test_catalogue_problems(text, problem):
    problems = check_against_catalogue(parse_condition(text))
    assert len(problems) == 1 and problem in problems[0]


def test_a_valid_condition_has_no_catalogue_problems():
    assert check_against_catalogue(parse_condition(
        'slo_burn_rate{window="1h"} > 14.4 and slo_burn_rate{window="5m"} > 14.4 or slo_page == 1')) == []


@pytest.mark.parametrize("condition, signals, expected", [
    pytest.param("slo_page == 1", [slo("slo_page", 1.0), slo("slo_page", 0.0, "search/latency")],
                 {"checkout/availability": Truth.TRUE, "search/latency": Truth.FALSE},
                 id="each signal is one instance, compared with the threshold"),
    pytest.param("slo_page == 1", [slo("slo_page", None)], {"checkout/availability": Truth.UNKNOWN},
                 id="no data is unknown, never false"),
    pytest.param('slo_burn_rate{window="1h"} > 14.4 and slo_burn_rate{window="5m"} > 14.4',
                 [slo("slo_burn_rate", 20.0, window="1h"), slo("slo_burn_rate", 15.0, window="5m")],
                 {"checkout/availability": Truth.TRUE},
                 id="and joins two windows of one SLO despite their different window labels"),
    pytest.param('slo_burn_rate{window="1h"} > 14.4 and slo_burn_rate{window="5m"} > 14.4',
                 [slo("slo_burn_rate", 20.0, window="1h"), slo("slo_burn_rate", 3.0, window="5m")],
                 {"checkout/availability": Truth.FALSE}, id="and is false when the short window has recovered"),
    pytest.param('slo_burn_rate{window="1h"} > 14.4 and slo_burn_rate{window="5m"} > 14.4',
                 [slo("slo_burn_rate", 20.0, window="1h"), slo("slo_burn_rate", None, window="5m")],
                 {"checkout/availability": Truth.UNKNOWN}, id="true and unknown is unknown"),
    pytest.param('slo_burn_rate{window="1h"} > 14.4 and slo_burn_rate{window="5m"} > 14.4',
                 [slo("slo_burn_rate", 2.0, window="1h"), slo("slo_burn_rate", None, window="5m")],
                 {"checkout/availability": Truth.FALSE}, id="false and unknown is false"),
    pytest.param('slo_burn_rate{window="1h"} > 14.4 and slo_burn_rate{window="5m"} > 14.4',
                 [slo("slo_burn_rate", 20.0, window="1h"), slo("slo_burn_rate", 20.0, "other/x", window="5m")],
                 {"checkout/availability": Truth.FALSE}, id="and does not join different SLOs"),
    pytest.param("slo_ticket == 1 or slo_page == 1", [slo("slo_ticket", None), slo("slo_page", 1.0)],
                 {"checkout/availability": Truth.TRUE}, id="unknown or true is true"),
    pytest.param("slo_ticket == 1 or slo_page == 1", [slo("slo_ticket", None), slo("slo_page", 0.0)],
                 {"checkout/availability": Truth.UNKNOWN}, id="unknown or false is unknown"),
    pytest.param('drift_psi{model=~"rank.*"} > 0.2',
                 [Signal("drift_psi", {"model": "ranker", "version": "v2", "column": "prediction"}, 0.5),
                  Signal("drift_psi", {"model": "fraud", "version": "v1", "column": "prediction"}, 0.9)],
                 {"ranker": Truth.TRUE}, id="regex matchers are fully anchored and filter instances"),
])
def test_evaluation(condition, signals, expected):
    assert truths(condition, signals) == expected


def test_an_instance_carries_the_left_labels_and_both_sides_evidence():
    [instance] = evaluate_condition(parse_condition(
        'slo_burn_rate{window="1h"} > 14.4 and slo_burn_rate{window="5m"} > 14.4'),
        [slo("slo_burn_rate", 20.0, window="1h"), slo("slo_burn_rate", 15.0, window="5m")])
    assert instance.labels["window"] == "1h" and instance.value == 20.0
    assert instance.evidence["slo_burn_rate{window=1h}"] == 20.0
    assert instance.evidence["slo_burn_rate{window=5m}"] == 15.0
