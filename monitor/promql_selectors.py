"""PromQL names, label matchers and series selectors, checked before we build them into queries.

A model's `inferences`, `predictions`, `gpus`, `cpu` and `memory` selectors and its
`version_label` are pasted into the queries we send (`sum by (<version_label>) ...`,
`increase(<inferences>[5m])`). Text that is not what it claims to be would change
what those queries mean (`version_label: "x) or vector(1"` turns a grouping into
an injected expression), so each is parsed here, by Prometheus' own lexical rules
(`model.LabelNameRE`, the PromQL lexer's strings), and refused with a reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_OPERATORS = ("=~", "!~", "!=", "=")  # longest first: "=~" before "="
_ESCAPES = set("abfnrtv\\\"'`") | {"x", "u", "U"} | set("01234567")


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str  # as written, between its quotes


@dataclass(frozen=True)
class SeriesSelector:
    metric: str | None
    matchers: tuple[Matcher, ...]


class SelectorSyntaxError(ValueError):
    """Text that is not a PromQL label name, matcher list or series selector; says why."""


def is_label_name(text: str) -> bool:
    return LABEL_NAME.fullmatch(text) is not None


def parse_series_selector(text: str) -> SeriesSelector:
    """`metric{a="x", b=~"y.*"}`, `metric` or `{a="x"}`; raise SelectorSyntaxError saying what is wrong."""
    text = text.strip()
    if not text:
        raise SelectorSyntaxError("is empty")
    name_match = METRIC_NAME.match(text)
    metric = name_match.group(0) if name_match else None
    rest = text[name_match.end():].lstrip() if name_match else text
    if not rest:
        return SeriesSelector(metric, ())
    if not rest.startswith("{"):
        raise SelectorSyntaxError(f"unexpected {rest[:20]!r} (expected metric{{label=\"value\", ...}})")
    matchers, end = _parse_matchers(rest, 1)
    if rest[end:].strip():
        raise SelectorSyntaxError(f"unexpected {rest[end:].strip()[:20]!r} after the closing brace")
    # `{}` parses; whether selecting everything is acceptable is the caller's to say.
    return SeriesSelector(metric, tuple(matchers))


def _parse_matchers(text: str, pos: int) -> tuple[list[Matcher], int]:
    """Matchers from just after `{` to the matching `}`; returns them and the index after `}`."""
    matchers: list[Matcher] = []
    while True:
        pos = _skip_space(text, pos)
        if pos >= len(text):
            raise SelectorSyntaxError("has no closing '}'")
        if text[pos] == "}":
            return matchers, pos + 1
        name_match = LABEL_NAME.match(text, pos)
        if not name_match:
            raise SelectorSyntaxError(f"expected a label name at {text[pos:pos + 20]!r} "
                                      f"(label names match [a-zA-Z_][a-zA-Z0-9_]*)")
        pos = _skip_space(text, name_match.end())
        op = next((o for o in _OPERATORS if text.startswith(o, pos)), None)
        if op is None:
            raise SelectorSyntaxError(f"expected =, !=, =~ or !~ after label {name_match.group(0)!r}")
        pos = _skip_space(text, pos + len(op))
        value, pos = _parse_string(text, pos)
        matchers.append(Matcher(name_match.group(0), op, value))
        pos = _skip_space(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos += 1  # PromQL allows a trailing comma
        elif pos < len(text) and text[pos] != "}":
            raise SelectorSyntaxError(f"expected ',' or '}}' at {text[pos:pos + 20]!r}")


def _parse_string(text: str, pos: int) -> tuple[str, int]:
    """A PromQL string literal ("...", '...' or `...`) starting at `pos`; its content and the index after it."""
    if pos >= len(text) or text[pos] not in "\"'`":
        raise SelectorSyntaxError(f"expected a quoted label value at {text[pos:pos + 20]!r}")
    quote = text[pos]
    i = pos + 1
    while i < len(text):
        ch = text[i]
        if ch == quote:
            return text[pos + 1:i], i + 1
        if ch == "\n" and quote != "`":
            break
        if ch == "\\" and quote != "`":
            if i + 1 >= len(text) or text[i + 1] not in _ESCAPES:
                raise SelectorSyntaxError(f"has an unknown escape in a label value at {text[i:i + 6]!r}")
            i += 2
            continue
        i += 1
    raise SelectorSyntaxError(f"has an unterminated label value starting at {text[pos:pos + 20]!r}")


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos
