"""The period a report covers: an ISO week or an explicit [from, to) range, in UTC.

Week boundaries are computed in UTC on purpose: `--week 2026-W47` is Monday
2026-11-16T00:00Z to Monday 2026-11-23T00:00Z wherever and whenever the report is
built, so a past week's report is reproducible byte for byte from the same data.
(The daemon's weekly *schedule* is in local time; the week it reports on is not.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from monitor.commands.arguments import instant_range_problem
from monitor.errors import MonitorError
from monitor.timeutil import utc

WEEK = timedelta(days=7)
# A report's rates and daily costs need at least this much: a shorter period has
# no complete 1h window to show.
MIN_PERIOD = timedelta(hours=1)
_ISO_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


class ReportPeriodError(MonitorError):
    """A week or range that cannot be reported on (malformed, reversed, empty)."""


@dataclass(frozen=True)
class ReportPeriod:
    """[start, end) in UTC, and the key naming its directory in the archive."""

    start: datetime
    end: datetime
    key: str          # "2026-W47", or "20261116T0000Z--20261123T0000Z" for a custom range
    label: str        # for people: "2026-W47 (16-22 Nov 2026)"

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @property
    def previous(self) -> "ReportPeriod":
        """The period of the same length just before this one (for week-over-week)."""
        return _named_period(self.start - self.length, self.start)


def _utc(at: datetime) -> datetime:
    """`at` in UTC; a report boundary without a zone is refused rather than guessed."""
    if at.tzinfo is None:
        raise ReportPeriodError(f"{at.isoformat()} has no time zone: give one, e.g. 2026-11-16T00:00:00Z")
    try:
        problem = instant_range_problem(at)
    except OverflowError:
        problem = f"{at.isoformat()} is outside the years 1970 to 2199"
    if problem:
        raise ReportPeriodError(problem)
    return utc(at)


def iso_week_period(text: str) -> ReportPeriod:
    """The ISO week `YYYY-Www` (Monday 00:00 UTC to the next Monday 00:00 UTC)."""
    match = _ISO_WEEK.match(text.strip())
    if not match:
        raise ReportPeriodError(f"invalid week {text!r}: expected an ISO week such as 2026-W47")
    year, week = int(match.group(1)), int(match.group(2))
    if not 1970 <= year < 2200:
        raise ReportPeriodError(f"invalid week {text!r}: the year must be from 1970 to 2199")
    try:
        date.fromisocalendar(year, week, 1)
    except ValueError:
        raise ReportPeriodError(f"invalid week {text!r}: {year} has no ISO week {week}") from None
    return _iso_week(year, week)


def _iso_week(year: int, week: int) -> ReportPeriod:
    monday = date.fromisocalendar(year, week, 1)
    start = datetime(monday.year, monday.month, monday.day, tzinfo=timezone.utc)
    end = start + WEEK
    last_day = end - timedelta(days=1)
    return ReportPeriod(start, end, f"{year}-W{week:02d}",
                        f"{year}-W{week:02d} ({start:%d %b} \N{EN DASH} {last_day:%d %b %Y}, UTC)")


def week_containing(at: datetime) -> ReportPeriod:
    """The ISO week (UTC) that contains `at`."""
    year, week, _ = _utc(at).isocalendar()
    return iso_week_period(f"{year}-W{week:02d}")


def last_complete_week(now: datetime) -> ReportPeriod:
    """The most recent ISO week (UTC) that ended at or before `now`: what a weekly run reports on."""
    return week_containing(_utc(now) - WEEK)


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant with a time zone ("Z" accepted)."""
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ReportPeriodError(f"invalid time {text!r}: expected ISO 8601 such as 2026-11-16T00:00:00Z") from None
    return _utc(at)


def custom_period(start: datetime, end: datetime) -> ReportPeriod:
    """An explicit [start, end) range; an exact ISO week is named as that week."""
    start, end = _utc(start), _utc(end)
    if end <= start:
        raise ReportPeriodError(f"the report period must end after it starts "
                                f"({start:%Y-%m-%dT%H:%M:%SZ} .. {end:%Y-%m-%dT%H:%M:%SZ})")
    if end - start < MIN_PERIOD:
        raise ReportPeriodError(f"the report period must be at least an hour long "
                                f"({start:%Y-%m-%dT%H:%M:%SZ} .. {end:%Y-%m-%dT%H:%M:%SZ})")
    return _named_period(start, end)


def _named_period(start: datetime, end: datetime) -> ReportPeriod:
    """[start, end), named as its ISO week when it is exactly one."""
    year, week, weekday = start.isocalendar()
    if weekday == 1 and start.time() == datetime.min.time() and end - start == WEEK:
        return _iso_week(year, week)
    key = f"{start:%Y%m%dT%H%MZ}--{end:%Y%m%dT%H%MZ}"
    return ReportPeriod(start, end, key, f"{start:%Y-%m-%d %H:%M} \N{EN DASH} {end:%Y-%m-%d %H:%M} UTC")
