"""The weekly report reaches its readers: a `report.published` notification for `reports.announce`.

When the daemon writes the weekly report, `announce_written_report` queues one
durable notification (the `notifications` table, like an alert group's, keyed by
the week so a second write of the same week announces nothing new). The router
turns it into one outbox delivery per Slack and email integration of each
announced receiver (`report_deliveries`), so announcements get the outbox's
retries, ordering and `monitor deliveries` like every other notification:

- Slack gets the headline bullets and a link to the report (`report_slack_message`);
- email gets the report page itself as its HTML part, plus a text part
  (`monitor.outputs.email.render_report_email`). The page is read when the
  delivery is queued and kept in its body, so a retry sends exactly the same mail.

The link is `outputs.report_url`: used as it is, or, when it ends in `/` (the
published reports directory), followed by the week's directory (`2026-W47/`).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path

from monitor.alerting.events import REPORT_PUBLISHED, ReportEvent, event_to_json
from monitor.alerting.routes import DEFAULT_RECEIVER
from monitor.config import Config, OutputsConfig
from monitor.outputs.email import REPORT_HTML_KEY
from monitor.outputs.outbox import OutboxItem
from monitor.outputs.receivers import integration_destination
from monitor.outputs.slack_messages import (MAX_BUTTON_TEXT, MAX_FALLBACK_TEXT, MAX_HEADER_TEXT, MAX_SECTION_TEXT,
                                            MAX_URL, SlackMessage, escape_mrkdwn, truncate)
from monitor.report.period import ReportPeriod
from monitor.report.render import WrittenReport, period_title
from monitor.store import StateStore
from monitor.timeutil import iso_z, utc

log = logging.getLogger(__name__)

PENDING = "pending"


def report_link(report_url: str | None, week: str) -> str | None:
    """Where people open the week's report (see the module docstring), or None when not configured."""
    if not report_url:
        return None
    return f"{report_url}{week}/" if report_url.endswith("/") else report_url


def report_event(written: WrittenReport, receivers: list[str] | tuple[str, ...], report_url: str | None,
                 created_at: datetime) -> ReportEvent:
    """The announcement of a written report, from its report.json (the same headline as the page)."""
    document = json.loads(Path(written.json).read_text(encoding="utf-8"))
    period = document["period"]
    start = datetime.fromisoformat(str(period["start"]).replace("Z", "+00:00"))
    end = datetime.fromisoformat(str(period["end"]).replace("Z", "+00:00"))
    key = str(period["key"])
    title = period_title(ReportPeriod(utc(start), utc(end), key, str(period.get("label") or key)))
    sentences = tuple(str(s) for s in (document.get("headline") or {}).get("sentences") or ())
    return ReportEvent(kind=REPORT_PUBLISHED, week=key, title=title, headline=sentences,
                       created_at=iso_z(created_at), html_path=str(Path(written.html).resolve()),
                       url=report_link(report_url, key), receivers=tuple(receivers))


def notification_key(event: ReportEvent) -> str:
    return f"{REPORT_PUBLISHED}:{event.week}"


def queue_report_announcement(store: StateStore, event: ReportEvent) -> bool:
    """Write the announcement to the notifications table; False when this week was announced already."""
    with store.transaction() as conn:
        cursor = conn.execute(
            "INSERT INTO notifications (idempotency_key, kind, created_at, cycle_id, payload, status) "
            "VALUES (?, ?, ?, NULL, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
            (notification_key(event), REPORT_PUBLISHED,
             utc(datetime.fromisoformat(event.created_at.replace("Z", "+00:00"))).timestamp(),
             event_to_json(event), PENDING))
        return bool(cursor.rowcount)


def announce_written_report(store: StateStore, config: Config, written: WrittenReport,
                            now: datetime) -> ReportEvent | None:
    """Queue the announcement of `written` to `reports.announce`; None when nobody is to be told."""
    if not config.reports.announce:
        return None
    event = report_event(written, config.reports.announce, config.outputs.report_url, now)
    if queue_report_announcement(store, event):
        log.info("weekly report %s announced to %s", event.week, ", ".join(event.receivers))
    return event


def report_deliveries(event: ReportEvent, outputs: OutputsConfig, key: str,
                      notification_id: int | None = None) -> list[OutboxItem]:
    """One delivery per Slack and email integration of each announced receiver."""
    receivers = {receiver.name: receiver for receiver in outputs.receivers}
    items: list[OutboxItem] = []
    html: str | None = None
    for name in event.receivers:
        receiver = receivers.get(name)
        if receiver is None and name == DEFAULT_RECEIVER and outputs.slack is not None:
            # The legacy single-channel config is the receiver `default`: its channel hears of it too.
            items.append(OutboxItem(key, integration_destination(name, "slack"), REPORT_PUBLISHED,
                                    event_to_json(event), None, notification_id))
            continue
        if receiver is None:
            log.warning("report %s: reports.announce names receiver %r, which outputs.receivers does not define",
                        event.week, name)
            continue
        body = event_to_json(event)
        for index, _ in enumerate(receiver.slack_configs):
            items.append(OutboxItem(key, integration_destination(name, "slack", index), REPORT_PUBLISHED, body,
                                    None, notification_id))
        if receiver.email_configs and html is None:
            html = _read_page(event)
        for index, _ in enumerate(receiver.email_configs):
            email_body = json.dumps({**event.to_dict(), REPORT_HTML_KEY: html}, separators=(",", ":"),
                                    sort_keys=True)
            items.append(OutboxItem(key, integration_destination(name, "email", index), REPORT_PUBLISHED,
                                    email_body, None, notification_id))
    return items


def _read_page(event: ReportEvent) -> str | None:
    try:
        return Path(event.html_path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        # The email still goes out, with the headline and the link.
        log.warning("report %s: cannot read %s for the announcement email: %s", event.week, event.html_path,
                    getattr(exc, "strerror", None) or exc)
        return None


def report_slack_message(event: ReportEvent) -> SlackMessage:
    """The headline bullets and a button to the report; every sentence escaped (Block Kit limits kept)."""
    title = truncate(f"ML service review: {event.title or event.week}", MAX_HEADER_TEXT)
    bullets = "\n".join(f"• {escape_mrkdwn(sentence)}" for sentence in event.headline) or "_No headline figures._"
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": title}},
        {"type": "section", "text": {"type": "mrkdwn", "text": truncate(bullets, MAX_SECTION_TEXT)}},
    ]
    if event.url and len(event.url) <= MAX_URL:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": truncate("Open the report", MAX_BUTTON_TEXT)},
             "url": event.url}]})
    text = title + "\n" + "\n".join(f"- {escape_mrkdwn(s)}" for s in event.headline)
    if event.url:
        text += f"\n{event.url}"
    return SlackMessage(truncate(text, MAX_FALLBACK_TEXT), blocks)
