"""Spec queries written as plain counters, without Sloth's `{{.window}}`, made into window rates.

OpenSLO's Prometheus examples and Pyrra's indicators name counters (`sum(http_requests{...})`,
`prometheus_http_requests_total{code=~"5.."}`) and leave the rate window to the tool. We
apply it where the meaning is unambiguous: the query is one series selector, optionally
inside one `sum` / `sum by (...)`; it becomes `rate(selector[{{.window}}])`, inside the same
aggregation. Anything else (a ratio, a function, `offset`) has no single place for the
window, so it is refused with a message saying to write `rate(...[{{.window}}])` itself.
"""

from __future__ import annotations

import promql_parser

WINDOW = "{{.window}}"


class NotACounterSelector(ValueError):
    """A query monitor cannot apply the rate window to: the message says why."""


def selector(query: str) -> promql_parser.VectorSelector:
    """The query parsed as one series selector (no `offset`, no `@`); NotACounterSelector otherwise."""
    try:
        expr = promql_parser.parse(query.strip())
    except Exception as exc:  # noqa: BLE001 - the parser's errors are ValueError or a panic
        raise NotACounterSelector(f"is not valid PromQL: {exc}") from None
    if not isinstance(expr, promql_parser.VectorSelector):
        raise NotACounterSelector("must be a series selector such as metric{label=\"value\"}")
    if expr.offset is not None or expr.at is not None:
        raise NotACounterSelector("uses offset or @, which cannot take the rate window")
    return expr


def windowed_rate(query: str) -> str:
    """`rate(sel[{{.window}}])` for a selector, `sum by (x) (rate(sel[{{.window}}]))` for `sum by (x) (sel)`."""
    try:
        expr = promql_parser.parse(query.strip())
    except Exception as exc:  # noqa: BLE001
        raise NotACounterSelector(f"is not valid PromQL: {exc}") from None
    if isinstance(expr, promql_parser.VectorSelector):
        selector(query)
        return f"rate({query.strip()}[{WINDOW}])"
    if (isinstance(expr, promql_parser.AggregateExpr) and str(expr.op) == "sum" and expr.param is None
            and isinstance(expr.expr, promql_parser.VectorSelector)):
        inner = selector(str(expr.expr))
        # The modifier reads "by (a, b)" / "without (a)", or "None" for a plain sum.
        modifier = str(expr.modifier) if expr.modifier is not None else "None"
        if modifier == "None":
            return f"sum(rate({inner}[{WINDOW}]))"
        return f"sum {modifier} (rate({inner}[{WINDOW}]))"
    raise NotACounterSelector(
        f"has no {WINDOW}; monitor applies the rate window only to a counter selector, optionally inside "
        f"one sum(...): write rate(...[{WINDOW}]) in the query yourself")
