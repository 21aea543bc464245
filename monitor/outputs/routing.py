"""Which destinations each queued notification goes to, and the body each will be sent.

Alert group notifications (firing, repeat, resolved) go to Slack and Alertmanager;
rollback events go to every webhook subscription that lists the event type and
whose `match` labels the alert carries. Routing reads the `notifications` table
the alerting stage fills (status `pending`) and, in one transaction, writes the
deliveries and marks the notification `routed`: a crash in between routes it again,
and the deliveries' unique key keeps that from queuing anything twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import quote

from monitor.alerting.events import REPORT_PUBLISHED, ReportEvent
from monitor.config import OutputsConfig
from monitor.outputs import alertmanager, slack
from monitor.outputs.outbox import Outbox, OutboxItem
from monitor.outputs.report_announce import report_deliveries
from monitor.outputs.webhooks import destination_name, rollback_event_body, subscribed
from monitor.timeutil import from_unix, iso_z

log = logging.getLogger(__name__)

ALERT_GROUP_KINDS = ("firing", "resolved", "repeat")
ROLLBACK_KINDS = ("rollback.requested", "rollback.cancelled")
ROUTED = "routed"
NO_DESTINATION = "no_destination"


@dataclass(frozen=True)
class LinkBuilder:
    """Links a responder wants beside an alert: the report, a Prometheus graph, the runbook."""

    report_url: str | None = None
    prometheus_url: str | None = None
    # alertname -> the PromQL of its rule, for rules written as PromQL.
    expr_by_alertname: Mapping[str, str] = field(default_factory=dict)

    def for_alerts(self, alerts: list[Mapping[str, Any]]) -> dict[str, str]:
        links: dict[str, str] = {}
        if self.report_url:
            links["report"] = self.report_url
        names = {a.get("labels", {}).get("alertname") for a in alerts}
        exprs = {self.expr_by_alertname[n] for n in names if n in self.expr_by_alertname}
        if self.prometheus_url and len(exprs) == 1:
            links["prometheus"] = prometheus_graph_url(self.prometheus_url, exprs.pop())
        runbooks = {a.get("annotations", {}).get("runbook_url") for a in alerts} - {None, ""}
        if len(runbooks) == 1:
            links["runbook"] = runbooks.pop()
        return links


def prometheus_graph_url(base_url: str, expr: str, range_input: str = "6h") -> str:
    """Prometheus' graph page for `expr` (the UI's g0.* query parameters)."""
    return f"{base_url.rstrip('/')}/graph?g0.expr={quote(expr, safe='')}&g0.tab=0&g0.range_input={range_input}"


@dataclass(frozen=True)
class Router:
    outputs: OutputsConfig
    links: LinkBuilder = field(default_factory=LinkBuilder)

    def destinations(self) -> list[str]:
        """Every destination name this config sends to."""
        names = [slack.DESTINATION] if self.outputs.slack else []
        names += [destination_name(w) for w in self.outputs.webhooks]
        if self.outputs.alertmanager:
            names.append(alertmanager.DESTINATION)
        return names

    def target_digests(self) -> dict[str, str]:
        """Per destination, a digest of its configured target (URL, channel, secret names; never a
        secret's value): a destination disabled by a 410 is re-enabled when this changes."""
        configs: dict[str, object] = {}
        if self.outputs.slack:
            configs[slack.DESTINATION] = self.outputs.slack
        for subscription in self.outputs.webhooks:
            configs[destination_name(subscription)] = subscription
        if self.outputs.alertmanager:
            configs[alertmanager.DESTINATION] = self.outputs.alertmanager
        return {name: hashlib.sha256(repr(config).encode()).hexdigest()[:32] for name, config in configs.items()}

    def route(self, notification_key: str, kind: str, created_at: str, payload: Mapping[str, Any],
              notification_id: int | None = None) -> list[OutboxItem]:
        """The deliveries for one notification."""
        items: list[OutboxItem] = []
        if kind in ALERT_GROUP_KINDS:
            alerts = list(payload.get("alerts", []))
            links = self.links.for_alerts(alerts)
            group_key = payload.get("groupKey")
            if self.outputs.slack:
                body = json.dumps({**payload, "links": links}, separators=(",", ":"))
                items.append(OutboxItem(notification_key, slack.DESTINATION, kind, body, group_key, notification_id))
            if self.outputs.alertmanager:
                items.append(OutboxItem(notification_key, alertmanager.DESTINATION, kind,
                                        alertmanager.alerts_body(payload, links.get("prometheus")), group_key,
                                        notification_id))
        elif kind in ROLLBACK_KINDS:
            alert = payload.get("alert") or {}
            links = self.links.for_alerts([alert])
            body = rollback_event_body(kind, created_at, payload, links)
            for subscription in self.outputs.webhooks:
                if subscribed(subscription, kind, alert.get("labels", {})):
                    items.append(OutboxItem(notification_key, destination_name(subscription), kind, body, None,
                                            notification_id))
        elif kind == REPORT_PUBLISHED:
            items = report_deliveries(ReportEvent.from_dict(payload, created_at), self.outputs, notification_key,
                                      notification_id)
        else:
            log.warning("notification %s has unknown kind %r: not routed", notification_key, kind)
        return items


def route_pending_notifications(outbox: Outbox, router: Router, now: float) -> int:
    """Move every `pending` notification into the outbox; returns how many deliveries were queued."""
    queued = 0
    with outbox.store.transaction() as conn:
        for row in conn.execute("SELECT id, idempotency_key, kind, created_at, payload FROM notifications "
                                "WHERE status = 'pending' ORDER BY id").fetchall():
            queued += _route_one(conn, outbox, router, row, now)
    return queued


def _route_one(conn: sqlite3.Connection, outbox: Outbox, router: Router, row: sqlite3.Row, now: float) -> int:
    created_at = iso_z(from_unix(row["created_at"]))
    items = router.route(row["idempotency_key"], row["kind"], created_at, json.loads(row["payload"]), row["id"])
    added = outbox.enqueue(items, now, conn=conn)
    conn.execute("UPDATE notifications SET status = ? WHERE id = ?", (ROUTED if items else NO_DESTINATION, row["id"]))
    return added
