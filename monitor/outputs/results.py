"""What one delivery attempt came to, as every destination reports it to the outbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class SendOutcome(Enum):
    DELIVERED = "delivered"        # a 2xx: done
    FAILED = "failed"              # try again on the retry schedule
    RATE_LIMITED = "rate_limited"  # try again after Retry-After; does not use up the schedule
    GONE = "gone"                  # 410: the receiver asked us to stop; disable the destination
    REFUSED = "refused"            # will never succeed as configured (e.g. a private address)


@dataclass(frozen=True)
class SendResult:
    outcome: SendOutcome
    status_code: int | None = None
    # Seconds the server asked us to wait (Retry-After), if it said.
    retry_after_s: float | None = None
    # Why it failed, for `monitor deliveries`: never a secret, never a secret-bearing URL.
    error: str | None = None
    # Whatever the destination must remember between steps (Slack message ts).
    progress: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def delivered(cls, status_code: int | None = 200, **progress: Any) -> "SendResult":
        return cls(SendOutcome.DELIVERED, status_code, progress=dict(progress))


def classify_http_status(status_code: int, retry_after_s: float | None, *,
                         gone_unsubscribes: bool = False) -> SendOutcome:
    """The outcome of an HTTP answer, as the Standard Webhooks spec and Slack document it.

    A 410 disables the destination only where the receiver's protocol says it means
    "unsubscribe" (`gone_unsubscribes`: Standard Webhooks). Slack, PagerDuty, Teams and
    Alertmanager document no such meaning: there it is one more failure, retried, so a
    proxy's stray 410 never silently stops paging.
    """
    if 200 <= status_code < 300:
        return SendOutcome.DELIVERED
    if status_code == 410:
        return SendOutcome.GONE if gone_unsubscribes else SendOutcome.FAILED
    if status_code == 429 or (status_code == 503 and retry_after_s is not None):
        return SendOutcome.RATE_LIMITED if retry_after_s is not None else SendOutcome.FAILED
    # Redirects are not followed (a redirect could point anywhere, including inside
    # our network), and every other status may be transient: retry on the schedule.
    return SendOutcome.FAILED
