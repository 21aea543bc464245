"""Report periods: ISO weeks in UTC, explicit ranges, and the CLI's errors for bad ones."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from monitor.cli import main
from monitor.report.intervals import Interval, runs_below
from monitor.report.period import (ReportPeriodError, custom_period, iso_week_period, last_complete_week,
                                   parse_instant)

UTC = timezone.utc


@pytest.mark.parametrize("week, start, end", [
    ("2026-W47", datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC)),
    ("2026-W01", datetime(2025, 12, 29, tzinfo=UTC), datetime(2026, 1, 5, tzinfo=UTC)),
    ("2026-W53", datetime(2026, 12, 28, tzinfo=UTC), datetime(2027, 1, 4, tzinfo=UTC)),
], ids=["a week is Monday 00:00 UTC to the next Monday",
        "week 1 can start in the previous calendar year",
        "a long ISO year has a week 53"])
def test_an_iso_week_has_utc_boundaries(week, start, end):
    period = iso_week_period(week)
    assert (period.start, period.end, period.key) == (start, end, week)


@pytest.mark.parametrize("text, message", [
    ("2026-47", "expected an ISO week"),
    ("2025-W53", "2025 has no ISO week 53"),
    ("2026-W00", "has no ISO week 0"),
], ids=["a malformed week is refused", "a week the year does not have is refused", "week 0 is refused"])
def test_bad_weeks_are_refused(text, message):
    with pytest.raises(ReportPeriodError, match=message):
        iso_week_period(text)


def test_a_weekly_run_reports_on_the_last_complete_week_whatever_the_local_time():
    # Monday 08:00 in Sydney is still Sunday in UTC: the last complete week is W46.
    assert last_complete_week(datetime(2026, 11, 23, 8, 0, tzinfo=timezone(timedelta(hours=11)))).key == "2026-W46"
    assert last_complete_week(datetime(2026, 11, 23, 8, 0, tzinfo=UTC)).key == "2026-W47"


def test_an_explicit_range_equal_to_a_week_is_named_as_that_week():
    assert custom_period(parse_instant("2026-11-16T00:00:00Z"), parse_instant("2026-11-23T00:00:00Z")).key == \
        "2026-W47"
    period = custom_period(parse_instant("2026-11-20T06:00:00+01:00"), parse_instant("2026-11-22T00:00:00Z"))
    assert period.key == "20261120T0500Z--20261122T0000Z" and period.previous.end == period.start


@pytest.mark.parametrize("text", ["2026-11-16T00:00:00", "yesterday"],
                         ids=["a time without a zone is refused", "a non-ISO time is refused"])
def test_instants_need_a_zone(text):
    with pytest.raises(ReportPeriodError):
        parse_instant(text)


@pytest.mark.parametrize("argv, message", [
    (["report", "--week", "2026-W99"], "2026 has no ISO week 99"),
    (["report", "--from", "2026-11-16T00:00:00Z"], "give both --from and --to"),
    (["report", "--from", "2026-11-23T00:00:00Z", "--to", "2026-11-16T00:00:00Z"], "must end after it starts"),
], ids=["the CLI names a bad week", "the CLI needs both ends of a range", "the CLI refuses a reversed range"])
def test_the_cli_prints_one_error_line_and_exits_1(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def _t(minutes: int) -> float:
    return datetime(2026, 11, 22, tzinfo=UTC).timestamp() + minutes * 60


@pytest.mark.parametrize("values, missing_counts, expected", [
    ([50, 2, 3, 1, 50], False, [(5, 20)]),
    ([50, 2, 2, None, 1, 1, 50], False, [(5, 15), (20, 30)]),
    ([50, 2, 2, None, 1, 1, 50], True, [(5, 30)]),
    ([50, 2, 50, 50, 50], False, []),
    ([50, 50, 50, 2, 2], False, [(15, 25)]),
], ids=["a run below the threshold spans from its first sample to the next sample above",
        "a missing sample breaks an idle run when missing is not idle",
        "a missing sample continues a no-data run",
        "a run shorter than the minimum is dropped",
        "a run still open at the end closes one step after the last sample"])
def test_runs_below(values, missing_counts, expected):
    grid = [_t(5 * i) for i in range(len(values))]
    runs = runs_below(grid, values, 10, timedelta(minutes=5), timedelta(minutes=10), missing_counts)
    assert runs == [Interval(datetime.fromtimestamp(_t(a), UTC), datetime.fromtimestamp(_t(b), UTC))
                    for a, b in expected]
