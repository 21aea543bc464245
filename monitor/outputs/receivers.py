"""Receivers and their integrations as outbox destinations: the names lanes, metrics and `monitor deliveries` use.

One integration of one receiver is one destination, so a PagerDuty outage never
holds up the same receiver's Slack. Names: `RECEIVER/INTEGRATION` (`ranking/pagerduty`),
with `#N` for the second and later integration of one kind (`ranking/slack#2`). The
legacy single-channel config keeps its old names (`slack`, `alertmanager`), so
existing queues, metrics and dashboards carry on across the upgrade.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monitor.alerting.events import AlertGroupEvent, event_from_json
from monitor.alerting.routes import DEFAULT_RECEIVER
from monitor.config import OutputsConfig, ReceiverConfig
from monitor.outputs.results import SendOutcome, SendResult

if TYPE_CHECKING:
    from monitor.outputs.outbox import Delivery

# Integration kinds, as the receiver config keys name them (without `_configs`).
INTEGRATIONS = ("slack", "pagerduty", "msteams", "email", "webhook")
LEGACY_SLACK = "slack"


def integration_destination(receiver: str, integration: str, index: int = 0) -> str:
    """The outbox destination name of a receiver's `index`-th integration of one kind."""
    if receiver == DEFAULT_RECEIVER and integration == "slack" and index == 0:
        return LEGACY_SLACK
    return f"{receiver}/{integration}" + (f"#{index + 1}" if index else "")


@dataclass(frozen=True)
class Integration:
    """One integration of one receiver: an outbox destination and the config that sends to it."""

    receiver: str
    kind: str                  # one of INTEGRATIONS
    index: int                 # among the receiver's integrations of this kind
    config: Any

    @property
    def destination(self) -> str:
        return integration_destination(self.receiver, self.kind, self.index)


def receivers_by_name(outputs: OutputsConfig) -> dict[str, ReceiverConfig]:
    """`outputs.receivers` by name, plus the implicit `default`: the legacy `outputs.slack` (if set),
    unless a receiver named `default` is configured."""
    found = {receiver.name: receiver for receiver in outputs.receivers}
    if DEFAULT_RECEIVER not in found:
        found[DEFAULT_RECEIVER] = ReceiverConfig(DEFAULT_RECEIVER,
                                                 slack_configs=[outputs.slack] if outputs.slack else [])
    return found


def integrations_of(receiver: ReceiverConfig) -> list[Integration]:
    """Every integration of a receiver, in config order per kind."""
    return [Integration(receiver.name, kind, index, config)
            for kind in INTEGRATIONS
            for index, config in enumerate(getattr(receiver, f"{kind}_configs"))]


def alert_group_of(delivery: Delivery, integration: str) -> AlertGroupEvent | SendResult:
    """The delivery's alert group event, or the REFUSED result that says why it is not one.

    Every alert-group integration starts here: a body that does not decode (a bug, or a row
    edited by hand) or an event of another kind is refused for good, never retried and never
    raised into the lane.
    """
    try:
        event = event_from_json(delivery.event_type, delivery.body)
    except (ValueError, TypeError, AttributeError) as exc:
        return SendResult(SendOutcome.REFUSED, error=f"{delivery.destination}: cannot decode the event: "
                                                     f"{type(exc).__name__}")
    if not isinstance(event, AlertGroupEvent):
        return SendResult(SendOutcome.REFUSED, error=f"{delivery.destination}: {integration} receives alert "
                                                     f"groups only, not {delivery.event_type}")
    return event
