"""Plain-text pieces every alert-group integration shows the same way: the title and a bounded string.

PagerDuty's summary and the Teams card's heading read like Alertmanager's and
Slack's (`[FIRING:2] SLOBudgetBurnPage ranker`), so one page reads the same
wherever it lands.
"""

from __future__ import annotations

from typing import Mapping

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


# Links in the order a responder wants them; the rest follow by name. (JSON storage sorts keys.)
LINK_ORDER = ("runbook", "dashboard", "graph", "report")


def ordered_links(links: Mapping[str, str]) -> list[tuple[str, str]]:
    """`links` as (name, target) pairs: runbook, dashboard, graph, report first, then by name."""
    def rank(name: str) -> tuple[int, str]:
        base = name.split("_")[0]
        return (LINK_ORDER.index(base) if base in LINK_ORDER else len(LINK_ORDER), name)
    return sorted(links.items(), key=lambda item: rank(item[0]))
