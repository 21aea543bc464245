"""Annotation templates, written as in Prometheus alerting rules.

`{{ $labels.service }}`, `{{ $value }}` and `{{ $value | humanizePercentage }}` read
the same here as in a Prometheus rule file. They are rendered with Jinja2's
sandbox after rewriting `$labels`/`$value` to plain names (Jinja2 has no `$`),
and a missing label renders empty, as Prometheus does.

Rule files are untrusted text, so the sandbox is bounded too: the source, the
output and every integer have a maximum size, only size-preserving filters and
methods are available, and statements that build or recurse (set, macro,
include, nested for) are refused when the rule file is loaded.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from functools import lru_cache
from datetime import timedelta
from typing import Any, Callable, Mapping

from jinja2 import Template, TemplateSyntaxError, Undefined, nodes
from jinja2.exceptions import SecurityError
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


# Bounds on one annotation: its source, its output, and the integers it may compute.
# A rule file is untrusted text rendered inside the daemon's cycle, so a template
# must not be able to hang it or fill its memory (`{{ 9**9**9 }}`, `{{ 'a' * 10**9 }}`).
MAX_TEMPLATE_CHARS = 8192
MAX_OUTPUT_CHARS = 16384
MAX_INT_BITS = 256
# Items one for loop may walk: a loop over a 16k-character string, repeated down an
# 8k template, would otherwise cost seconds per alert without printing a thing.
MAX_LOOP_ITEMS = 1000
# Statements an annotation has no use for, and that would let it build values that
# grow without bound (`set x = x ~ x` doubling) or recurse (macros, includes).
_FORBIDDEN_STATEMENTS = (nodes.Macro, nodes.CallBlock, nodes.FilterBlock, nodes.With, nodes.Block, nodes.Extends,
                         nodes.Include, nodes.Import, nodes.FromImport, nodes.Assign, nodes.AssignBlock,
                         nodes.Scope, nodes.ScopedEvalContextModifier, nodes.EvalContextModifier)
# Methods a template may call: ones whose output is no bigger than their input.
_SAFE_METHODS = {
    str: {"upper", "lower", "title", "capitalize", "casefold", "strip", "lstrip", "rstrip", "startswith",
          "endswith", "split", "rsplit", "count", "find", "rfind", "isdigit", "isalpha", "isalnum",
          "removeprefix", "removesuffix"},
    dict: {"get", "items", "keys", "values"},
}
_SAFE_FILTERS = ("abs", "capitalize", "count", "d", "default", "e", "escape", "first", "float", "int", "join",
                 "last", "length", "list", "lower", "max", "min", "round", "sort", "string", "sum", "title",
                 "trim", "truncate", "unique", "upper")


class TemplateBoundError(SecurityError):
    """A template tried to compute or print more than an annotation may."""


def _bounded(value: object) -> object:
    """The value, unless it is bigger than an annotation may hold."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise TemplateBoundError(f"an integer larger than {MAX_INT_BITS} bits")
    if isinstance(value, (str, list, tuple, dict)) and len(value) > MAX_OUTPUT_CHARS:
        raise TemplateBoundError(f"a value longer than {MAX_OUTPUT_CHARS} characters or items")
    return value


def _loop_items(iterable: object) -> list:
    """The items a for loop walks, refused past MAX_LOOP_ITEMS (every loop's iterable goes through this)."""
    items = list(itertools.islice(iterable, MAX_LOOP_ITEMS + 1))  # type: ignore[call-overload]
    if len(items) > MAX_LOOP_ITEMS:
        raise TemplateBoundError(f"a for loop over more than {MAX_LOOP_ITEMS} items")
    return items


def _bounded_filter(function):
    def bounded(*args, **kwargs):
        return _bounded(function(*args, **kwargs))
    bounded.__name__ = function.__name__
    # Keep the context/environment passing marker of filters such as `default`.
    if hasattr(function, "jinja_pass_arg"):
        bounded.jinja_pass_arg = function.jinja_pass_arg  # type: ignore[attr-defined]
    return bounded


class _BoundedSandbox(SandboxedEnvironment):
    """Jinja2's sandbox, with arithmetic and calls bounded in what they can produce.

    Intercepted operators go through `call_binop`, and Jinja does not fold an
    intercepted operator at compile time (`BinExpr.as_const`), so `{{ 9**9**9 }}` is
    refused when rendered instead of hanging the compiler.
    """

    intercepted_binops = frozenset({"**", "*", "/", "//", "%", "+", "-"})
    intercepted_unops = frozenset({"-", "+"})

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
            if abs(left) > 1 and right * left.bit_length() > MAX_INT_BITS + 64:
                raise TemplateBoundError(f"an integer larger than {MAX_INT_BITS} bits")
        if operator == "*":
            for count, other in ((left, right), (right, left)):
                if isinstance(count, int) and isinstance(other, (str, list, tuple)) \
                        and count * len(other) > MAX_OUTPUT_CHARS:
                    raise TemplateBoundError(f"a value longer than {MAX_OUTPUT_CHARS} characters or items")
        if operator == "%" and isinstance(left, str):
            raise SecurityError("%-formatting of strings is not available in annotations")
        return _bounded(super().call_binop(context, operator, left, right))

    def call_unop(self, context, operator, arg):
        return _bounded(super().call_unop(context, operator, arg))

    def is_safe_callable(self, obj: object) -> bool:
        owner = getattr(obj, "__self__", None)
        allowed = _SAFE_METHODS.get(type(owner))
        return allowed is not None and getattr(obj, "__name__", None) in allowed

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (Jinja's signature)
        if isinstance(__obj, Undefined):
            raise SecurityError(f"{__obj._undefined_name!r} is not defined in annotations")
        if not __self.is_safe_callable(__obj):
            raise SecurityError(f"calling {getattr(__obj, '__name__', type(__obj).__name__)!r} "
                                f"is not available in annotations")
        return _bounded(__context.call(__obj, *args, **kwargs))


_ENV = _BoundedSandbox(autoescape=False, keep_trailing_newline=False)
_ENV.globals.clear()  # no range(), lipsum(), dict(), cycler(): nothing an annotation needs
_ENV.filters = {name: _bounded_filter(_ENV.filters[name]) for name in _SAFE_FILTERS}
_ENV.filters.update(humanize=humanize, humanizePercentage=humanize_percentage,
                    humanizeDuration=humanize_duration, _loop_items=_loop_items)
_ENV.tests = {name: _ENV.tests[name] for name in ("defined", "undefined", "none", "number", "string", "eq",
                                                  "ne", "lt", "le", "gt", "ge", "in", "divisibleby")}

# Labels a rule's alerts typically carry, so `check` renders each template once.
SAMPLE_LABELS = {"alertname": "SampleAlert", "severity": "page", "service": "sample-service", "slo": "sample",
                 "slo_id": "sample-service-sample", "model": "sample-model", "version": "v1", "column": "feature",
                 "pipeline": "sample-pipeline"}


def _to_jinja(template: str) -> str:
    return _DOLLAR_NAMES.sub(r"\1", template)


def sandbox(*, autoescape: bool = False, finalize: Callable[[Any], Any] | None = None) -> SandboxedEnvironment:
    """The bounded annotation sandbox, with HTML autoescape or an output `finalize` (message templates)."""
    return _ENV.overlay(autoescape=autoescape, finalize=finalize)


def compile_template(template: str, env: SandboxedEnvironment | None = None,
                     max_chars: int = MAX_TEMPLATE_CHARS) -> Template:
    """The template compiled in the bounded sandbox; raises on syntax, size and forbidden statements."""
    env = env or _ENV
    if len(template) > max_chars:
        raise TemplateBoundError(f"the template is longer than {max_chars} characters")
    source = _to_jinja(template)
    tree = env.parse(source)
    for node in tree.find_all(_FORBIDDEN_STATEMENTS):
        raise TemplateBoundError(f"'{type(node).__name__.lower()}' statements are not available in annotations "
                                 f"(template line {node.lineno})")
    for loop in tree.find_all(nodes.For):
        for inner in loop.find_all(nodes.For):
            raise TemplateBoundError(f"nested for loops are not available in annotations "
                                     f"(template line {inner.lineno})")
        if loop.recursive:
            raise TemplateBoundError(f"recursive for loops are not available in annotations "
                                     f"(template line {loop.lineno})")
        bounded = nodes.Filter(loop.iter, "_loop_items", [], [], None, None, lineno=loop.lineno)
        loop.iter = bounded.set_environment(env)
    return env.from_string(tree)


def _compile(template: str) -> Template:
    return compile_template(template)


@lru_cache(maxsize=1024)
def _compiled(template: str) -> Template:
    # Compiling is ~100x the cost of rendering, and a rule's templates never change.
    return _compile(template)


def _render_bounded(compiled: Template, labels: Mapping[str, str], value: float | None,
                    evidence: Mapping[str, float | None]) -> str:
    return render_compiled(compiled, {"labels": dict(labels), "value": value, "evidence": _Evidence(evidence)})


def render_compiled(compiled: Template, context: Mapping[str, Any], max_output_chars: int = MAX_OUTPUT_CHARS) -> str:
    """Render a compiled template, refusing output past `max_output_chars`; raises on any failure."""
    parts: list[str] = []
    length = 0
    for chunk in compiled.generate(**context):
        length += len(chunk)
        if length > max_output_chars:
            raise TemplateBoundError(f"the output is longer than {max_output_chars} characters")
        parts.append(chunk)
    return "".join(parts)


def render_checked(template: str, **context: Any) -> str:
    """Render a short template (a URL, a line) in the annotation sandbox; raises on any failure."""
    return render_compiled(_compiled(template), context)


def template_problem(template: str, labels: Mapping[str, str] | None = None) -> str | None:
    """Why a template does not compile, or fails when rendered once against sample labels; else None."""
    try:
        compiled = _compiled(template)  # cached: rule files are re-read every cycle
    except TemplateSyntaxError as exc:
        return f"invalid template: {exc.message} (template line {exc.lineno})"
    except SecurityError as exc:
        return f"invalid template: {exc}"
    try:
        _render_bounded(compiled, {**SAMPLE_LABELS, **(labels or {})}, 1.0, {})
    except Exception as exc:  # noqa: BLE001 - any failure of the sample render is the template's problem
        return f"template fails when rendered: {exc}"
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
        return _render_bounded(_compiled(template), labels, value, evidence or {})
    except Exception as exc:  # noqa: BLE001 - a bad template must not stop the cycle
        # The notification still goes out (with the error in place of the text); the
        # log line is how the rule's author finds out.
        log.warning("annotation template %r failed for %s: %s", template, dict(labels), exc)
        return f"<template error: {exc}>"
