"""Annotation templates: Prometheus syntax, humanized numbers, and "no data" instead of errors."""

from __future__ import annotations

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
