"""Hour arithmetic for closed periods (pure).

A period is the hour (end - 1h, end], named by its end, as a Prometheus window
ending at `end` sees it. An hour is closed once `SETTLE` has passed after its end:
samples scraped in its last seconds (or sent late by remote write) have landed by then.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable, Iterator

from monitor.timeutil import from_unix, utc

HOUR = timedelta(hours=1)
SETTLE = timedelta(minutes=2)


def closed_boundary(now: datetime, settle: timedelta = SETTLE) -> datetime:
    """The end of the latest closed hour at `now`: whole-hour figures are "as of" this instant."""
    seconds = (utc(now) - settle).timestamp()
    return from_unix(seconds - seconds % HOUR.total_seconds())


def hour_ends(start: datetime, end: datetime) -> list[datetime]:
    """The ends of the hours covering [start, end] (both whole hours), oldest first."""
    start, end = utc(start), utc(end)
    count = int((end - start) / HOUR)
    return [start + HOUR * (i + 1) for i in range(count)]


def contiguous_runs(ends: Iterable[datetime], max_length: int) -> Iterator[list[datetime]]:
    """Sorted hour ends split into runs of consecutive hours, each at most `max_length` long
    (one range query per run: a gap or the bound starts a new one)."""
    run: list[datetime] = []
    for end in sorted(ends):
        if run and (end - run[-1] != HOUR or len(run) >= max_length):
            yield run
            run = []
        run.append(end)
    if run:
        yield run
