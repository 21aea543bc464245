"""The small condition language rules use over the daemon's signals.

    slo_page == 1
    slo_burn_rate{window="1h"} > 14.4 and slo_burn_rate{window="5m"} > 14.4
    drift_detected{column="prediction"} == 1 or drift_share >= 0.5

A comparison selects signals by name and label matchers (`=`, `!=`, `=~`, `!~`, as
in PromQL) and compares each one's value with a number. `and` / `or` combine
comparisons, `and` binding tighter, with parentheses for grouping.

Three-valued on purpose: a signal whose value is None (no data) makes its
comparison UNKNOWN, never false, so "no data" cannot resolve an alert. `and` and
`or` follow Kleene's logic.

Joining, like PromQL's vector matching but without `on(...)`: the two sides of an
`and` match when they agree on every label they share, except labels some
selector in the condition pins with `=` (so `window="1h"` and `window="5m"` still
join on the SLO). The result carries the left side's labels, as in PromQL.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Iterable, Mapping

from monitor.errors import MonitorError
from monitor.signals import CATALOGUE, Signal


class ConditionSyntaxError(MonitorError):
    """A condition does not parse; `column` is 1-based within the condition text."""

    def __init__(self, message: str, column: int):
        self.column = column
        super().__init__(f"column {column}: {message}")


class Truth(Enum):
    TRUE = "true"
    FALSE = "false"
    UNKNOWN = "unknown"

    def and_(self, other: "Truth") -> "Truth":
        if Truth.FALSE in (self, other):
            return Truth.FALSE
        if Truth.UNKNOWN in (self, other):
            return Truth.UNKNOWN
        return Truth.TRUE

    def or_(self, other: "Truth") -> "Truth":
        if Truth.TRUE in (self, other):
            return Truth.TRUE
        if Truth.UNKNOWN in (self, other):
            return Truth.UNKNOWN
        return Truth.FALSE


COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne,
}


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str  # =, !=, =~, !~
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        # PromQL regexes are fully anchored.
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True)
class Comparison:
    signal: str
    matchers: tuple[Matcher, ...]
    comparator: str
    threshold: float
    column: int  # where the signal name starts, for error messages


@dataclass(frozen=True)
class BinaryOp:
    op: str  # "and" | "or"
    left: "Condition"
    right: "Condition"


Condition = Comparison | BinaryOp


@dataclass(frozen=True)
class Instance:
    """One labelled outcome of a condition: the alert instance it would be."""

    labels: Mapping[str, str]
    truth: Truth
    value: float | None
    evidence: Mapping[str, float | None] = field(default_factory=dict)


# -- parsing --------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))
  | (?P<name>[a-zA-Z_][a-zA-Z0-9_]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>==|!=|>=|<=|=~|!~|>|<|=)
  | (?P<punct>[{}(),])
""", re.VERBOSE)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    column: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ConditionSyntaxError(f"unexpected character {text[pos]!r}", pos + 1)
        if match.lastgroup != "space":
            tokens.append(_Token(match.lastgroup or "", match.group(), pos + 1))
        pos = match.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self, kind: str, text: str | None = None, what: str | None = None) -> _Token:
        token = self.peek()
        if token.kind != kind or (text is not None and token.text != text):
            found = "the end" if token.kind == "end" else repr(token.text)
            raise ConditionSyntaxError(f"expected {what or text or kind}, found {found}", token.column)
        self.pos += 1
        return token

    def parse(self) -> Condition:
        condition = self.parse_or()
        self.take("end", what="'and', 'or' or the end")
        return condition

    def parse_or(self) -> Condition:
        left = self.parse_and()
        while self.peek().kind == "name" and self.peek().text == "or":
            self.pos += 1
            left = BinaryOp("or", left, self.parse_and())
        return left

    def parse_and(self) -> Condition:
        left = self.parse_atom()
        while self.peek().kind == "name" and self.peek().text == "and":
            self.pos += 1
            left = BinaryOp("and", left, self.parse_atom())
        return left

    def parse_atom(self) -> Condition:
        if self.peek().text == "(":
            self.pos += 1
            inner = self.parse_or()
            self.take("punct", ")")
            return inner
        name = self.take("name", what="a signal name")
        if name.text in ("and", "or"):
            raise ConditionSyntaxError(f"expected a signal name, found {name.text!r}", name.column)
        matchers: list[Matcher] = []
        if self.peek().text == "{":
            self.pos += 1
            while self.peek().text != "}":
                label = self.take("name", what="a label name")
                op = self.take("op", what="a label matcher (=, !=, =~, !~)")
                if op.text not in ("=", "!=", "=~", "!~"):
                    raise ConditionSyntaxError(f"expected a label matcher (=, !=, =~, !~), found {op.text!r}",
                                               op.column)
                value_token = self.take("string", what="a quoted label value")
                value = _unquote(value_token.text)
                if op.text in ("=~", "!~"):
                    try:
                        re.compile(value)
                    except re.error as exc:
                        raise ConditionSyntaxError(f"invalid regex {value!r}: {exc}", value_token.column) from None
                matchers.append(Matcher(label.text, op.text, value))
                if self.peek().text == ",":
                    self.pos += 1
                elif self.peek().text != "}":
                    self.take("punct", "}", what="',' or '}'")
            self.take("punct", "}")
        comparator = self.take("op", what="a comparison (>, <, >=, <=, ==, !=)")
        if comparator.text not in COMPARATORS:
            raise ConditionSyntaxError(f"expected a comparison (>, <, >=, <=, ==, !=), found {comparator.text!r}",
                                       comparator.column)
        threshold = self.take("number", what="a number")
        return Comparison(name.text, tuple(matchers), comparator.text, float(threshold.text), name.column)


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def parse_condition(text: str) -> Condition:
    """Parse a condition; raise ConditionSyntaxError naming the column."""
    return _Parser(text).parse()


def comparisons(condition: Condition) -> list[Comparison]:
    """Every comparison in a condition, left to right."""
    if isinstance(condition, Comparison):
        return [condition]
    return comparisons(condition.left) + comparisons(condition.right)


def check_against_catalogue(condition: Condition,
                            catalogue: Mapping[str, tuple[tuple[str, ...], str]] = CATALOGUE) -> list[str]:
    """Problems with the signal and label names a condition uses (empty when it is valid)."""
    problems = []
    for comparison in comparisons(condition):
        if comparison.signal not in catalogue:
            problems.append(f"unknown signal {comparison.signal!r} at column {comparison.column} "
                            f"(known signals: {', '.join(sorted(catalogue))})")
            continue
        known_labels = catalogue[comparison.signal][0]
        for matcher in comparison.matchers:
            if matcher.label not in known_labels:
                problems.append(f"signal {comparison.signal!r} has no label {matcher.label!r} "
                                f"(its labels: {', '.join(known_labels)})")
    return problems


def result_labels(condition: Condition, catalogue: Mapping[str, tuple[tuple[str, ...], str]] = CATALOGUE
                  ) -> tuple[str, ...]:
    """The label names an instance of this condition carries (the left-most signal's, for `and`)."""
    if isinstance(condition, Comparison):
        return catalogue.get(condition.signal, ((), ""))[0]
    left = result_labels(condition.left, catalogue)
    if condition.op == "and":
        return left
    right = result_labels(condition.right, catalogue)
    return tuple(label for label in left if label in right)


# -- evaluation -----------------------------------------------------------------

def _pinned_labels(condition: Condition) -> frozenset[str]:
    return frozenset(m.label for c in comparisons(condition) for m in c.matchers if m.op == "=")


def _key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def signals_by_name(signals: Iterable[Signal]) -> dict[str, list[Signal]]:
    """The cycle's signals grouped by name, in their order: built once for all of a cycle's rules."""
    by_name: dict[str, list[Signal]] = {}
    for signal in signals:
        by_name.setdefault(signal.name, []).append(signal)
    return by_name


def evaluate_condition(condition: Condition, signals: Iterable[Signal] | Mapping[str, list[Signal]]
                       ) -> list[Instance]:
    """Every instance of the condition over this cycle's signals (or `signals_by_name` of them),
    with its truth value."""
    by_name = signals if isinstance(signals, Mapping) else signals_by_name(signals)
    return list(_evaluate(condition, by_name, _pinned_labels(condition)).values())


def _evaluate(condition: Condition, by_name: Mapping[str, list[Signal]], pinned: frozenset[str]
              ) -> dict[tuple, Instance]:
    if isinstance(condition, Comparison):
        out: dict[tuple, Instance] = {}
        compare = COMPARATORS[condition.comparator]
        for signal in by_name.get(condition.signal, []):
            if not all(m.matches(signal.labels) for m in condition.matchers):
                continue
            if signal.value is None:
                truth = Truth.UNKNOWN
            else:
                truth = Truth.TRUE if compare(signal.value, condition.threshold) else Truth.FALSE
            evidence = {**signal.evidence, _evidence_name(signal): signal.value}
            out[_key(signal.labels)] = Instance(dict(signal.labels), truth, signal.value, evidence)
        return out
    left = _evaluate(condition.left, by_name, pinned)
    right = _evaluate(condition.right, by_name, pinned)
    if condition.op == "or":
        merged = dict(left)
        for key, instance in right.items():
            if key not in merged:
                merged[key] = instance
                continue
            first = merged[key]
            truth = first.truth.or_(instance.truth)
            chosen = first if first.truth is Truth.TRUE or instance.truth is not Truth.TRUE else instance
            merged[key] = Instance(chosen.labels, truth, chosen.value, {**instance.evidence, **first.evidence})
        return merged
    out = {}
    join = _JoinIndex(list(right.values()), pinned)
    for key, instance in left.items():
        matches = join.matches(instance.labels)
        if matches:
            right_truth = Truth.FALSE
            for match in matches:
                right_truth = right_truth.or_(match.truth)
        else:
            # Nothing to join with: false when the right side has data for others,
            # unknown when it has none at all (its producer emitted nothing).
            right_truth = Truth.FALSE if right else Truth.UNKNOWN
        evidence: dict[str, float | None] = {}
        for match in matches:
            evidence.update(match.evidence)
        evidence.update(instance.evidence)
        out[key] = Instance(instance.labels, instance.truth.and_(right_truth), instance.value, evidence)
    return out


class _JoinIndex:
    """The right side of an `and`, indexed so each left instance finds its matches in O(1)
    per distinct label-name set (a cycle joins thousands of drift signals)."""

    def __init__(self, instances: list[Instance], pinned: frozenset[str]):
        self.pinned = pinned
        self.by_names: dict[frozenset[str], list[Instance]] = {}
        for instance in instances:
            self.by_names.setdefault(frozenset(instance.labels), []).append(instance)
        self._indexes: dict[tuple[frozenset[str], tuple[str, ...]], dict[tuple[str, ...], list[Instance]]] = {}

    def matches(self, labels: Mapping[str, str]) -> list[Instance]:
        found: list[Instance] = []
        for names, instances in self.by_names.items():
            shared = tuple(sorted((names & labels.keys()) - self.pinned))
            index = self._indexes.get((names, shared))
            if index is None:
                index = {}
                for instance in instances:
                    index.setdefault(tuple(instance.labels[k] for k in shared), []).append(instance)
                self._indexes[(names, shared)] = index
            found += index.get(tuple(labels[k] for k in shared), [])
        return found


def _evidence_name(signal: Signal) -> str:
    # Name evidence by signal and its distinguishing window, so both windows of a
    # burn-rate condition show up side by side.
    window = signal.labels.get("window")
    return f"{signal.name}{{window={window}}}" if window else signal.name
