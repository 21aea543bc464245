"""Microsoft Teams: an Adaptive Card per alert group, posted to a Workflows (Power Automate) webhook.

Office 365 connectors are retired; Teams' Workflows app posts what its "When a Teams
webhook request is received" trigger receives, and supports Adaptive Cards only:
https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
The body is a message with one attachment of content type
`application/vnd.microsoft.card.adaptive` whose `content` is the card.

Limits (https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook
and https://learn.microsoft.com/en-us/connectors/teams/#known-issues-and-limitations):
a message is at most about 28 KB, or posting fails "Request Entity Too Large"; more
than four requests a second are answered 429. So the card lists as many alerts as fit
under the limit (then "and N more"), and the outbox honours a 429's Retry-After.

Label values are untrusted text, and an Adaptive Card TextBlock (and a FactSet's
title and value) render a markdown subset, links included: every value is
backslash-escaped (CommonMark), so `[pay here](https://evil.example)` shows as typed
and never as a link. Links of our own are Action.OpenUrl buttons, never inline.
The webhook URL carries its signature (`sig=`): it is a secret, read at send time
and never put in an error.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from monitor.alerting.events import AlertEvent, AlertGroupEvent
from monitor.config import TeamsConfig
from monitor.errors import MonitorError
from monitor.outputs import http_transport
from monitor.outputs.address_guard import BlockedAddressError, Resolver, system_resolver
from monitor.outputs.alert_text import IDENTITY_LABELS, group_title, one_line, ordered_links, truncate
from monitor.outputs.backoff import parse_retry_after_s
from monitor.outputs.clock import Clock, SystemClock
from monitor.outputs.message_templates import render_override
from monitor.outputs.outbox import Delivery
from monitor.outputs.pagerduty import group_severity, is_http_url, link_text
from monitor.outputs.receivers import alert_group_of
from monitor.outputs.results import SendOutcome, SendResult, classify_http_status
from monitor.secrets import read_secret, redact


CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.4"                  # Teams renders up to 1.5; 1.4 is what every Teams client shows
USER_AGENT = "monitor-msteams/1"
# Teams' documented limit is 28 KB per message; we keep a margin for the workflow's own wrapping.
MAX_MESSAGE_BYTES = 28_000
MESSAGE_BUDGET_BYTES = 26_000
MAX_ALERTS_SHOWN = 10
MAX_FACTS = 20                        # facts in the group's FactSet
MAX_ALERT_LABELS = 12                 # an alert's own labels shown (then "and N more labels")
MAX_EVIDENCE = 8
MAX_ACTIONS = 6                       # Teams' host config: buttons shown per action set
MAX_TITLE_CHARS = 200
# Text limits, tightened step by step until the card fits (a hostile group's labels can be huge).
_TEXT_LIMITS = ((2000, 300), (1000, 120), (300, 40))   # (main text, each fact or line value)

# The CommonMark characters that start markdown in a TextBlock: emphasis, code, links and
# images (no link or image without `[`), autolinks and HTML, headings, tables, strikethrough,
# and entity references (`&lt;` would show as `<`, not as typed).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~&])")
# What makes a line a list item (`- x`, `+ x`, `1. x`, `1) x`) or a thematic break (`---`).
_LIST_MARKER = re.compile(r"^([-+]|\d{1,9}[.)])(?=\s|$)")
_RULE = re.compile(r"^-(?=[-\s]*$)")
_COLOR = {"critical": "Attention", "error": "Attention", "warning": "Warning", "info": "Accent"}


def plain_line(text: str) -> str:
    """One line of printable text: control and format characters (bidi overrides too) removed."""
    return one_line("".join(ch for ch in str(text) if unicodedata.category(ch) not in ("Cc", "Cf")))


def escape_markdown(text: str) -> str:
    """`text` shown as typed in an Adaptive Card TextBlock or Fact: no link, emphasis, list or HTML."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", plain_line(text))
    # Only the line's start can open a block (plain_line leaves one line, no leading space).
    escaped = _LIST_MARKER.sub(lambda m: m.group(1)[:-1] + "\\" + m.group(1)[-1], escaped)
    return _RULE.sub(r"\\-", escaped)


def bounded(text: str, limit: int) -> str:
    """An escaped text cut to `limit` characters without leaving a dangling backslash before the ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    trailing = len(cut) - len(cut.rstrip("\\"))
    if trailing % 2:
        cut = cut[:-1]
    return cut + "…"


def default_text(event: AlertGroupEvent) -> str:
    """The card's main text when no template overrides it: the summary, else what fires and what resolved."""
    annotations = event.common_annotations
    summary = annotations.get("summary") or annotations.get("description")
    if summary:
        return escape_markdown(summary)
    parts = [f"{event.firing_count} firing"] if event.firing_count else []
    parts += [f"{event.resolved_count} resolved"] if event.resolved_count else []
    return ", ".join(parts) or "no alerts"


def _fact(title: str, value: Any, value_chars: int) -> dict[str, str]:
    return {"title": bounded(escape_markdown(title), 60), "value": bounded(escape_markdown(str(value)), value_chars)}


def _facts(values: dict[str, Any], value_chars: int) -> list[dict[str, str]]:
    items = sorted(values.items())
    facts = [_fact(k, v, value_chars) for k, v in items[:MAX_FACTS]]
    if len(items) > MAX_FACTS:
        facts.append({"title": "…", "value": f"and {len(items) - MAX_FACTS} more labels"})
    return facts


def _alert_container(alert: AlertEvent, common: dict[str, str], value_chars: int) -> dict[str, Any]:
    state = "FIRING" if alert.firing else "RESOLVED"
    summary = alert.annotations.get("summary")
    heading = f"**{state}** {escape_markdown(alert.alertname)}" + (
        f": {escape_markdown(summary)}" if summary else "")
    own = {k: v for k, v in alert.labels.items() if common.get(k) != v}
    # What makes this alert this alert first, then the rest; then its value and evidence.
    shown = {k: own[k] for k in IDENTITY_LABELS if k in own}
    shown.update({k: v for k, v in sorted(own.items()) if k not in shown})
    facts = [_fact(k, v, value_chars) for k, v in list(shown.items())[:MAX_ALERT_LABELS]]
    if len(shown) > MAX_ALERT_LABELS:
        facts.append({"title": "…", "value": f"and {len(shown) - MAX_ALERT_LABELS} more labels"})
    if alert.value is not None:
        facts.append(_fact("value", f"{alert.value:g}", value_chars))
    # The evidence is why it fired: always shown, however many labels the alert has.
    facts += [_fact(k, "no data" if v is None else f"{v:g}", value_chars)
              for k, v in sorted(alert.evidence.items())[:MAX_EVIDENCE]]
    if alert.starts_at:
        facts.append(_fact("since", alert.starts_at, value_chars))
    items: list[dict[str, Any]] = [{"type": "TextBlock", "text": bounded(heading, 2 * value_chars), "wrap": True,
                                    "color": "Attention" if alert.firing else "Good"}]
    if facts:
        items.append({"type": "FactSet", "facts": facts})
    return {"type": "Container", "separator": True, "items": items}


def _card(event: AlertGroupEvent, main_text: str, shown: int, text_chars: int,
          value_chars: int) -> dict[str, Any]:
    severity = group_severity(event)
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": bounded(escape_markdown(group_title(event)), MAX_TITLE_CHARS),
         "size": "Large", "weight": "Bolder", "wrap": True,
         "color": "Good" if event.status == "resolved" else _COLOR.get(severity, "Attention")},
        {"type": "TextBlock", "text": bounded(main_text, text_chars), "wrap": True},
    ]
    labels = dict(event.common_labels)
    if labels:
        body.append({"type": "FactSet", "facts": _facts(labels, value_chars)})
    common = dict(event.common_labels)
    body += [_alert_container(a, common, value_chars) for a in event.alerts[:shown]]
    if shown < len(event.alerts):
        body.append({"type": "TextBlock", "text": f"and {len(event.alerts) - shown} more", "isSubtle": True,
                     "wrap": True})
    actions = []
    for name, target in ordered_links(event.links):
        if is_http_url(target):
            actions.append({"type": "Action.OpenUrl", "title": link_text(name), "url": target})
        else:  # a command line to paste (`monitor silence add ...`): shown as typed
            body.append({"type": "TextBlock", "text": f"{escape_markdown(link_text(name))}: "
                                                      f"{bounded(escape_markdown(target), 2 * value_chars)}",
                         "fontType": "Monospace", "wrap": True, "isSubtle": True})
    # Teams shows at most MAX_ACTIONS buttons per set and hides the rest: more links go in
    # action sets in the body, so every link stays reachable.
    for start in range(MAX_ACTIONS, len(actions), MAX_ACTIONS):
        body.append({"type": "ActionSet", "actions": actions[start:start + MAX_ACTIONS]})
    card: dict[str, Any] = {"type": "AdaptiveCard", "$schema": CARD_SCHEMA, "version": CARD_VERSION,
                            "msteams": {"width": "Full"}, "body": body}
    if actions:
        card["actions"] = actions[:MAX_ACTIONS]
    return card


def message_bytes(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def render_teams(event: AlertGroupEvent, config: TeamsConfig) -> dict[str, Any]:
    """The Workflows webhook body for one alert group notification, under Teams' message limit (no network)."""
    main_text = render_override(config.template, event, integration="msteams", escape="markdown",
                                fallback=default_text(event)) or default_text(event)
    message: dict[str, Any] = {}
    for text_chars, value_chars in _TEXT_LIMITS:
        # As many alerts as fit, most first: the reader sees every alert the card can hold.
        for shown in range(min(len(event.alerts), MAX_ALERTS_SHOWN), -1, -1):
            message = _message(_card(event, main_text, shown, text_chars, value_chars))
            if len(message_bytes(message)) <= MESSAGE_BUDGET_BYTES:
                return message
    return message   # the tightest limits: bounded far below the budget by construction


def _message(card: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message",
            "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}]}


class TeamsDestination:
    """One `msteams_configs` entry of one receiver: an outbox destination."""

    def __init__(self, name: str, config: TeamsConfig, resolver: Resolver = system_resolver,
                 clock: Clock | None = None):
        self.name = name
        self.config = config
        self.resolver = resolver
        self.clock = clock or SystemClock()

    def send(self, delivery: Delivery) -> SendResult:
        event = alert_group_of(delivery, "Teams")
        if isinstance(event, SendResult):
            return event
        if event.status == "resolved" and not self.config.send_resolved:
            return SendResult.delivered(None)   # send_resolved: false, as Alertmanager: nothing to send
        try:
            # Read on every attempt: a replaced workflow URL takes effect without a restart.
            url = read_secret(self.config.webhook_url_env, self.config.webhook_url_file,
                              f"{self.name} webhook_url")
        except MonitorError as exc:
            return SendResult(SendOutcome.FAILED, error=str(exc))
        body = message_bytes(render_teams(event, self.config))
        try:
            answer = http_transport.post_url(url, body, {"content-type": "application/json",
                                                         "user-agent": USER_AGENT},
                                             timeout_s=self.config.timeout.total_seconds(),
                                             allow_private=self.config.allow_private, resolver=self.resolver)
        except ValueError:
            return SendResult(SendOutcome.REFUSED, error=f"{self.name}: webhook URL is not http(s) with a host")
        except BlockedAddressError as exc:
            return SendResult(SendOutcome.REFUSED, error=f"{self.name}: {redact(str(exc))}")
        except OSError as exc:
            return SendResult(SendOutcome.FAILED, error=f"{self.name}: no answer from the Teams workflow: "
                                                        f"{redact(http_transport.describe_os_error(exc))}")
        return self.classify(answer)

    def classify(self, answer: http_transport.HttpAnswer) -> SendResult:
        retry_after_s = parse_retry_after_s(answer.headers.get("retry-after"))
        if 200 <= answer.status < 300:
            return SendResult.delivered(answer.status)
        if answer.status in (400, 413):
            # The card itself is refused (malformed, or over the size limit): re-sending it cannot help.
            return SendResult(SendOutcome.REFUSED, answer.status,
                              error=f"{self.name}: HTTP {answer.status}: {_server_message(answer.body)}")
        outcome = classify_http_status(answer.status, retry_after_s)
        return SendResult(outcome, answer.status, retry_after_s,
                          error=f"{self.name}: HTTP {answer.status}"
                                + (http_transport.REDIRECT_NOTE if answer.is_redirect else ""))


def _server_message(body: bytes) -> str:
    """The workflow's error message (Logic Apps' `error.message`), one line, bounded, secrets scrubbed."""
    text = body.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        error = data["error"]
        text = ": ".join(str(error[k]) for k in ("code", "message") if error.get(k))
    return truncate(plain_line(redact(text)), 400) or "(no details)"
