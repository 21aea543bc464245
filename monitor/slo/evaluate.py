"""Evaluate many SLOs at one instant with few queries: the SLO stage of a daemon cycle.

Direct mode plans every (SLO, window) sub-query, makes each distinct one once,
and hands them to the query engine (`PrometheusSource.run`), which folds them into
few PromQL queries under a sample budget, runs them concurrently, and retries a
failed fold one sub-query at a time, so a broken SLO query's error lands on the
SLOs that own it alone.

Recorded mode reads the series `monitor slo rules` records: one selector per window
returns every SLO's error ratio and event rate (the engine folds those too).

Event queries are per-second rates over the window (as in Sloth), so events in a
window are rate x window length; `sum()` around each keeps multi-series queries
to one number per SLO, as rates add. A grouped spec's are `sum by (its group
labels)`: still one query per window, one series per group (monitor.slo.groups).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Iterable, Mapping, Protocol

from monitor.durations import format_duration
from monitor.slo.burn_rate import (PAGE_CONDITIONS, TICKET_CONDITIONS, WINDOWS, alert_decision, burn_rate,
                                   error_budget_remaining, error_ratio)
from monitor.slo.closed_hours import measure_long_windows
from monitor.slo.groups import (Group, GroupingError, TooManyGroups, events_queries, group_of,
                                instance_id)
from monitor.slo.spec import CalendarPeriod, EventsSli, RawSli, SloSpec, render_window
from monitor.sources.prometheus import (DEFAULT_FOLD, Answer, InstantQuery, InstantResult, PrometheusUnavailable,
                                       Query, QueryError)
from monitor.timeutil import utc

# Below this many events in a window its ratio is "no data" (see burn_rate.error_ratio).
DEFAULT_MIN_EVENTS = 10.0
# Sub-queries folded into one PromQL query at most (the engine's sample budget may
# cut a fold shorter: a 30d window reads far more than a 5m one).
DEFAULT_SUBQUERIES_PER_QUERY = DEFAULT_FOLD

# Series names of the recording rules (rule_file.py writes them). The error ratio
# uses Sloth's name and labels, so Sloth's dashboards read our recordings.
ERROR_RATIO_RECORD = "slo:sli_error:ratio_rate{window}"
TOTAL_RATE_RECORD = "slo:sli_total:rate{window}"
ID_LABEL = "sloth_id"


class EvaluationMode(str, Enum):
    DIRECT = "direct"        # query the SLI expressions themselves
    RECORDED = "recorded"    # read the series recorded by `monitor slo rules`


class QueryEngine(Protocol):
    def run(self, queries: Iterable[Query], *, fold: int = DEFAULT_FOLD) -> dict[Query, Answer]: ...


@dataclass(frozen=True)
class SloResult:
    """One SLO's numbers at one instant. Windows are keyed `5m`..`3d` and the period's duration."""

    spec: SloSpec
    at: datetime
    error_ratio: Mapping[str, float | None]
    burn_rate: Mapping[str, float | None]
    events_total: Mapping[str, float | None]
    events_bad: Mapping[str, float | None]
    error_budget_remaining: float | None
    page: bool | None
    ticket: bool | None
    problems: tuple[str, ...] = ()
    # The first query of this SLO that failed, if any: with `server_fault` False the
    # SLO's own PromQL is wrong (only this SLO is in error), else the server failed.
    # A grouped spec over `max_groups` has one result with a `TooManyGroups` here.
    query_error: QueryError | None = None
    # A grouped spec's instance: its label values in `group_by` order; () when ungrouped.
    group: Group = ()

    @property
    def period_key(self) -> str:
        return self.spec.period_key

    @property
    def id(self) -> str:
        """The instance's id: the spec's, plus its group's label values (monitor.slo.groups)."""
        return instance_id(self.spec.id, self.group)

    @property
    def group_labels(self) -> dict[str, str]:
        return dict(self.group)

    def to_json(self) -> dict:
        """The `monitor slo --json` shape for this SLO (None stays null)."""
        spec = self.spec
        out = {
            "id": self.id, "service": spec.service, "name": spec.name,
            "objective": spec.objective, "period": self.period_key,
            "error_budget_remaining": self.error_budget_remaining,
            "events": {"total": self.events_total.get(self.period_key), "bad": self.events_bad.get(self.period_key)},
            "error_ratio": dict(self.error_ratio),
            "burn_rate": dict(self.burn_rate),
            "alerts": {"page": self.page, "ticket": self.ticket},
            "source": spec.source,
        }
        if spec.group_by:
            out["slo_id"] = spec.id
            out["group"] = self.group_labels
        if self.problems:
            out["problems"] = list(self.problems)
        return out


@dataclass
class _Plan:
    """Distinct sub-queries per PromQL window, in first-seen order."""

    by_window: dict[str, dict[str, None]] = field(default_factory=dict)

    def add(self, window: str, expr: str) -> None:
        self.by_window.setdefault(window, {})[expr] = None


# Per window key: (bad events, total events, raw ratio).
_Values = dict[str, tuple[float | None, float | None, float | None]]


@dataclass
class _Measurement:
    """One spec's numbers per group (an ungrouped spec: the one group `()`), its
    problems, and its first failed query."""

    groups: dict[Group, _Values] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    error: QueryError | None = None


@dataclass
class _Parsed:
    """One sub-query's answer: a value per group (absent group: no series for it)."""

    values: dict[Group, float | None] = field(default_factory=dict)
    problem: str | None = None
    error: QueryError | None = None


def slo_windows(spec: SloSpec, at: datetime) -> dict[str, timedelta]:
    """The windows one SLO is evaluated over at `at`: 5m..3d and its period (so far, for calendar ones)."""
    return {**WINDOWS, spec.period_key: spec.period_window(at)}


def promql_duration(window: timedelta) -> str:
    # Calendar periods so far are arbitrary lengths; whole seconds are plenty.
    return format_duration(timedelta(seconds=max(1, round(window.total_seconds()))))


def sli_queries(spec: SloSpec, duration: str) -> dict[str, str]:
    """The PromQL for one SLO over one window: `bad`/`total` event rates, or a raw `ratio`.

    A grouped spec's event queries are `sum by (its labels)`: one query for all its
    groups. A raw ratio is the user's own aggregation, which must keep those labels.
    """
    if isinstance(spec.sli, EventsSli):
        return events_queries(spec, duration)
    return {"ratio": render_window(spec.sli.error_ratio_query, duration)}


def evaluate_slos(source: QueryEngine, specs: list[SloSpec], at: datetime, *,
                  mode: EvaluationMode = EvaluationMode.DIRECT, min_events: float = DEFAULT_MIN_EVENTS,
                  subqueries_per_query: int = DEFAULT_SUBQUERIES_PER_QUERY, store=None) -> list[SloResult]:
    """Every SLO's error ratios, burn rates, budget and page/ticket decisions at `at`, in `specs` order.

    A grouped spec gives one result per group present in any of its windows (in
    label-value order); over its `max_groups`, one result carrying `TooManyGroups`.
    With a state `store`, direct mode takes the windows over 6 hours of events SLIs
    from closed hours kept there (monitor.slo.closed_hours); shorter ones stay direct.
    """
    at = utc(at)
    if mode is EvaluationMode.RECORDED:
        measured = _measure_recorded(source, specs, at, subqueries_per_query)
    else:
        measured = _measure_direct(source, specs, at, subqueries_per_query, store)
    return [result for spec, measurement in zip(specs, measured)
            for result in _results(spec, at, measurement, min_events)]


def _measure_direct(source: QueryEngine, specs: list[SloSpec], at: datetime,
                    subqueries_per_query: int, store=None) -> list[_Measurement]:
    windows = [slo_windows(spec, at) for spec in specs]
    from_hours: list[dict] = [{} for _ in specs]
    if store is not None:
        from_hours = measure_long_windows(source, store, specs, windows, at, subqueries_per_query)  # type: ignore
    plan = _Plan()
    planned: list[dict[str, tuple[str, timedelta, dict[str, str]]]] = []
    for spec, spec_windows, hours in zip(specs, windows, from_hours):
        per_window = {}
        for key, window in spec_windows.items():
            if key in hours:
                continue
            duration = promql_duration(window)
            exprs = sli_queries(spec, duration)
            for expr in exprs.values():
                plan.add(duration, expr)
            per_window[key] = (duration, window, exprs)
        planned.append(per_window)
    answers = _run_plan(source, plan, at, subqueries_per_query)
    measured: list[_Measurement] = []
    for spec, per_window, spec_windows, hours in zip(specs, planned, windows, from_hours):
        # A wrong SLI query fails its short windows too (always asked directly), so
        # `error` names it even when its closed hours only record problems.
        measurement = _from_answers(spec, per_window, answers)
        for key, window_events in hours.items():
            measurement.problems += [f"{key}: {problem}" for problem in window_events.problems]
            for group, (bad, total) in window_events.events.items():
                measurement.groups.setdefault(group, {})[key] = (bad, total, None)
        measured.append(_complete(measurement, spec_windows))
    return measured


def _complete(measurement: _Measurement, spec_windows: Mapping[str, timedelta]) -> _Measurement:
    """Every group with every window in the spec's order: a window without the group is no data
    (a group that vanished from the short windows is no data there, never healthy)."""
    nothing = (None, None, None)
    measurement.groups = {group: {key: values.get(key, nothing) for key in spec_windows}
                          for group, values in sorted(measurement.groups.items())}
    measurement.problems = list(dict.fromkeys(measurement.problems))
    return measurement


def _from_answers(spec: SloSpec, per_window: dict[str, tuple[str, timedelta, dict[str, str]]],
                  answers: Mapping[str, InstantResult | QueryError]) -> _Measurement:
    measurement = _Measurement(groups={} if spec.group_by else {(): {}})
    for key, (_duration, window, exprs) in per_window.items():
        got = {role: _parse(answers[expr], spec) for role, expr in exprs.items()}
        measurement.problems += [f"{key}: {a.problem}" for a in got.values() if a.problem]
        measurement.error = measurement.error or next((a.error for a in got.values() if a.error is not None), None)
        seconds = window.total_seconds()
        if "ratio" in got:
            for group, value in got["ratio"].values.items():
                measurement.groups.setdefault(group, {})[key] = (None, None, value)
            continue
        bad, total = got["bad"].values, got["total"].values
        for group in dict.fromkeys([*total, *bad]):
            b, t = bad.get(group), total.get(group)
            measurement.groups.setdefault(group, {})[key] = (b * seconds if b is not None else None,
                                                              t * seconds if t is not None else None, None)
    return measurement


def _run_plan(source: QueryEngine, plan: _Plan, at: datetime, subqueries_per_query: int
              ) -> dict[str, InstantResult | QueryError]:
    wanted = {expr: InstantQuery(expr, at) for exprs in plan.by_window.values() for expr in exprs}
    answers = source.run(wanted.values(), fold=subqueries_per_query)
    return {expr: answers[query] for expr, query in wanted.items()}  # type: ignore[misc]


def _parse(result: InstantResult | QueryError, spec: SloSpec) -> _Parsed:
    """One answer as values per group of `spec` (the same query may serve specs grouped differently)."""
    if isinstance(result, QueryError):
        return _Parsed(problem=result.message if isinstance(result, PrometheusUnavailable) else str(result),
                       error=result)
    warning = "; ".join(result.warnings)
    problem = f"partial data: {warning}" if warning else None
    if not spec.group_by:
        if len(result.samples) > 1:
            return _Parsed(problem=f"query returned {len(result.samples)} series; an SLI query must return one")
        return _Parsed({(): _finite(result.samples[0].value) if result.samples else None}, problem)
    values: dict[Group, float | None] = {}
    for sample in result.samples:
        missing = [name for name in spec.group_by if name not in sample.labels]
        if missing and isinstance(spec.sli, RawSli):
            # Events queries are summed `by` the group labels here; a raw ratio is the
            # user's own aggregation, and one without the labels cannot be split.
            error = GroupingError(spec.id, f"a series of the raw SLI lacks the group_by label {missing[0]!r}: a "
                                           f"grouped SLO's error ratio query must keep its group labels "
                                           f"(`... by ({', '.join(spec.group_by)})`)")
            return _Parsed(problem=error.message, error=error)
        group = group_of(sample.labels, spec.group_by)
        if group in values:
            error = GroupingError(spec.id, f"the raw SLI returned several series for "
                                           f"{instance_id(spec.id, group)}: it must aggregate to one series "
                                           f"per group (`... by ({', '.join(spec.group_by)})`)")
            return _Parsed(problem=error.message, error=error)
        values[group] = _finite(sample.value)
    return _Parsed(values, problem)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _measure_recorded(source: QueryEngine, specs: list[SloSpec], at: datetime,
                      subqueries_per_query: int) -> list[_Measurement]:
    # Grouped specs are measured directly in recorded mode: their groups are whatever
    # the SLI's series hold now, which a recorded `sloth_id` alone does not say.
    grouped = [i for i, spec in enumerate(specs) if spec.group_by]
    if not grouped:
        return _measure_recorded_ungrouped(source, specs, at, subqueries_per_query)
    direct = iter(_measure_direct(source, [specs[i] for i in grouped], at, subqueries_per_query))
    others = [spec for spec in specs if not spec.group_by]
    recorded = iter(_measure_recorded_ungrouped(source, others, at, subqueries_per_query) if others else [])
    return [next(direct) if spec.group_by else next(recorded) for spec in specs]


def _measure_recorded_ungrouped(source: QueryEngine, specs: list[SloSpec], at: datetime,
                                subqueries_per_query: int) -> list[_Measurement]:
    # Rolling windows are recorded; a calendar period "so far" changes length every
    # evaluation and cannot be, so those few sub-queries go direct.
    keys = list(WINDOWS) + sorted({s.period_key for s in specs if not isinstance(s.period, CalendarPeriod)})
    # Every window's two records in one selector, reduced to the two labels read here: a
    # thousand SLOs' 16,000 series then come back without their other labels (a quarter of
    # the bytes to send and decode), and with no per-window `or` for the server to match.
    slot_of = {name: (key, slot) for key in keys
               for slot, name in enumerate((ERROR_RATIO_RECORD.format(window=key), TOTAL_RATE_RECORD.format(window=key)))}
    recorded_query = f'max by (__name__, {ID_LABEL}) ({{__name__=~"{"|".join(slot_of)}"}})'
    calendar_specs = [i for i, s in enumerate(specs) if isinstance(s.period, CalendarPeriod)]
    direct_plan = _Plan()
    calendar_planned = {}
    for i in calendar_specs:
        spec = specs[i]
        window = spec.period_window(at)
        duration = promql_duration(window)
        exprs = sli_queries(spec, duration)
        for expr in exprs.values():
            direct_plan.add(duration, expr)
        calendar_planned[i] = {spec.period_key: (duration, window, exprs)}
    # The recorded selectors and the calendar periods' sub-queries go out as one batch.
    batch = InstantQuery(recorded_query, at)
    direct = {expr: InstantQuery(expr, at) for exprs in direct_plan.by_window.values() for expr in exprs}
    results = source.run([batch, *direct.values()], fold=subqueries_per_query)
    answers = {expr: results[query] for expr, query in direct.items()}
    # window key -> sloth_id -> (ratio, total rate)
    recorded: dict[str, dict[str, list[float | None]]] = {key: {} for key in keys}
    window_problems: dict[str, str] = {}
    result = results[batch]
    if isinstance(result, QueryError):
        window_problems = dict.fromkeys(keys, result.message)
        recorded = {}
    else:
        assert isinstance(result, InstantResult)
        for sample in result.samples:
            slo_id = sample.labels.get(ID_LABEL)
            key, slot = slot_of.get(sample.labels.get("__name__", ""), (None, 0))
            if slo_id is None or key is None:
                continue
            value = sample.value if sample.value is not None and math.isfinite(sample.value) else None
            recorded[key].setdefault(slo_id, [None, None])[slot] = value
        recorded = {key: table for key, table in recorded.items() if table}
    out: list[_Measurement] = []
    for i, spec in enumerate(specs):
        values: dict[str, tuple[float | None, float | None, float | None]] = {}
        problems: list[str] = []
        error: QueryError | None = None
        for key, window in slo_windows(spec, at).items():
            if i in calendar_planned and key == spec.period_key:
                continue
            if key in window_problems:
                problems.append(f"{key}: {window_problems[key]}")
            ratio, total_rate = recorded.get(key, {}).get(spec.id, [None, None])
            if isinstance(spec.sli, RawSli):
                values[key] = (None, None, ratio)
                continue
            total = total_rate * window.total_seconds() if total_rate is not None else None
            bad = ratio * total if ratio is not None and total is not None else None
            # 0/0 records NaN: no events, which the total (0) already says.
            values[key] = (bad, total, None)
        if i in calendar_planned:
            calendar = _from_answers(spec, calendar_planned[i], answers)  # type: ignore[arg-type]
            values.update(calendar.groups[()])
            problems += calendar.problems
            error = calendar.error
        if not any(spec.id in table for table in recorded.values()) and not window_problems:
            problems.append("no recorded series for this SLO: is the `monitor slo rules` file loaded?")
        ordered = {key: values[key] for key in slo_windows(spec, at)}
        out.append(_Measurement({(): ordered}, problems, error))
    return out


def _results(spec: SloSpec, at: datetime, measured: _Measurement, min_events: float) -> list[SloResult]:
    """The spec's results: one per group (one for an ungrouped spec)."""
    if spec.group_by and len(measured.groups) > spec.max_groups:
        # Never the first N: an SLO silently missing some of its groups reads as healthy.
        error = TooManyGroups(spec.id, spec.group_by, len(measured.groups), spec.max_groups)
        return [_without_numbers(spec, at, [error.message, *measured.problems], error)]
    if spec.group_by and not measured.groups:
        # No instance to evaluate; a broken query or a problem must still be told.
        return [_without_numbers(spec, at, measured.problems, measured.error)] if (
            measured.problems or measured.error) else []
    return [_result(spec, at, group, values, measured, min_events) for group, values in measured.groups.items()]


def _without_numbers(spec: SloSpec, at: datetime, problems: list[str], error: QueryError | None) -> SloResult:
    """A grouped spec's one result when it has no instances to show: no data, its problems, its error."""
    keys = dict.fromkeys(slo_windows(spec, at), None)
    return SloResult(spec=spec, at=at, error_ratio=keys, burn_rate=keys, events_total=keys, events_bad=keys,
                     error_budget_remaining=None, page=None, ticket=None, problems=tuple(problems),
                     query_error=error)


def _result(spec: SloSpec, at: datetime, group: Group, values: _Values, measured: _Measurement,
            min_events: float) -> SloResult:
    ratios: dict[str, float | None] = {}
    for key, (bad, total, raw_ratio) in values.items():
        if isinstance(spec.sli, RawSli):
            # A raw ratio carries no event counts, so the minimum cannot apply.
            ratios[key] = raw_ratio
        else:
            ratios[key] = error_ratio(bad, total, min_events)
    burns = {key: burn_rate(ratio, spec.objective) for key, ratio in ratios.items()}
    period_bad, period_total, _ = values[spec.period_key]
    if isinstance(spec.sli, RawSli):
        ratio = ratios[spec.period_key]
        budget = None if ratio is None else 1.0 - ratio / spec.error_budget
    else:
        budget = error_budget_remaining(period_bad, period_total, spec.objective, min_events)
    period_length = spec.period_length(at)
    return SloResult(
        spec=spec, at=at, error_ratio=ratios, burn_rate=burns,
        events_total={key: v[1] for key, v in values.items()},
        events_bad={key: v[0] for key, v in values.items()},
        error_budget_remaining=budget,
        page=alert_decision(PAGE_CONDITIONS, burns, period_length),
        ticket=alert_decision(TICKET_CONDITIONS, burns, period_length),
        problems=tuple(measured.problems), query_error=measured.error, group=group)
