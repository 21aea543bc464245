"""Block Kit messages for alert group notifications: what an on-call SRE needs, within Slack's limits.

The header reads like Alertmanager's (`[FIRING:2] SLOBudgetBurnPage ranker`), then
severity, then one section per alert with the numbers that fired it and its labels,
then buttons to the report, a Prometheus graph and the runbook. Every message also
has a plain `text` fallback (notifications, screen readers, old clients).

Label values and annotations are untrusted text: `&`, `<` and `>` are escaped in
every mrkdwn field, so a label value like `<!channel>` cannot ping a channel or
forge a link. Pure: typed event in, message out (a receiver's template file aside).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Sequence

from monitor.alerting.events import AlertEvent, AlertGroupEvent
from monitor.alerting.templates import humanize
from monitor.outputs.alert_text import group_title
from monitor.outputs.links import DASHBOARD, GRAPH, REPORT, RUNBOOK, alert_graph_key, silence_commands
from monitor.outputs.message_templates import escape_mrkdwn, render_override
from monitor.timeutil import iso_z, utc

# Slack's documented limits (api.slack.com/reference/block-kit).
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_BUTTON_TEXT = 75
MAX_URL = 3000
MAX_FALLBACK_TEXT = 3000
# Blocks not spent on alerts: header, severity, links, silence, "and N more", footer.
_FIXED_BLOCKS = 6
_SEVERITY_MARK = {"page": ":red_circle:", "critical": ":red_circle:", "ticket": ":large_orange_circle:",
                  "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}


@dataclass(frozen=True)
class SlackMessage:
    text: str
    blocks: list[dict[str, Any]]


def truncate(text: str, limit: int) -> str:
    """At most `limit` characters, ending in an ellipsis when cut, never inside an &entity;."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def title(event: AlertGroupEvent) -> str:
    """`[FIRING:2] SLOBudgetBurnPage ranker`, `[RESOLVED] ...`: the title every integration shows."""
    return group_title(event)


def slack_date(iso: str | None) -> str:
    """An ISO 8601 instant as Slack's `<!date^...>`: shown in each reader's own time zone, ISO UTC as fallback."""
    if not iso:
        return "?"
    try:
        at = utc(datetime.fromisoformat(iso.replace("Z", "+00:00")))
    except ValueError:
        return escape_mrkdwn(iso)
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{iso_z(at.replace(microsecond=0))}>"


def build_alert_group_message(event: AlertGroupEvent, template: str | None = None) -> SlackMessage:
    """The Block Kit message for one alert group notification (firing, repeat or resolved).

    `template` is the receiver's Jinja2 file (SlackConfig.template): its output, mrkdwn-escaped,
    replaces the fallback text and leads the message; a failing template falls back to ours.
    """
    alerts = event.alerts
    links = event.links
    heading = title(event)
    common = event.common_labels if alerts else {}
    severity = common.get("severity", "none")
    resolved = event.status == "resolved"
    mark = ":white_check_mark:" if resolved else _SEVERITY_MARK.get(severity, ":warning:")

    built_in = fallback_text(heading, alerts)
    text = render_override(template, event, integration="slack", escape="mrkdwn", fallback=built_in)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(heading, MAX_HEADER_TEXT)}},
        _section(f"{mark} *Severity:* {escape_mrkdwn(severity)}   *Firing:* {event.firing_count}"
                 f"   *Resolved:* {event.resolved_count}   *Since:* {slack_date(_earliest_start(alerts))}"),
    ]
    if text != built_in:
        text = truncate(text, MAX_FALLBACK_TEXT)
        blocks.append(_section(text))
    room = MAX_BLOCKS - _FIXED_BLOCKS - (len(blocks) - 2)
    several_runbooks = len({a.annotations.get("runbook_url", "") for a in alerts} - {""}) > 1
    for alert in alerts[:room]:
        blocks.append(_alert_section(alert, links.get(alert_graph_key(alert)), several_runbooks))
    if len(alerts) > room:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"…and {len(alerts) - room} more alert(s) in this group"}]})
    buttons = _link_buttons(links, alerts)
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    silence = _silence_section(links) if event.status == "firing" else None  # nothing left to silence
    if silence:
        blocks.append(silence)
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": truncate(escape_mrkdwn(f"group {event.group_key or '?'} · {event.kind}"
                                                          + (f" · receiver {event.receiver}" if event.receiver
                                                             else "")), MAX_SECTION_TEXT)}]})
    return SlackMessage(text=text, blocks=blocks)


def fallback_text(heading: str, alerts: Sequence[AlertEvent]) -> str:
    """The plain `text`: the title and each alert's summary, escaped (it is parsed as mrkdwn too)."""
    lines = [heading]
    for alert in alerts[:20]:
        lines.append(f"- {alert.status}: {alert.annotations.get('summary') or alert.alertname}")
    if len(alerts) > 20:
        lines.append(f"…and {len(alerts) - 20} more")
    return truncate(escape_mrkdwn("\n".join(lines)), MAX_FALLBACK_TEXT)


def _earliest_start(alerts: Sequence[AlertEvent]) -> str | None:
    starts = sorted(a.starts_at for a in alerts if a.starts_at)
    return starts[0] if starts else None


def _section(mrkdwn: str, fields: list[str] | None = None,
             accessory: dict[str, Any] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": truncate(mrkdwn, MAX_SECTION_TEXT)}}
    if fields:
        block["fields"] = [{"type": "mrkdwn", "text": truncate(f, MAX_FIELD_TEXT)} for f in fields[:MAX_FIELDS]]
    if accessory:
        block["accessory"] = accessory
    return block


def _alert_section(alert: AlertEvent, graph_url: str | None, show_runbook: bool) -> dict[str, Any]:
    summary = alert.annotations.get("summary") or alert.alertname or "alert"
    status = "resolved" if alert.status == "resolved" else "firing"
    when = f"since {slack_date(alert.starts_at)}"
    if status == "resolved" and alert.ends_at:
        when += f", resolved {slack_date(alert.ends_at)}"
    lines = [f"*{escape_mrkdwn(summary)}* ({status}, {when})"]
    if alert.annotations.get("description"):
        lines.append(escape_mrkdwn(alert.annotations["description"]))
    shown = {k: v for k, v in sorted(alert.labels.items()) if k != "alertname"}
    if shown:
        lines.append(" ".join(f"`{escape_mrkdwn(k)}={escape_mrkdwn(v)}`" for k, v in shown.items()))
    runbook = alert.annotations.get("runbook_url", "")
    if show_runbook and _linkable(runbook) and not any(c in runbook for c in "<>|"):
        lines.append(f"<{runbook.replace('&', '&amp;')}|Runbook>")
    fields = [f"*value*\n{humanize(alert.value)}"]
    fields += [f"*{escape_mrkdwn(name)}*\n{humanize(number)}" for name, number in sorted(alert.evidence.items())]
    accessory = _button("Graph", graph_url) if _linkable(graph_url) else None
    return _section("\n".join(lines), fields, accessory)


def _silence_section(links: Mapping[str, str]) -> dict[str, Any] | None:
    """The `monitor silence add` lines to paste (code blocks), as many as fit one section."""
    commands = silence_commands(links)
    if not commands:
        return None
    text = "*Silence* (run where the daemon's config is):"
    for duration, command in commands.items():
        line = f"\n{duration}: ```{escape_mrkdwn(command)}```"
        if len(text) + len(line) > MAX_SECTION_TEXT:
            break  # a command cut short would silence something else: leave it out whole
        text += line
    return _section(text) if "```" in text else None


def _linkable(url: str | None) -> bool:
    return bool(url) and len(url) <= MAX_URL and url.startswith(("https://", "http://"))  # type: ignore[union-attr]


def _button(label: str, url: str) -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": truncate(label, MAX_BUTTON_TEXT)}, "url": url}


def _link_buttons(links: Mapping[str, str], alerts: Sequence[AlertEvent]) -> list[dict[str, Any]]:
    wanted = [("Report", links.get(REPORT)), ("Prometheus graph", links.get(GRAPH)),
              ("Runbook", links.get(RUNBOOK)), ("Dashboard", links.get(DASHBOARD))]
    if not links.get(RUNBOOK):
        runbooks = {a.annotations.get("runbook_url", "") for a in alerts} - {""}
        if len(runbooks) == 1:
            wanted[2] = ("Runbook", runbooks.pop())
    return [_button(label, url) for label, url in wanted if url and _linkable(url)]
