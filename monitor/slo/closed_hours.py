"""SLO windows longer than 6 hours from closed hours: each hour's events are asked once.

An events SLI's bad and total events over a long window (1d, 3d and the period:
30d rolling, or a calendar period so far) are the sum of three parts:

    head partial  +  closed hours  +  tail (the open part)

with the hours' events kept in the state store (`monitor.incremental`), measured
once each by range queries of the SLI over `[1h]` stepping an hour, and the two
partials asked every cycle as instant queries:
- the tail (B, at], B the latest closed hour (`closed_boundary`): `rate(q[at - B])`
  at `at`, at least `SETTLE` (2 minutes) long. It is recent data, scraped at the
  live interval; it needs two samples in its window (a scrape interval up to 1 minute);
- the head, where the window starts inside an hour: whichever of "the hour minus the
  part before the start" and "the part after the start" has the longer range, so its
  range is at least 30 minutes even in history downsampled to 5-minute samples.

Windows of 6 hours or less are not touched: they stay exact, queried directly.

A grouped spec's queries are `sum by` its group labels; each hour keeps one value
per group (the period tables' `key`: `groups.group_key`, "" for an ungrouped spec),
so a group's long windows sum its own hours, and the query count does not grow
with the number of groups.

Bound (held by tests/test_incremental_slo.py): events within 0.5% relative of the
window's own `rate(q[W]) * W`, for windows with at least 1,000 events. Prometheus
extrapolates a window's rate to its ends; the sum extrapolates at every hour boundary
across the scrape gap straddling it, at that hour's average slope instead of the
true increase in the gap. Errors are at most one scrape interval's events per
boundary, have both signs and mostly cancel (see monitor/cost/hourly.py, which
makes the same argument for inferences); error ratios and burn rates, ratios of two
such sums, agree to about twice that.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Mapping, Sequence

from monitor.durations import format_duration
from monitor.incremental import HOUR, PeriodRepository, PeriodValue, closed_boundary, contiguous_runs, hour_ends
from monitor.slo.groups import Group, events_queries, group_from_key, group_key, group_of
from monitor.slo.spec import EventsSli, SloSpec
from monitor.sources.prometheus import (Answer, InstantQuery, InstantResult, PrometheusSource, Query, QueryError,
                                       RangeQuery, RangeResult)
from monitor.store import StateStore
from monitor.timeutil import from_unix, utc

LONGEST_DIRECT = timedelta(hours=6)
# A cold start or a gap is backfilled a day at a time: one batch per day, one after
# another, so a 30-day backfill of a thousand SLIs never floods the server at once.
MAX_HOURS_PER_QUERY = 24
# Hours kept: the longest rolling period usually configured (30d), with margin.
RETENTION = timedelta(days=35)
BOUND_RELATIVE = 0.005
BOUND_MIN_EVENTS = 1000.0
ROLES = ("bad", "total")


@dataclass
class WindowEvents:
    """One SLO window's bad and total events per group (None: no data), from closed hours and partials.

    An ungrouped spec has the one group `()`, always present; a grouped spec has the
    groups that had data in the window's hours or partials.
    """

    events: dict[Group, list[float | None]] = field(default_factory=dict)  # group -> [bad, total]
    problems: list[str] = field(default_factory=list)


def long_windows(spec: SloSpec, windows: Mapping[str, timedelta]) -> dict[str, timedelta]:
    """The windows of `spec` this module measures: longer than 6 hours, of an events SLI."""
    if not isinstance(spec.sli, EventsSli):
        return {}
    return {key: window for key, window in windows.items() if window > LONGEST_DIRECT}


def series_set(spec: SloSpec) -> str:
    """The series set of one SLO's hourly events: its id and a digest of its queries."""
    assert isinstance(spec.sli, EventsSli)
    measured: list = [spec.sli.error_query, spec.sli.total_query]
    if spec.group_by:
        # Regrouping measures other figures: a new set, backfilled, never mixed with the old.
        measured.append(list(spec.group_by))
    digest = hashlib.sha256(json.dumps(measured).encode()).hexdigest()[:16]
    return f"slo/{spec.id}/{digest}"


def _queries(spec: SloSpec, duration: str) -> dict[str, str]:
    return events_queries(spec, duration)


def _duration(window: timedelta) -> str:
    return format_duration(timedelta(seconds=max(1, round(window.total_seconds()))))


def _floor_hour(at: datetime) -> datetime:
    seconds = at.timestamp()
    return from_unix(seconds - seconds % HOUR.total_seconds())


@dataclass(frozen=True)
class _Part:
    """A partial's instant query per role and the sign and seconds it contributes with."""

    queries: Mapping[str, InstantQuery]
    seconds: float
    sign: float


@dataclass(frozen=True)
class _WindowPlan:
    hours_after: datetime        # closed hours ending in (hours_after, boundary]
    parts: tuple[_Part, ...]


def _plan_window(spec: SloSpec, at: datetime, boundary: datetime, window: timedelta) -> _WindowPlan:
    head = at - window
    tail_seconds = (at - boundary).total_seconds()
    parts = [_Part({r: InstantQuery(q, at) for r, q in _queries(spec, _duration(at - boundary)).items()},
                   tail_seconds, 1.0)]
    start_hour = _floor_hour(head)
    into = head - start_hour
    if not into:
        return _WindowPlan(head, tuple(parts))
    if into >= HOUR / 2:
        # The hour holding the start counts whole, minus its part before the start.
        parts.append(_Part({r: InstantQuery(q, head) for r, q in _queries(spec, _duration(into)).items()},
                           into.total_seconds(), -1.0))
        return _WindowPlan(start_hour, tuple(parts))
    # The part of that hour after the start, asked at the hour's end; the hours after it.
    rest = HOUR - into
    parts.append(_Part({r: InstantQuery(q, start_hour + HOUR) for r, q in _queries(spec, _duration(rest)).items()},
                       rest.total_seconds(), 1.0))
    return _WindowPlan(start_hour + HOUR, tuple(parts))


def measure_long_windows(source: PrometheusSource, store: StateStore, specs: Sequence[SloSpec],
                         windows: Sequence[Mapping[str, timedelta]], at: datetime, fold: int
                         ) -> list[dict[str, WindowEvents]]:
    """Per spec (same order), its long windows' events at `at` (see the module doc).

    `windows[i]` are spec i's windows; only `long_windows` of them are measured.
    Failed queries become problems of the windows that needed them (as the direct
    path does); their hours are not stored, so the next cycle asks again.
    """
    at = utc(at)
    boundary = closed_boundary(at)
    repository = PeriodRepository(store)
    plans = [{key: _plan_window(spec, at, boundary, window) for key, window in long_windows(spec, w).items()}
             for spec, w in zip(specs, windows)]
    sets = [series_set(spec) if plan else "" for spec, plan in zip(specs, plans)]
    earliest = {i: min(p.hours_after for p in plan.values()) for i, plan in enumerate(plans) if plan}
    hour_problems = _backfill(source, repository, specs, sets, earliest, boundary, at, fold)

    partials = [q for plan in plans for p in plan.values() for part in p.parts for q in part.queries.values()]
    answers = source.run(partials, fold=fold) if partials else {}
    # One sum per distinct window start (rolling windows share theirs across SLOs).
    by_start: dict[datetime, list[str]] = {}
    for i, plan in enumerate(plans):
        for window_plan in plan.values():
            by_start.setdefault(window_plan.hours_after, []).append(sets[i])
    totals = {after: repository.totals(list(dict.fromkeys(names)), after, boundary)
              for after, names in by_start.items()}
    out: list[dict[str, WindowEvents]] = []
    for i, plan in enumerate(plans):
        measured: dict[str, WindowEvents] = {}
        for key, window_plan in plan.items():
            hour_totals = totals[window_plan.hours_after][sets[i]]
            window = WindowEvents(problems=list(hour_problems.get(i, ())))
            if not specs[i].group_by:
                window.events[()] = [None, None]
            for index, role in enumerate(ROLES):
                parts = [(part, _values(answers[part.queries[role]], specs[i], window.problems))
                         for part in window_plan.parts]
                groups = {group_from_key(k) for r, k in hour_totals if r == role}
                groups.update(group for _, values in parts for group in values)
                if not specs[i].group_by:
                    groups = {()}
                for group in groups:
                    hours = hour_totals.get((role, group_key(group)))
                    values = [(part, found[group]) for part, found in parts if found.get(group) is not None]
                    if hours is None and not values:
                        continue  # no data in any part: no data, never 0
                    value = (hours.total if hours else 0.0) + sum(part.sign * part.seconds * v for part, v in values)
                    window.events.setdefault(group, [None, None])[index] = max(value, 0.0)
            window.problems = list(dict.fromkeys(window.problems))
            measured[key] = window
        out.append(measured)
    return out


def _values(answer: Answer, spec: SloSpec, problems: list[str]) -> dict[Group, float | None]:
    """Per group, the value of an instant answer (an ungrouped spec: its one value, `()`)."""
    if isinstance(answer, QueryError):
        problems.append(answer.message)
        return {}
    assert isinstance(answer, InstantResult)
    if answer.warnings:
        problems.append(f"partial data: {'; '.join(answer.warnings)}")
    if not spec.group_by and len(answer.samples) > 1:
        problems.append(f"query returned {len(answer.samples)} series; an SLI query must return one")
        return {}
    return {group_of(s.labels, spec.group_by): s.value if s.value is not None and math.isfinite(s.value) else None
            for s in answer.samples}


def _backfill(source: PrometheusSource, repository: PeriodRepository, specs: Sequence[SloSpec],
              sets: Sequence[str], earliest: Mapping[int, datetime], boundary: datetime, now: datetime,
              fold: int) -> dict[int, list[str]]:
    """Measure and store the closed hours each spec lacks; returns problems per spec index."""
    if not earliest:
        return {}
    first = min(earliest.values())
    wanted = hour_ends(first, boundary)
    if not wanted:
        return {}
    closed = repository.closed([sets[i] for i in earliest], wanted[0], wanted[-1])
    runs: list[tuple[int, list[datetime], dict[str, RangeQuery]]] = []
    for i, after in earliest.items():
        missing = [t for t in wanted if t > after and t.timestamp() not in closed[sets[i]]]
        for run in contiguous_runs(missing, MAX_HOURS_PER_QUERY):
            runs.append((i, run, {role: RangeQuery(q, run[0], run[-1], HOUR)
                                  for role, q in _queries(specs[i], "1h").items()}))
    answers: dict[Query, Answer] = {}
    by_range: dict[tuple[datetime, datetime], list[Query]] = {}
    for _, run, queries in runs:
        by_range.setdefault((run[0], run[-1]), []).extend(queries.values())
    for _, batch in sorted(by_range.items()):
        answers.update(source.run(batch, fold=fold))
    problems: dict[int, list[str]] = {}
    complete: dict[str, dict[datetime, list[PeriodValue]]] = {}
    partial: dict[str, dict[datetime, list[PeriodValue]]] = {}
    seconds = HOUR.total_seconds()
    for i, run, queries in runs:
        hours: dict[datetime, list[PeriodValue]] = {end: [] for end in run}
        ok, warned = True, False
        for role, query in queries.items():
            answer = answers[query]
            if isinstance(answer, QueryError):
                problems.setdefault(i, []).append(answer.message)
                ok = False
                continue
            assert isinstance(answer, RangeResult)
            warned = warned or bool(answer.warnings)
            if len(answer.series) > 1 and not specs[i].group_by:
                problems.setdefault(i, []).append(
                    f"query returned {len(answer.series)} series; an SLI query must return one")
                ok = False
                continue
            if specs[i].group_by and len(answer.series) > specs[i].max_groups:
                # Not stored: a spec over its bound must not fill the state file with its groups
                # (its evaluation reports TooManyGroups from the direct windows).
                problems.setdefault(i, []).append(
                    f"{len(answer.series)} groups exceed max_groups {specs[i].max_groups}; hours not kept")
                ok = False
                continue
            for series in answer.series:
                # One row per group (the period tables' key); "" for an ungrouped spec.
                key = group_key(group_of(series.labels, specs[i].group_by))
                for t, v in zip(series.timestamps.tolist(), series.values.tolist()):
                    end = from_unix(t)
                    if end in hours and math.isfinite(v):
                        hours[end].append(PeriodValue(role, key, v * seconds))
        if ok:
            (partial if warned else complete).setdefault(sets[i], {}).update(hours)
    if complete:
        repository.save(complete, closed=True, now=now)
    if partial:
        repository.save(partial, closed=False, now=now)
    repository.prune(boundary - RETENTION)
    return problems
