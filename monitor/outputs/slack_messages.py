"""Block Kit messages for alert group notifications: what an on-call SRE needs, within Slack's limits.

The header reads like Alertmanager's (`[FIRING:2] SLOBudgetBurnPage ranker`), then
severity, then one section per alert with the numbers that fired it and its labels,
then buttons to the report, a Prometheus graph and the runbook. Every message also
has a plain `text` fallback (notifications, screen readers, old clients).

Label values and annotations are untrusted text: `&`, `<` and `>` are escaped in
every mrkdwn field, so a label value like `<!channel>` cannot ping a channel or
forge a link. Pure: payload in, message out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from monitor.alerting.events import AlertGroupEvent
from monitor.alerting.templates import humanize

# Slack's documented limits (api.slack.com/reference/block-kit).
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_BUTTON_TEXT = 75
MAX_URL = 3000
MAX_FALLBACK_TEXT = 3000
# Blocks not spent on alerts: header, severity, links, "and N more", footer.
_FIXED_BLOCKS = 5
# Labels every alert shows in its own section are the group's; repeating them is noise.
_IDENTITY_LABELS = ("model", "version", "service", "slo", "window", "column")
_SEVERITY_MARK = {"page": ":red_circle:", "critical": ":red_circle:", "ticket": ":large_orange_circle:",
                  "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}


@dataclass(frozen=True)
class SlackMessage:
    text: str
    blocks: list[dict[str, Any]]


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack treats as control sequences in mrkdwn."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """At most `limit` characters, ending in an ellipsis when cut, never inside an &entity;."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def title(payload: Mapping[str, Any]) -> str:
    """`[FIRING:2] SLOBudgetBurnPage ranker`, `[RESOLVED] ...`: status, count, what and where."""
    alerts: Sequence[Mapping[str, Any]] = payload.get("alerts", [])
    status = str(payload.get("status", "firing")).upper()
    firing = sum(1 for a in alerts if a.get("status") == "firing")
    prefix = f"[{status}:{firing}]" if status == "FIRING" else f"[{status}]"
    group_labels: Mapping[str, str] = payload.get("groupLabels", {})
    words = [group_labels["alertname"]] if "alertname" in group_labels else []
    words += [v for k, v in sorted(group_labels.items()) if k != "alertname"]
    common = common_labels(alerts)
    if not words and "alertname" in common:
        words.append(common["alertname"])
    # Grouped by alertname only: name the thing that is burning, as a human would.
    words += [common[k] for k in _IDENTITY_LABELS if k in common and k not in group_labels][:2]
    return " ".join([prefix, *words])


def common_labels(alerts: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    if not alerts:
        return {}
    first = dict(alerts[0].get("labels", {}))
    return {k: v for k, v in first.items() if all(a.get("labels", {}).get(k) == v for a in alerts[1:])}


def build_alert_group_message(event: AlertGroupEvent | Mapping[str, Any],
                              links: Mapping[str, str] | None = None) -> SlackMessage:
    """The Block Kit message for one alert group notification (firing, repeat or resolved)."""
    # Minimal bridge to the typed event; the typed renderer replaces this at merge.
    payload = event.to_dict() if isinstance(event, AlertGroupEvent) else event
    alerts: list[Mapping[str, Any]] = list(payload.get("alerts", []))
    links = dict(links or payload.get("links") or {})
    heading = title(payload)
    common = common_labels(alerts)
    severity = common.get("severity", "none")
    resolved = payload.get("status") == "resolved"
    mark = ":white_check_mark:" if resolved else _SEVERITY_MARK.get(severity, ":warning:")

    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(heading, MAX_HEADER_TEXT)}},
        _section(f"{mark} *Severity:* {escape_mrkdwn(severity)}   *Firing:* {payload.get('firing', 0)}"
                 f"   *Resolved:* {payload.get('resolved', 0)}"),
    ]
    room = MAX_BLOCKS - _FIXED_BLOCKS
    for alert in alerts[:room]:
        blocks.append(_alert_section(alert, common))
    if len(alerts) > room:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"…and {len(alerts) - room} more alert(s) in this group"}]})
    buttons = _link_buttons(links, alerts)
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": truncate(escape_mrkdwn(f"group {payload.get('groupKey', '?')} · "
                                                          f"{payload.get('kind', '')}"), MAX_SECTION_TEXT)}]})
    return SlackMessage(text=fallback_text(heading, alerts), blocks=blocks)


def fallback_text(heading: str, alerts: Sequence[Mapping[str, Any]]) -> str:
    """The plain `text`: the title and each alert's summary, escaped (it is parsed as mrkdwn too)."""
    lines = [heading]
    for alert in alerts[:20]:
        annotations = alert.get("annotations", {})
        lines.append(f"- {alert.get('status', '')}: {annotations.get('summary') or alert.get('labels', {}).get('alertname', '')}")
    if len(alerts) > 20:
        lines.append(f"…and {len(alerts) - 20} more")
    return truncate(escape_mrkdwn("\n".join(lines)), MAX_FALLBACK_TEXT)


def _section(mrkdwn: str, fields: list[str] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": truncate(mrkdwn, MAX_SECTION_TEXT)}}
    if fields:
        block["fields"] = [{"type": "mrkdwn", "text": truncate(f, MAX_FIELD_TEXT)} for f in fields[:MAX_FIELDS]]
    return block


def _alert_section(alert: Mapping[str, Any], common: Mapping[str, str]) -> dict[str, Any]:
    labels: Mapping[str, str] = alert.get("labels", {})
    annotations: Mapping[str, str] = alert.get("annotations", {})
    summary = annotations.get("summary") or labels.get("alertname", "alert")
    status = "resolved" if alert.get("status") == "resolved" else "firing"
    lines = [f"*{escape_mrkdwn(summary)}* ({status}, since {escape_mrkdwn(alert.get('startsAt') or '?')})"]
    if annotations.get("description"):
        lines.append(escape_mrkdwn(annotations["description"]))
    shown = {k: v for k, v in sorted(labels.items()) if k != "alertname"}
    if shown:
        lines.append(" ".join(f"`{escape_mrkdwn(k)}={escape_mrkdwn(v)}`" for k, v in shown.items()))
    fields = [f"*value*\n{humanize(alert.get('value'))}"] if "value" in alert else []
    fields += [f"*{escape_mrkdwn(name)}*\n{humanize(number)}"
               for name, number in sorted((alert.get("evidence") or {}).items())]
    return _section("\n".join(lines), fields)


def _link_buttons(links: Mapping[str, str], alerts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    wanted = [("Report", links.get("report")), ("Prometheus graph", links.get("prometheus")),
              ("Runbook", links.get("runbook"))]
    if not links.get("runbook"):
        runbooks = {a.get("annotations", {}).get("runbook_url") for a in alerts} - {None, ""}
        if len(runbooks) == 1:
            wanted[2] = ("Runbook", runbooks.pop())
    return [{"type": "button", "text": {"type": "plain_text", "text": truncate(label, MAX_BUTTON_TEXT)},
             "url": url} for label, url in wanted
            if url and len(url) <= MAX_URL and url.startswith(("https://", "http://"))]
