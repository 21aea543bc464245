"""Hostile and broken spec inputs of the newer formats: one clear line each, naming FILE:LINE.

Pyrra `ServiceLevelObjective`s, Sloth's `PrometheusServiceLevel` CRD, OpenSLO list files,
counters without `{{.window}}`, thresholds and time slices, and the models' `default_slos`:
each row is a file a user could write by mistake or an attacker on purpose, and must end
as `tests/hostile.py` says (exit 1, one line naming the file and line, no traceback, fast).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.hostile import Outcome, assert_handled, run_in_process

PYRRA = """\
apiVersion: pyrra.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: api}
spec:
  target: "TARGET"
  window: WINDOW
  indicator:
    INDICATOR
"""
RATIO = "ratio: {errors: {metric: 'http_requests_total{code=\"500\"}'}, total: {metric: http_requests_total}}"

OPENSLO_THRESHOLD = """\
apiVersion: openslo/v1
kind: SLO
metadata: {name: latency}
spec:
  service: api
  objectives:
    - {target: 0.99, op: lte, value: VALUE}
  indicator:
    metadata: {name: latency}
    spec:
      thresholdMetric: {metricSource: {type: Prometheus, spec: {query: 'QUERY'}}}
"""

OPENSLO_SLICES = """\
apiVersion: openslo/v1
kind: SLO
metadata: {name: slices}
spec:
  service: api
  budgetingMethod: Timeslices
  objectives:
    - {target: 0.99, timeSliceTarget: SLICE_TARGET, timeSliceWindow: SLICE}
  indicator:
    metadata: {name: slices}
    spec:
      ratioMetric:
        good: {metricSource: {type: Prometheus, spec: {query: 'sum(ok_total)'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(all_total)'}}}
"""


def pyrra(target: str = "99.5", window: str = "28d", indicator: str = RATIO) -> str:
    return PYRRA.replace("TARGET", target).replace("WINDOW", window).replace("INDICATOR", indicator)


@dataclass(frozen=True)
class Row:
    files: dict[str, str]
    where: str  # "slo.yaml:5" or "monitor.yaml:3"


def spec(text: str, line: int) -> Row:
    return Row({"monitor.yaml": "slos: [slo.yaml]\n", "slo.yaml": text}, f"slo.yaml:{line}")


def model(text: str) -> Row:
    return Row({"monitor.yaml": f"models:\n  - {text}\n"}, "monitor.yaml:2")


ROWS = [
    pytest.param(spec(pyrra(indicator="ratio: {errors: {metric: 'x} or vector(1) #'}, total: {metric: t}}"), 8),
                 id="a Pyrra metric smuggling PromQL past the selector is refused"),
    pytest.param(spec(pyrra(indicator="bool_gauge: {metric: up, grouping: ['job) or vector(1']}"), 8),
                 id="a Pyrra grouping that is no label name is refused before it reaches sum by"),
    pytest.param(spec(pyrra(target="NaN"), 5), id="a NaN Pyrra target is refused"),
    pytest.param(spec(pyrra(target="inf"), 5), id="an infinite Pyrra target is refused"),
    pytest.param(spec(pyrra(target="99.9%"), 5), id="a Pyrra target with a percent sign is refused"),
    pytest.param(spec(pyrra(window="99999999999999d"), 6), id="an overflowing Pyrra window is refused"),
    pytest.param(spec(pyrra(window="0s"), 6), id="a zero Pyrra window is refused"),
    pytest.param(spec(pyrra(indicator="latencyNative: {total: {metric: h}, latency: -1s}"), 8),
                 id="a negative native-histogram latency is refused"),
    pytest.param(spec(pyrra(indicator="{}"), 8), id="a Pyrra SLO without an indicator is refused"),
    pytest.param(spec("apiVersion: sloth.slok.dev/v1\nkind: PrometheusServiceLevel\nspec: []\n", 3),
                 id="a Sloth CRD whose spec is a list is refused"),
    pytest.param(spec("apiVersion: sloth.slok.dev/v1\nkind: PrometheusServiceLevel\nmetadata: {name: a}\n", 1),
                 id="a Sloth CRD without a spec is refused"),
    pytest.param(spec("- - apiVersion: openslo/v1\n    kind: SLO\n", 1),
                 id="a list of lists is no OpenSLO layout"),
    pytest.param(spec(OPENSLO_THRESHOLD.replace("VALUE", ".nan").replace("QUERY", "lat_seconds_bucket"), 7),
                 id="a NaN latency threshold is refused"),
    pytest.param(spec(OPENSLO_THRESHOLD.replace("VALUE", ".inf").replace("QUERY", "queue_depth"), 7),
                 id="an infinite gauge threshold is refused"),
    pytest.param(spec(OPENSLO_THRESHOLD.replace("VALUE", "0.25").replace("QUERY", "lat_seconds_bucket{le=\"1\"}"), 7),
                 id="a threshold selector that picks the bucket itself is refused"),
    pytest.param(spec(OPENSLO_SLICES.replace("SLICE_TARGET", ".nan").replace("SLICE", "1m"), 8),
                 id="a NaN time-slice target is refused"),
    pytest.param(spec(OPENSLO_SLICES.replace("SLICE_TARGET", "0.95").replace("SLICE", "10s"), 8),
                 id="a time slice shorter than a minute is refused"),
    pytest.param(spec(OPENSLO_SLICES.replace("SLICE_TARGET", "0.95").replace("SLICE", "'1m]) or vector(1'"), 8),
                 id="a time-slice window smuggling PromQL is refused"),
    pytest.param(model("{name: m, preset: triton, default_slos: {availability: .nan}}"),
                 id="a NaN default availability objective is refused"),
    pytest.param(model("{name: m, preset: kserve, default_slos: {latency: {threshold: 1e400s}}}"),
                 id="an overflowing default latency threshold is refused"),
    pytest.param(model("{name: m, preset: seldon, default_slos: {enabled: maybe}}"),
                 id="default_slos enabled that is no boolean is refused"),
    pytest.param(model("{name: m, preset: triton, default_slos: {availabilty: 0.99}}"),
                 id="a misspelt default_slos key is refused"),
]


@pytest.mark.parametrize("row", ROWS)
def test_a_broken_spec_input_is_one_line_naming_its_file_and_line(tmp_path, capsys, row):
    for name, text in row.files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    outcome = run_in_process(["check", "--config", tmp_path / "monitor.yaml"], capsys)
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    assert lines and lines[-1] == "1 problem(s) found", outcome.stderr
    assert_handled(Outcome(outcome.code, outcome.stdout, "\n".join(lines[:-1]), outcome.seconds),
                   f"{tmp_path}/{row.where}: ")
