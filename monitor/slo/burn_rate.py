"""Burn rates, error budgets and multi-window multi-burn-rate decisions (pure functions).

The arithmetic is the Google SRE workbook's ("Alerting on SLOs", table 5-8), as
Sloth implements it: a burn rate of 1 spends exactly the error budget over the
period. An alert condition fires when the budget share it names would be spent
within its long window, i.e. when

    burn rate > budget share x period / long window,

and the short window (1/12 of the long one) confirms the burn is still going on,
so the alert resets soon after the incident ends. For a 30d period that gives
14.4 (2% in 1h), 6 (5% in 6h), 3 (10% in 1d) and 1 (10% in 3d); for 28d 13.44,
5.6, 2.8 and 0.933.

"No data" (None) is carried through every function and never read as 0: a burn
rate we could not measure neither fires nor clears an alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Mapping

# The windows every SLO is evaluated over, besides its period.
WINDOWS: dict[str, timedelta] = {
    "5m": timedelta(minutes=5),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "2h": timedelta(hours=2),
    "6h": timedelta(hours=6),
    "1d": timedelta(days=1),
    "3d": timedelta(days=3),
}


@dataclass(frozen=True)
class BurnRateCondition:
    """Long and short window both burning faster than the rate that spends `budget_share` in `long`."""

    long: str
    short: str
    budget_share: float

    def threshold(self, period: timedelta) -> float:
        """The burn rate above which `budget_share` of the budget goes within the long window."""
        return self.budget_share * (period / WINDOWS[self.long])


PAGE_CONDITIONS = (BurnRateCondition("1h", "5m", 0.02), BurnRateCondition("6h", "30m", 0.05))
TICKET_CONDITIONS = (BurnRateCondition("1d", "2h", 0.10), BurnRateCondition("3d", "6h", 0.10))


def error_ratio(bad_events: float | None, total_events: float | None, min_events: float = 0.0) -> float | None:
    """bad / total over a window; None when either is missing or there are fewer than `min_events` events.

    The minimum keeps one failed request on a quiet service from reading as a 100%
    error ratio (and paging): below it the window says nothing.
    """
    if bad_events is None or total_events is None:
        return None
    if total_events <= 0 or total_events < min_events:
        return None
    return bad_events / total_events


def burn_rate(error_ratio_value: float | None, objective: float) -> float | None:
    """How fast the error budget is being spent: error ratio / (1 - objective); 1 spends it exactly."""
    if error_ratio_value is None:
        return None
    return error_ratio_value / (1.0 - objective)


def error_budget_remaining(bad_events: float | None, total_events: float | None, objective: float,
                           min_events: float = 0.0) -> float | None:
    """1 - (bad / total) / (1 - objective) over the period, from counted events.

    Counted events, not the mean of short-window ratios: a mean of 5m ratios weighs
    a quiet night's 5 minutes like a peak hour's (slok/sloth issues 332 and 618).
    Negative when the budget is overspent.
    """
    ratio = error_ratio(bad_events, total_events, min_events)
    if ratio is None:
        return None
    return 1.0 - ratio / (1.0 - objective)


def condition_holds(condition: BurnRateCondition, burn_rates: Mapping[str, float | None],
                    period: timedelta) -> bool | None:
    """Both windows above the threshold; None when a missing window could change the answer."""
    threshold = condition.threshold(period)
    values = [burn_rates.get(condition.long), burn_rates.get(condition.short)]
    # Three-valued AND: one measured window below the threshold settles it.
    if any(v is not None and not v > threshold for v in values):
        return False
    if any(v is None for v in values):
        return None
    return True


def alert_decision(conditions: tuple[BurnRateCondition, ...], burn_rates: Mapping[str, float | None],
                   period: timedelta) -> bool | None:
    """Any condition holds (page or ticket); None when undecidable for lack of data, never False."""
    outcomes = [condition_holds(c, burn_rates, period) for c in conditions]
    # Three-valued OR: one holding condition fires; otherwise unknown beats "no".
    if any(o is True for o in outcomes):
        return True
    if any(o is None for o in outcomes):
        return None
    return False
