"""The weekly report reaches its readers: a `report.published` notification for `reports.announce`.

When the daemon writes the weekly report, `announce_written_report` queues one
durable notification (the `notifications` table, like an alert group's, keyed by
the week so a second write of the same week announces nothing new). The router
turns it into one outbox delivery per Slack and email integration of each
announced receiver (`report_deliveries`), so announcements get the outbox's
retries, ordering and `monitor deliveries` like every other notification:

- Slack gets the headline bullets and a link to the report (`report_slack_message`);
- email gets the report page itself as its HTML part, plus a text part
  (`monitor.outputs.email.render_report_email`). Its charts are PNG parts the HTML
  references by `cid:` (Gmail and Outlook draw no inline SVG, and an email must
  fetch nothing): that copy of the page is drawn when the report is written and
  kept next to it as `email.json` ({"html", "images": {Content-ID: base64 PNG}}).
  It is read when the delivery is queued and kept in the delivery's body, so a
  retry sends exactly the same mail. Without it (a report written by an older
  release), the page as written, with its inline SVG charts, is sent.

The link is `outputs.report_url`: used as it is, or, when it ends in `/` (the
published reports directory), followed by the week's directory (`2026-W47/`).
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from monitor.alerting.events import REPORT_PUBLISHED, ReportEvent, event_to_json
from monitor.alerting.notification_repository import NotificationRepository
from monitor.alerting.notifications import Notification, NotificationKind
from monitor.config import Config, OutputsConfig
from monitor.outputs.email import REPORT_HTML_KEY, REPORT_IMAGES_KEY
from monitor.outputs.outbox import OutboxItem
from monitor.outputs.receivers import integration_destination, receivers_by_name
from monitor.outputs.slack_messages import (MAX_BUTTON_TEXT, MAX_FALLBACK_TEXT, MAX_HEADER_TEXT, MAX_SECTION_TEXT,
                                            MAX_URL, SlackMessage, escape_mrkdwn, truncate)
from monitor.report.files import write_atomic
from monitor.report.period import ReportPeriod
from monitor.report.render import WrittenReport, period_title, render_report_email_html
from monitor.store import StateStore
from monitor.timeutil import iso_z, utc

log = logging.getLogger(__name__)

# The page drawn for email, beside the report's index.html.
EMAIL_COPY_NAME = "email.json"


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
    created_at = utc(datetime.fromisoformat(event.created_at.replace("Z", "+00:00")))
    notification = Notification(notification_key(event), NotificationKind.REPORT_PUBLISHED, created_at, event)
    with store.transaction() as conn:
        return NotificationRepository(store).insert(conn, notification, cycle_id=None) is not None


def announce_written_report(store: StateStore, config: Config, written: WrittenReport,
                            now: datetime) -> ReportEvent | None:
    """Queue the announcement of `written` to `reports.announce`; None when nobody is to be told."""
    if not config.reports.announce:
        return None
    event = report_event(written, config.reports.announce, config.outputs.report_url, now)
    if written.model is not None and _announces_email(config):
        event = replace(event, email_path=str(write_email_copy(written)))
    if queue_report_announcement(store, event):
        log.info("weekly report %s announced to %s", event.week, ", ".join(event.receivers))
    return event


def _announces_email(config: Config) -> bool:
    return any(receiver.email_configs for receiver in config.outputs.receivers
               if receiver.name in config.reports.announce)


def write_email_copy(written: WrittenReport) -> Path:
    """Draw the page for email (PNG charts by Content-ID) and write it as email.json beside the page."""
    assert written.model is not None
    email = render_report_email_html(written.model)
    path = Path(written.html).resolve().parent / EMAIL_COPY_NAME
    document = {REPORT_HTML_KEY: email.html,
                REPORT_IMAGES_KEY: {cid: base64.b64encode(png).decode("ascii") for cid, png in email.images.items()}}
    write_atomic(path, json.dumps(document, separators=(",", ":"), sort_keys=True))
    return path


def report_deliveries(event: ReportEvent, outputs: OutputsConfig, key: str,
                      notification_id: int | None = None) -> list[OutboxItem]:
    """One delivery per Slack and email integration of each announced receiver."""
    receivers = receivers_by_name(outputs)
    items: list[OutboxItem] = []
    email: dict | None = None
    for name in event.receivers:
        receiver = receivers.get(name)
        if receiver is None:
            log.warning("report %s: reports.announce names receiver %r, which outputs.receivers does not define",
                        event.week, name)
            continue
        body = event_to_json(event)
        for index, _ in enumerate(receiver.slack_configs):
            items.append(OutboxItem(key, integration_destination(name, "slack", index), REPORT_PUBLISHED, body,
                                    None, notification_id))
        if receiver.email_configs and email is None:
            email = _read_email_copy(event)
        for index, _ in enumerate(receiver.email_configs):
            email_body = json.dumps({**event.to_dict(), **email}, separators=(",", ":"), sort_keys=True)
            items.append(OutboxItem(key, integration_destination(name, "email", index), REPORT_PUBLISHED,
                                    email_body, None, notification_id))
    return items


def _read_email_copy(event: ReportEvent) -> dict:
    """{"html", "images"} for the email: the copy drawn for email, else the page as written."""
    if event.email_path:
        try:
            document = json.loads(Path(event.email_path).read_text(encoding="utf-8"))
            if isinstance(document.get(REPORT_HTML_KEY), str) and isinstance(document.get(REPORT_IMAGES_KEY), dict):
                return {REPORT_HTML_KEY: document[REPORT_HTML_KEY], REPORT_IMAGES_KEY: document[REPORT_IMAGES_KEY]}
            log.warning("report %s: %s is not an email copy of the page; sending the page", event.week,
                        event.email_path)
        except (OSError, ValueError) as exc:
            log.warning("report %s: cannot read %s: %s; sending the page", event.week, event.email_path,
                        getattr(exc, "strerror", None) or exc)
    try:
        return {REPORT_HTML_KEY: Path(event.html_path).read_text(encoding="utf-8"), REPORT_IMAGES_KEY: {}}
    except (OSError, UnicodeDecodeError) as exc:
        # The email still goes out, with the headline and the link.
        log.warning("report %s: cannot read %s for the announcement email: %s", event.week, event.html_path,
                    getattr(exc, "strerror", None) or exc)
        return {REPORT_HTML_KEY: None, REPORT_IMAGES_KEY: {}}


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
