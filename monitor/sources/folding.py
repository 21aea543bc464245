"""Folding many PromQL queries into few, and splitting the answer back: pure string and label work.

Two ways to fold, both used by the query engine (`PrometheusSource.run`):

- **Tagged `or`.** Any queries evaluated with the same parameters: each is tagged
  with a `monitor_subquery` label by `label_replace` and the tagged vectors are
  joined with `or` (a balanced tree, so Prometheus' union work stays n log n). The
  answer is split on the tag. One bad sub-query fails the whole fold.
- **One query per figure across models (`Family`).** Queries that differ only in one
  label's value (`nv_inference_count{model="a"}` and `{model="b"}`) become one query
  over `model=~"a|b"` that also groups `by` that label; the answer is split on it.
  Prometheus reads each series once instead of once per model's query.

A `Family` is a template with up to three kinds of placeholder: `$selector` (the
member's series selector), `$by(labels)` (every aggregation's grouping; renders as
` by (labels)`, or nothing when there are none) and `$series(NAME; a->b, ...)` (the
member's matchers on metric NAME, or on the selector's own metric when NAME is empty,
`or` the same matchers with labels a, ... renamed to b, ... and copied back: the same
series under another scrape's label names, e.g. Prometheus' `exported_` prefix; put it
inside parentheses), and `$over(FUNC; RANGE; NAME; a->b, ...)`, the same two forms each read
as `FUNC(selector[RANGE])` before the renamed labels are copied back (a range function on
each raw series, which Prometheus evaluates far faster than one over an expression). The contract that keeps merged
numbers equal to per-member ones: **every aggregation in the template groups through
`$by(...)`**, so adding the merge label to each grouping keeps members apart.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Iterable

TAG_LABEL = "monitor_subquery"

_BY = re.compile(r"\$by\(([^)]*)\)")
_PLACEHOLDER = re.compile(r"\$by\((?P<by>[^)]*)\)|\$series\((?P<series>[^)]*)\)|\$over\((?P<over>[^)]*)\)"
                          r"|\$selector")
# One matcher of a selector: name, operator, double-quoted value (escapes kept).
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_SELECTOR = re.compile(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{(.*)\}\s*$", re.S)
# Characters RE2 treats specially; a literal label value in `=~` escapes them.
_RE2_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_RANGES = re.compile(r"\[([0-9a-z.]+)(?::[0-9a-z.]*)?\]")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_EQUALITY_VALUES = re.compile(r'=\s*"(?:[^"\\]|\\.)*"')


@dataclass(frozen=True)
class Family:
    """One member of a family of queries that differ only in one label's value (see the module doc).

    `template` holds `$selector` and `$by(...)`; `selector` is this member's series
    selector (`metric{matchers}` with double-quoted values).
    """

    template: str
    selector: str

    @property
    def query(self) -> str:
        """This member's own query: what it would send alone."""
        return render(self.template, self.selector, ())


# Producers build the same queries every cycle (a hundred models' GPU figures render a few
# thousand each minute); the texts are pure functions of their parts, so they are kept.
# Bounded: a few thousand strings of a few hundred bytes.
_RENDERED_KEPT = 8192


@functools.lru_cache(maxsize=_RENDERED_KEPT)
def render(template: str, selector: str, extra_by: tuple[str, ...]) -> str:
    """`template` with its placeholders filled in, `extra_by` added to each grouping."""

    def fill(match: re.Match[str]) -> str:
        if match.group("by") is not None:
            labels = [label.strip() for label in match.group("by").split(",") if label.strip()]
            labels += [label for label in extra_by if label not in labels]
            return f" by ({', '.join(labels)})" if labels else ""
        if match.group("series") is not None:
            metric, _, pairs = match.group("series").partition(";")
            return either_form(selector, metric.strip(), _renames(pairs))
        if match.group("over") is not None:
            function, duration, metric, pairs = (part.strip() for part in match.group("over").split(";", 3))
            return either_form(selector, metric, _renames(pairs), lambda s: f"{function}({s}[{duration}])")
        return selector

    # One pass, so nothing filled in is read as a placeholder again.
    return _PLACEHOLDER.sub(fill, template)


def _renames(pairs: str) -> dict[str, str]:
    return dict(tuple(side.strip() for side in pair.split("->", 1)) for pair in pairs.split(",") if "->" in pair)


def either_form(selector: str, metric: str, renames: dict[str, str], wrap=lambda s: s) -> str:
    """`selector`'s matchers on `metric` (its own when empty), `or` the series they pick when their
    labels arrive renamed (`renames`: name -> new name), those labels copied back under their
    original names. Without a renamed matcher (or a selector this cannot parse) only the first.
    `wrap` is applied to each selector before the labels are copied back.

    Each renamed label must be present (`new!=""`), so a negative matcher (`a!="x"`) does not
    pick every series that lacks the renamed label.
    """
    parsed = parse_selector(selector)
    if parsed is None:
        return wrap(selector)
    own, matchers = parsed
    metric = metric or own
    plain = wrap(f"{metric}{{{','.join(m.text() for m in matchers)}}}")
    moved = [name for name in dict.fromkeys(m.name for m in matchers) if name in renames]
    if not moved:
        return plain
    texts = [Matcher(renames.get(m.name, m.name), m.op, m.value).text() for m in matchers]
    texts += [f'{renames[name]}!=""' for name in moved]
    renamed = wrap(f"{metric}{{{','.join(texts)}}}")
    for name in moved:
        renamed = f'label_replace({renamed}, "{name}", "$1", "{renames[name]}", "(.*)")'
    return f"{plain} or {renamed}"


def grouped_labels(template: str) -> set[str]:
    """The labels a template's groupings already keep."""
    return {label.strip() for match in _BY.finditer(template) for label in match.group(1).split(",") if label.strip()}


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str  # as written between the quotes (escapes kept)

    def text(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


@functools.lru_cache(maxsize=_RENDERED_KEPT)
def parse_selector(selector: str) -> tuple[str, tuple[Matcher, ...]] | None:
    """(metric name or "", matchers) of `metric{a="x",...}`; None when it is not a plain selector."""
    match = _SELECTOR.match(selector)
    if not match:
        return None
    body, matchers, position = match.group(2), [], 0
    while position < len(body.rstrip()):
        found = _MATCHER.match(body, position)
        if not found or found.end() == position:
            return None
        matchers.append(Matcher(found.group(1), found.group(2), found.group(3)))
        position = found.end()
    return match.group(1) or "", tuple(matchers)


def escape_label_value(value: str) -> str:
    """Escape a label value for a double-quoted PromQL string (\\, " and newlines)."""
    return (str(value).replace("\\", "\\\\").replace('"', '\\"')
            .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))


def unescape(value: str) -> str:
    """A double-quoted PromQL string's content as the label value it stands for."""
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r", "t": "\t"}.get(m.group(1), m.group(1)), value)


def regex_escape(value: str) -> str:
    """A literal for RE2 (the label value itself, before PromQL string escaping)."""
    return _RE2_SPECIAL.sub(r"\\\1", value)


@dataclass(frozen=True)
class Merge:
    """Members of one family that differ only in `label`'s value: one query over all their values."""

    template: str
    metric: str
    common: tuple[Matcher, ...]
    label: str

    def query(self, values: Iterable[str]) -> str:
        """The merged query over `values` (label values, unescaped), grouped by `label` too."""
        distinct = sorted(set(values))
        if len(distinct) == 1:
            matcher = f'{self.label}="{escape_label_value(distinct[0])}"'
        else:
            pattern = "|".join(regex_escape(v) for v in distinct)
            matcher = f'{self.label}=~"{escape_label_value(pattern)}"'
        selector = f"{self.metric}{{{','.join([*(m.text() for m in self.common), matcher])}}}"
        return render(self.template, selector, (self.label,))

    @property
    def strip_label(self) -> bool:
        """Whether a member's own answer lacks `label` (so split answers drop it)."""
        return self.label not in grouped_labels(self.template)


def plan_merges(families: Iterable[Family]) -> tuple[dict[Merge, dict[Family, str]], list[Family]]:
    """Group family members into merges (member -> its label value), and those that merge with none.

    Members merge when they share the template and metric and all matchers but one
    equality matcher, on the same label. A member with several candidate labels joins
    the largest group.
    """
    candidates: dict[Merge, dict[Family, str]] = {}
    members = list(dict.fromkeys(families))
    for member in members:
        parsed = parse_selector(member.selector)
        if parsed is None:
            continue
        metric, matchers = parsed
        for i, matcher in enumerate(matchers):
            if matcher.op != "=":
                continue
            common = tuple(sorted(matchers[:i] + matchers[i + 1:], key=lambda m: (m.name, m.op, m.value)))
            if any(m.name == matcher.name for m in common):
                continue
            key = Merge(member.template, metric, common, matcher.name)
            candidates.setdefault(key, {})[member] = unescape(matcher.value)
    merges: dict[Merge, dict[Family, str]] = {}
    assigned: set[Family] = set()
    for key, group in sorted(candidates.items(), key=lambda kv: -len(kv[1])):
        group = {m: v for m, v in group.items() if m not in assigned}
        if len(group) > 1:
            merges[key] = group
            assigned.update(group)
    return merges, [m for m in members if m not in assigned]


def tagged_fold(queries: list[str]) -> str:
    """Tag each query with its index and join them with `or` in a balanced tree (one query: as is)."""
    if len(queries) == 1:
        return queries[0]
    tagged = [f'label_replace({q}, "{TAG_LABEL}", "{i}", "", "")' for i, q in enumerate(queries)]
    while len(tagged) > 1:
        tagged = [f"({tagged[i]}) or ({tagged[i + 1]})" if i + 1 < len(tagged) else tagged[i]
                  for i in range(0, len(tagged), 2)]
    return tagged[0]


def lookback_seconds(query: str) -> float:
    """The longest range (`[30d]`, `[7d:1m]`) a query reads; 300 (the default lookback) without one."""
    longest = 300.0
    for found in _RANGES.finditer(_STRINGS.sub('""', query)):
        seconds = sum(float(n) * _SECONDS[unit] for n, unit in _DURATION_PART.findall(found.group(1)))
        longest = max(longest, seconds)
    return longest


def shape(query: str) -> str:
    """The query with the values of `=` and `!=` matchers blanked: queries of one shape (the same
    figure for another model or service) read similar numbers of samples. Regular expressions
    are kept: `code=~".*"` reads more series than `code=~"5.."`."""
    return _EQUALITY_VALUES.sub('=""', query)
