"""When a failed delivery is tried again: a fixed schedule with jitter, and Retry-After.

The default is the schedule the Standard Webhooks spec recommends (after the first
attempt, retries 5s, 5m, 30m, 2h, 5h, 10h, 14h, 20h and 24h later: about 3 days
in all), so a receiver that is down over a weekend still gets every event. Tests
use a compressed schedule.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

# Delays before each attempt; the first entry is the first attempt (immediately).
STANDARD_WEBHOOKS_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(0), timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
    timedelta(hours=5), timedelta(hours=10), timedelta(hours=14), timedelta(hours=20), timedelta(hours=24),
)
# Up to this share is added to each delay, so receivers recovering from an outage
# are not hit by every sender at the same instant.
DEFAULT_JITTER_SHARE = 0.1
# A server asking for more than this is not believed: we retry after the cap.
MAX_RETRY_AFTER_S = 3600.0


@dataclass(frozen=True)
class RetrySchedule:
    """Delays before attempt 1, 2, ... n; after attempt n fails the delivery expires."""

    delays: tuple[timedelta, ...] = STANDARD_WEBHOOKS_SCHEDULE
    jitter_share: float = DEFAULT_JITTER_SHARE

    @property
    def max_attempts(self) -> int:
        return len(self.delays)

    @property
    def total(self) -> timedelta:
        """From the first scheduled attempt to the last, without jitter."""
        return sum(self.delays, timedelta(0))

    def delay_after_failures_s(self, failures: int, rng: random.Random) -> float | None:
        """Seconds to wait after the `failures`-th failed attempt, or None when none is left."""
        if failures >= len(self.delays):
            return None
        base_s = self.delays[failures].total_seconds()
        return base_s * (1.0 + rng.uniform(0.0, self.jitter_share))


def parse_retry_after_s(header: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds form; HTTP dates are rare from APIs and ignored)."""
    if header is None:
        return None
    try:
        seconds = float(header.strip())
    except ValueError:
        return None
    if seconds != seconds or seconds < 0:  # NaN or negative: not a usable answer
        return None
    return min(seconds, MAX_RETRY_AFTER_S)
