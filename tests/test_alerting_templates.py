"""Annotation templates: Prometheus syntax, humanized numbers, and "no data" instead of errors."""

from __future__ import annotations

import time

import pytest

from monitor.alerting.templates import render, template_problem

CASES = [
    pytest.param("{{ $labels.model }} {{ $labels.version }} drifted", {"model": "ranker", "version": "v2"}, 1.0, {},
                 "ranker v2 drifted", id="labels render by name"),
    pytest.param("up {{ $value | humanizePercentage }}", {}, 0.3125, {}, "up 31.25%",
                 id="a ratio renders as a percentage"),
    pytest.param("age {{ $value | humanizeDuration }}", {}, 5400.0, {}, "age 1h30m",
                 id="seconds render as a Prometheus duration"),
    pytest.param("burn {{ $evidence.burn_rate_1h | humanize }}", {}, 1.0, {"burn_rate_1h": 14.52}, "burn 14.52",
                 id="evidence renders by name"),
    pytest.param("PSI {{ $evidence.drift_psi | humanize }}", {}, None, {}, "PSI no data",
                 id="evidence the alert does not carry reads as no data, not a template error"),
    pytest.param("requests {{ $value | humanize }}", {}, 1234567.0, {}, "requests 1.235M",
                 id="large numbers get an SI suffix"),
]


@pytest.mark.parametrize("template, labels, value, evidence, expected", CASES)
def test_annotation_templates(template, labels, value, evidence, expected):
    assert render(template, labels, value, evidence) == expected


def test_a_broken_template_is_reported_at_load_not_at_3am():
    assert template_problem("{{ $labels.model ") is not None
    assert template_problem("{{ $labels.model }}") is None


def test_label_values_render_as_text_not_markup():
    # Escaping for Slack and HTML happens where each output renders; a template keeps the raw text.
    assert render("{{ $labels.model }}", {"model": "<!channel>"}, 1.0, {}) == "<!channel>"


# -- the sandbox's bounds: rule files are untrusted text rendered inside the cycle --------

@pytest.mark.parametrize("text", ["{{ 9**9**9 }}", "{{ 'a' * 10**9 }}", "{{ 'ab' * 99999999 }}", "{{ -(10**100) }}",
                                  "{% for x in [1, 2] %}{% for y in [3] %}{{ x }}{% endfor %}{% endfor %}",
                                  "{% for x in 'a' * 16000 %}{% endfor %}" * 100,
                                  "{% for k in $labels recursive %}{{ loop($labels) }}{% endfor %}"])
def test_template_bombs_end_within_two_seconds_at_load_and_at_render(text):
    started = time.monotonic()
    assert template_problem(text) is not None
    assert render(text, {"model": "ranker"}, 1.0).startswith("<template error:")
    assert time.monotonic() - started < 2.0


def test_a_templates_output_is_capped_even_when_each_piece_is_small():
    text = "{% for k, v in $labels.items() %}" + "{{ k }}={{ v }} " * 200 + "{% endfor %}"
    labels = {f"label_{i}": "x" * 40 for i in range(30)}
    assert "longer than" in render(text, labels, 1.0)


def test_ordinary_templates_still_render():
    assert render("{{ $labels.model | upper }} {{ $labels.x | default('none') }} {{ $value | humanizePercentage }}",
                  {"model": "ranker"}, 0.25) == "RANKER none 25%"
    assert render("{% for k, v in $labels.items() %}{{ k }}={{ v }};{% endfor %}", {"a": "1", "b": "2"}, None) \
        == "a=1;b=2;"
    assert template_problem("{{ $labels.service }} {{ $evidence.burn_rate_1h | humanize }}") is None
