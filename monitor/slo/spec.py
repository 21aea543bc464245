"""The internal SLO model every spec format (Sloth, OpenSLO) is converted into.

Kept apart from the file formats (as Sloth keeps `pkg/prometheus/api/v1` apart
from `internal/`): the math and the query planner only ever see `SloSpec`, so a
new format is one loader and no change downstream.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Mapping
from zoneinfo import ZoneInfo

from monitor.durations import format_duration

# Sloth's template variable; Go templates allow spaces inside the braces.
WINDOW_PLACEHOLDER = re.compile(r"\{\{\s*\.window\s*\}\}")


def render_window(query: str, window: str) -> str:
    """A spec query with `{{.window}}` replaced by a PromQL duration such as `5m`."""
    return WINDOW_PLACEHOLDER.sub(window, query)


def summed(query: str) -> str:
    """`sum(query)` unless the query already is one plain `sum(...)`: one number per SLO, as rates add."""
    query = query.strip()
    if query.startswith("sum(") and _closing_paren(query, 3) == len(query) - 1:
        return query
    return f"sum({query})"


def _closing_paren(text: str, open_at: int) -> int:
    """Index of the parenthesis closing the one at `open_at` (skipping quoted strings), or -1."""
    depth, quote, i = 0, None, open_at
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1  # an escaped character inside a string
            elif ch == quote:
                quote = None
        elif ch in "\"'`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


@dataclass(frozen=True)
class EventsSli:
    """bad events / total events; both queries are per-second rates over `{{.window}}`."""

    error_query: str
    total_query: str


@dataclass(frozen=True)
class RawSli:
    """A query that already yields the error ratio (0..1) over `{{.window}}`; no event counts."""

    error_ratio_query: str


@dataclass(frozen=True)
class CalendarPeriod:
    """A calendar-aligned period (OpenSLO `isRolling: false`): N days, weeks, months, quarters or years."""

    count: int
    unit: str            # "d", "w", "M", "Q" or "y"
    anchor: datetime     # a period boundary (OpenSLO `calendar.startTime`), timezone-aware

    @property
    def key(self) -> str:
        return f"{self.count}{self.unit}"

    def bounds(self, at: datetime) -> tuple[datetime, datetime]:
        """The [start, end) of the calendar period containing `at`."""
        at = at.astimezone(self.anchor.tzinfo)
        if self.unit in ("d", "w"):
            length = timedelta(days=self.count * (7 if self.unit == "w" else 1))
            # Whole days in the anchor's zone, counted from the anchor.
            periods = (at - self.anchor) // length
            start = self.anchor + periods * length
            return start, start + length
        months = self.count * {"M": 1, "Q": 3, "y": 12}[self.unit]
        elapsed = (at.year - self.anchor.year) * 12 + (at.month - self.anchor.month)
        index = elapsed // months
        start = _add_months(self.anchor, index * months)
        if start > at:
            index -= 1
            start = _add_months(self.anchor, index * months)
        return start, _add_months(self.anchor, (index + 1) * months)


def _add_months(at: datetime, months: int) -> datetime:
    total = at.year * 12 + (at.month - 1) + months
    year, month = divmod(total, 12)
    day = min(at.day, calendar.monthrange(year, month + 1)[1])
    return at.replace(year=year, month=month + 1, day=day)


@dataclass(frozen=True)
class SloSpec:
    """One SLO, whatever file it came from. `objective` is a ratio (0.999), never a percentage."""

    service: str
    name: str
    objective: float
    sli: EventsSli | RawSli
    # A rolling period (timedelta) or a calendar one; the period's window key is its duration.
    period: timedelta | CalendarPeriod
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    # Alert rule settings carried through to `monitor slo rules` (Sloth's `alerting` block).
    alert_name: str | None = None
    alert_labels: Mapping[str, str] = field(default_factory=dict)
    alert_annotations: Mapping[str, str] = field(default_factory=dict)
    page_alert: "AlertSettings" = field(default_factory=lambda: AlertSettings())
    ticket_alert: "AlertSettings" = field(default_factory=lambda: AlertSettings())
    # Grouped SLOs (a monitor extension in Sloth files; OpenSLO's and Pyrra's grouping):
    # one SLO instance per distinct value set of these labels in the SLI, each with its
    # own budget and alerts. Empty: one SLO. More groups than `max_groups` is an error.
    group_by: tuple[str, ...] = ()
    max_groups: int = 100
    # The file format it came from, as Sloth's `sloth_spec` label names it
    # (`prometheus/v1`, `openslo/v1alpha`, `openslo/v1`); empty when built in code.
    spec_format: str = ""
    # Where it was defined, "FILE:LINE", for messages.
    source: str = ""

    @property
    def id(self) -> str:
        """`<service>-<name>`, as Sloth's `sloth_id`."""
        return f"{self.service}-{self.name}"

    @property
    def error_budget(self) -> float:
        """The allowed error ratio, 1 - objective."""
        return 1.0 - self.objective

    @property
    def period_key(self) -> str:
        """The period's window key in results: its duration (`30d`, `28d`, `1M`)."""
        if isinstance(self.period, CalendarPeriod):
            return self.period.key
        return format_duration(self.period)

    def period_window(self, at: datetime) -> timedelta:
        """The period window ending at `at`: the rolling period, or the calendar period so far."""
        if isinstance(self.period, CalendarPeriod):
            start, _ = self.period.bounds(at)
            return at.astimezone(timezone.utc) - start.astimezone(timezone.utc)
        return self.period

    def period_length(self, at: datetime) -> timedelta:
        """The full period length, for the burn-rate thresholds (a calendar month's own length)."""
        if isinstance(self.period, CalendarPeriod):
            start, end = self.period.bounds(at)
            return end.astimezone(timezone.utc) - start.astimezone(timezone.utc)
        return self.period


@dataclass(frozen=True)
class AlertSettings:
    disabled: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    for_: str | None = None


def zone(name: str | None) -> timezone | ZoneInfo:
    """An IANA zone by name (UTC when not given); raises KeyError-like ValueError for unknown names."""
    if not name or name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError for malformed keys
        raise ValueError(f"unknown time zone {name!r}") from exc
