"""Annotation templates, written as in Prometheus alerting rules.

`{{ $labels.service }}`, `{{ $value }}` and `{{ $value | humanizePercentage }}` read
the same here as in a Prometheus rule file. They are rendered with Jinja2's
sandbox after rewriting `$labels`/`$value` to plain names (Jinja2 has no `$`),
and a missing label renders empty, as Prometheus does.
"""

from __future__ import annotations

import logging
import math
import re
from functools import lru_cache
from datetime import timedelta
from typing import Mapping

from jinja2 import Template, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from monitor.durations import format_duration

log = logging.getLogger(__name__)

_DOLLAR_NAMES = re.compile(r"\$(labels|value|evidence)\b")


def _number(value: object) -> float | None:
    """The value as a float, or None when it is missing, undefined or NaN."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def humanize(value: float | None) -> str:
    """A number with an SI suffix (1.234k), as Prometheus' humanize."""
    value = _number(value)
    if value is None:
        return "no data"
    if value == 0 or 1e-3 <= abs(value) < 1e3:
        return f"{value:.4g}"
    prefixes = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "u"))
    for factor, prefix in prefixes:
        if abs(value) >= factor:
            return f"{value / factor:.4g}{prefix}"
    return f"{value:.4g}"


def humanize_percentage(value: float | None) -> str:
    """0.0312 -> '3.12%'."""
    value = _number(value)
    if value is None:
        return "no data"
    return f"{value * 100:.4g}%"


def humanize_duration(value: float | None) -> str:
    """Seconds as a Prometheus duration: 5400 -> '1h30m'."""
    value = _number(value)
    if value is None:
        return "no data"
    return format_duration(timedelta(seconds=round(value)))


_ENV = SandboxedEnvironment(autoescape=False, keep_trailing_newline=False)
_ENV.filters.update(humanize=humanize, humanizePercentage=humanize_percentage,
                    humanizeDuration=humanize_duration)


def _to_jinja(template: str) -> str:
    return _DOLLAR_NAMES.sub(r"\1", template)


@lru_cache(maxsize=1024)
def _compiled(template: str) -> Template:
    # Compiling is ~100x the cost of rendering, and a rule's templates never change.
    return _ENV.from_string(_to_jinja(template))


def template_problem(template: str) -> str | None:
    """Why a template does not compile, or None."""
    try:
        _ENV.from_string(_to_jinja(template))
    except TemplateSyntaxError as exc:
        return f"invalid template: {exc.message} (template line {exc.lineno})"
    return None


class _Evidence(dict):
    """Evidence for templates: a number the alert does not carry (no data, or a signal
    without it) reads as None, which the humanize filters print as "no data"."""

    def __missing__(self, key: str) -> None:
        return None


def render(template: str, labels: Mapping[str, str], value: float | None,
           evidence: Mapping[str, float | None] | None = None) -> str:
    """Render one annotation for an alert instance."""
    try:
        return _compiled(template).render(labels=dict(labels), value=value, evidence=_Evidence(evidence or {}))
    except Exception as exc:  # noqa: BLE001 - a bad template must not stop the cycle
        # The notification still goes out (with the error in place of the text); the
        # log line is how the rule's author finds out.
        log.warning("annotation template %r failed for %s: %s", template, dict(labels), exc)
        return f"<template error: {exc}>"
