"""Per-receiver message templates: a user's Jinja2 file overriding an integration's text.

CONTRACT (to be implemented by the actionable-messages work): rendered in the
sandboxed environment of monitor.alerting.templates, autoescape matching the
target format ("html" for email, "mrkdwn" for Slack, "markdown" for the Teams
Adaptive Card's TextBlock markdown (values escaped as `monitor.outputs.teams.escape_markdown`
does), "none" for PagerDuty's plain summary). A template that fails to load or render falls back to
`fallback`, is logged once per file and error, and is counted in
`monitor_template_errors_total{integration}`.
"""

from __future__ import annotations

from typing import Literal

from monitor.alerting.events import Event

Escape = Literal["html", "mrkdwn", "markdown", "none"]


def render_override(template_path: str | None, event: Event, *, integration: str, escape: Escape,
                    fallback: str) -> str:
    """The user's template rendered over `event`, or `fallback` when there is none or it fails."""
    if not template_path:
        return fallback
    return fallback  # replaced by the implementation
