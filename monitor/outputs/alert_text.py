"""Plain-text pieces every alert-group integration shows the same way: the title and a bounded string.

PagerDuty's summary and the Teams card's heading read like Alertmanager's and
Slack's (`[FIRING:2] SLOBudgetBurnPage ranker`), so one page reads the same
wherever it lands.
"""

from __future__ import annotations

from monitor.alerting.events import AlertGroupEvent

# Labels that say *what* is affected, in the order a reader wants them after the alert name.
IDENTITY_LABELS = ("model", "version", "service", "slo", "window", "column")


def group_title(event: AlertGroupEvent) -> str:
    """`[FIRING:2] SLOBudgetBurnPage ranker`, `[RESOLVED] ...`: status, count, what and where."""
    status = event.status.upper()
    prefix = f"[{status}:{event.firing_count}]" if status == "FIRING" else f"[{status}]"
    group_labels = dict(event.group_labels)
    words = [group_labels["alertname"]] if "alertname" in group_labels else []
    words += [v for k, v in sorted(group_labels.items()) if k != "alertname"]
    common = event.common_labels
    if not words and "alertname" in common:
        words.append(common["alertname"])
    # Grouped by alertname only: name the thing that is affected, as a human would.
    words += [common[k] for k in IDENTITY_LABELS if k in common and k not in group_labels][:2]
    return " ".join([prefix, *words])


def one_line(text: str) -> str:
    """Whitespace runs (newlines included) as one space: a label value is one line wherever it is shown."""
    return " ".join(str(text).split())


def truncate(text: str, limit: int) -> str:
    """At most `limit` characters, ending in an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "…"
