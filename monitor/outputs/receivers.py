"""Receivers and their integrations as outbox destinations: the names lanes, metrics and `monitor deliveries` use.

One integration of one receiver is one destination, so a PagerDuty outage never
holds up the same receiver's Slack. Names: `RECEIVER/INTEGRATION` (`ranking/pagerduty`),
with `#N` for the second and later integration of one kind (`ranking/slack#2`). The
legacy single-channel config keeps its old names (`slack`, `alertmanager`), so
existing queues, metrics and dashboards carry on across the upgrade.
"""

from __future__ import annotations

from monitor.alerting.routes import DEFAULT_RECEIVER

# Integration kinds, as the receiver config keys name them (without `_configs`).
INTEGRATIONS = ("slack", "pagerduty", "msteams", "email", "webhook")
LEGACY_SLACK = "slack"


def integration_destination(receiver: str, integration: str, index: int = 0) -> str:
    """The outbox destination name of a receiver's `index`-th integration of one kind."""
    if receiver == DEFAULT_RECEIVER and integration == "slack" and index == 0:
        return LEGACY_SLACK
    return f"{receiver}/{integration}" + (f"#{index + 1}" if index else "")
