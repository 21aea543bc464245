"""The burn-rate arithmetic, thresholds and three-valued page/ticket decisions (pure, no Prometheus)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitor.slo.burn_rate import (PAGE_CONDITIONS, TICKET_CONDITIONS, alert_decision, burn_rate,
                                   error_budget_remaining, error_ratio)

DAYS_30 = timedelta(days=30)
DAYS_28 = timedelta(days=28)


@pytest.mark.parametrize("period, expected", [
    pytest.param(DAYS_30, (14.4, 6.0, 3.0, 1.0), id="30d thresholds are the SRE workbook's 14.4, 6, 3 and 1"),
    pytest.param(DAYS_28, (13.44, 5.6, 2.8, 28 / 30), id="28d thresholds scale with the period: 13.44, 5.6, 2.8, 0.933"),
])
def test_thresholds_are_budget_share_times_period_over_long_window(period, expected):
    got = [c.threshold(period) for c in (*PAGE_CONDITIONS, *TICKET_CONDITIONS)]
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("bad, total, min_events, expected", [
    pytest.param(5.0, 1000.0, 10, 0.005, id="bad over total"),
    pytest.param(0.0, 1000.0, 10, 0.0, id="no errors with traffic is a real zero"),
    pytest.param(0.0, 0.0, 0, None, id="a window with no events is no data, not zero"),
    pytest.param(None, 1000.0, 10, None, id="a missing error series is no data"),
    pytest.param(1.0, None, 10, None, id="a missing total series is no data"),
    pytest.param(1.0, 3.0, 10, None, id="one failed request among three on a quiet service is no data"),
    pytest.param(1.0, 10.0, 10, 0.1, id="at the minimum number of events the ratio counts"),
])
def test_error_ratio(bad, total, min_events, expected):
    assert error_ratio(bad, total, min_events) == expected


def test_burn_rate_is_error_ratio_over_the_budget():
    assert burn_rate(0.0144, 0.999) == pytest.approx(14.4)
    assert burn_rate(None, 0.999) is None


@pytest.mark.parametrize("bad, total, expected", [
    pytest.param(500.0, 1_000_000.0, 0.5, id="half the budget spent leaves half"),
    pytest.param(2_000.0, 1_000_000.0, -1.0, id="an overspent budget goes negative"),
    pytest.param(0.0, 0.0, None, id="a period without events has no budget figure"),
])
def test_error_budget_remaining_counts_events_over_the_period(bad, total, expected):
    got = error_budget_remaining(bad, total, 0.999)
    assert got == (None if expected is None else pytest.approx(expected))


def _burns(**by_window):
    windows = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
    return {w: by_window.get("w" + w) for w in windows}


@pytest.mark.parametrize("burns, page, ticket", [
    pytest.param(_burns(w5m=20, w30m=20, w1h=15, w2h=1, w6h=1, w1d=1, w3d=1), True, False,
                 id="budget burning at 15x for the hour and still burning pages"),
    pytest.param(_burns(w5m=0.1, w30m=20, w1h=15, w2h=1, w6h=1, w1d=1, w3d=1), False, False,
                 id="a fast burn that stopped in the last 5 minutes does not page"),
    pytest.param(_burns(w5m=7, w30m=7, w1h=7, w2h=7, w6h=7, w1d=4, w3d=2), True, True,
                 id="6x for six hours pages and tickets"),
    pytest.param(_burns(w5m=4, w30m=4, w1h=4, w2h=4, w6h=4, w1d=4, w3d=1.2), False, True,
                 id="a slow 4x burn over a day tickets"),
    pytest.param(_burns(w5m=0.2, w30m=0.2, w1h=0.2, w2h=0.2, w6h=0.2, w1d=0.2, w3d=0.2), False, False,
                 id="a healthy service neither pages nor tickets"),
    pytest.param(_burns(w6h=0.2, w1d=0.2, w3d=0.2), None, False,
                 id="no traffic for hours: the page is undecidable, the healthy long windows settle the ticket"),
    pytest.param(_burns(), None, None, id="no data at all decides nothing"),
    pytest.param(_burns(w5m=20, w1h=20), True, None,
                 id="a burning hour pages even while the longer windows have no data"),
    pytest.param(_burns(w5m=20, w30m=20, w1h=None, w6h=0.5, w1d=0.5, w3d=0.5), None, False,
                 id="a burning 5m with the hour missing is undecidable, not a page and not OK"),
])
def test_multiwindow_decisions(burns, page, ticket):
    assert alert_decision(PAGE_CONDITIONS, burns, DAYS_30) is page
    assert alert_decision(TICKET_CONDITIONS, burns, DAYS_30) is ticket


def test_28d_period_pages_at_its_own_lower_threshold():
    burns = _burns(w5m=14, w30m=14, w1h=14, w2h=1, w6h=1, w1d=1, w3d=0.5)
    assert alert_decision(PAGE_CONDITIONS, burns, DAYS_30) is False  # 14 < 14.4
    assert alert_decision(PAGE_CONDITIONS, burns, DAYS_28) is True   # 14 > 13.44
