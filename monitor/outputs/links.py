"""The links beside every alert group notification: runbook, dashboard, graphs, report, silence.

An on-call responder should reach, from the message alone: what to do (the rule's
`runbook_url` annotation), where to look (the `outputs.dashboard_url` template over
the alert's labels), the numbers behind each alert (a Prometheus graph: the rule's
own PromQL, or, for rules over the daemon's built-in signals, the series the daemon
exports on /metrics, `monitor_slo_*`, `monitor_drift_*`, `monitor_cost_*`), and how
to make it stop for a while (the `monitor silence add` command line for 1h, 4h and
24h, until the web UI can take a click).

Every value below is untrusted text from labels, so each is escaped for where it
lands: URL-quoted into the dashboard URL, a PromQL string literal in a selector,
shell-quoted on the silence command line (a label value like `x'; rm -rf ~` stays
one argument).

Link keys (`AlertGroupEvent.links`): `report`, `prometheus` (the group's graph, the
key earlier releases used), `runbook`, `dashboard`, `graph:<fingerprint>` (one per
alert), and `silence_command_<1h|4h|24h>`, which are shell command lines, not URLs:
`url_links` keeps only the links a client can open. A relative `runbook_url` (the
default rules ship `#anchor`s into the README's runbooks) is resolved against
`outputs.runbook_base_url`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Mapping, Sequence
from urllib.parse import quote, urljoin, urlsplit

from monitor.alerting import templates
from monitor.alerting.condition import Matcher
from monitor.alerting.events import AlertEvent, AlertGroupEvent
from monitor.alerting.routes import matcher_text
from monitor.outputs.metrics import SIGNAL_LABELS_NOT_EXPORTED, SIGNAL_METRICS, exported_label_name
from monitor.signals import CATALOGUE

if TYPE_CHECKING:
    from monitor.alerting.rule_spec import Rule
    from monitor.config import Config

log = logging.getLogger(__name__)

REPORT = "report"
GRAPH = "prometheus"
RUNBOOK = "runbook"
DASHBOARD = "dashboard"
SILENCE_DURATIONS = ("1h", "4h", "24h")
_ALERT_GRAPH_PREFIX = "graph:"
_SILENCE_PREFIX = "silence_command_"
# Label values the silence CLI's `label="value"` form cannot carry: its parser reads one line.
_NOT_ON_ONE_LINE = re.compile(r"[\r\n]")


def alert_graph_key(alert: AlertEvent) -> str:
    return _ALERT_GRAPH_PREFIX + alert.fingerprint


def silence_command_key(duration: str) -> str:
    return _SILENCE_PREFIX + duration


def silence_commands(links: Mapping[str, str]) -> dict[str, str]:
    """duration -> the command line to paste, for the durations the links carry."""
    return {d: links[silence_command_key(d)] for d in SILENCE_DURATIONS if silence_command_key(d) in links}


def url_links(links: Mapping[str, str]) -> dict[str, str]:
    """The links a client can open (http(s) URLs), without the silence command lines."""
    return {k: v for k, v in links.items() if v.startswith(("https://", "http://"))}


def prometheus_graph_url(base_url: str, expr: str, range_input: str = "6h") -> str:
    """Prometheus' graph page for `expr` (the UI's g0.* query parameters)."""
    return f"{base_url.rstrip('/')}/graph?g0.expr={quote(expr, safe='')}&g0.tab=0&g0.range_input={range_input}"


def promql_string(value: str) -> str:
    """`value` as a PromQL double-quoted string literal (Go escapes; JSON's are a subset of them)."""
    return json.dumps(value, ensure_ascii=False)


def exported_series_selector(signal: str, labels: Mapping[str, str]) -> str | None:
    """The selector of the series /metrics exports for `signal` with these labels (None: not exported).

    Only the signal's own labels are matched: an alert also carries its rule's
    labels (severity, alertname), which the exported series does not.
    """
    if signal not in SIGNAL_METRICS:
        return None
    metric = SIGNAL_METRICS[signal][0]
    hidden = SIGNAL_LABELS_NOT_EXPORTED.get(signal, frozenset())
    names = [n for n in CATALOGUE[signal][0] if n in labels and n not in hidden]
    if not names:
        return metric
    return metric + "{" + ", ".join(f"{exported_label_name(signal, n)}={promql_string(labels[n])}"
                                    for n in names) + "}"


def silence_command(labels: Mapping[str, str], duration: str, alertname: str, config_path: str | None) -> str:
    """`monitor silence add` for exactly these labels, shell-quoted, ready to paste."""
    words = ["monitor", "silence", "add"]
    for name, value in sorted(labels.items()):
        if _NOT_ON_ONE_LINE.search(value):
            regex = "".join({"\n": r"\n", "\r": r"\r"}.get(c) or re.escape(c) for c in value)
            words += ["--match", matcher_text(Matcher(name, "=~", regex))]
        else:
            # Always quoted: the CLI strips one pair of quotes, so a value that itself
            # starts and ends with a quote keeps them.
            words += ["--match", matcher_text(Matcher(name, "=", value))]
    words += ["--for", duration, "--comment", f"silenced from the {alertname or 'alert'} notification"]
    if config_path:
        words += ["--config", config_path]
    return " ".join(shlex.quote(w) for w in words)


def dashboard_template_problem(template: str) -> str | None:
    """Why `outputs.dashboard_url` cannot make a link (checked at load), or None."""
    sample = {k: quote(v, safe="") for k, v in templates.SAMPLE_LABELS.items()}
    try:
        url = templates.render_checked(template, labels=sample, common_labels=sample).strip()
    except Exception as exc:  # noqa: BLE001 - syntax, sandbox and bound errors alike
        return f"invalid template: {getattr(exc, 'message', None) or exc}"
    if not url.startswith(("https://", "http://")):
        return "must render to an http(s) URL"
    return None


@dataclass(frozen=True)
class LinkBuilder:
    """Builds an event's links from the config and the rules (pure once built)."""

    report_url: str | None = None
    prometheus_url: str | None = None
    # alertname -> the PromQL of its rule, for rules written as PromQL.
    expr_by_alertname: Mapping[str, str] = field(default_factory=dict)
    # alertname -> the signal a built-in condition rule reads (its left-most comparison's).
    signal_by_alertname: Mapping[str, str] = field(default_factory=dict)
    # Jinja2 over `labels` and `common_labels` (values URL-quoted), e.g. Grafana with variables.
    dashboard_url: str | None = None
    # Where the daemon's config is: the silence command names it, so it runs as pasted.
    config_path: str | None = None
    # What a relative `runbook_url` annotation (`#anchor`) is relative to.
    runbook_base_url: str | None = None

    @classmethod
    def from_config(cls, config: "Config", rules: Sequence["Rule"] | None = None) -> "LinkBuilder":
        """The links of `config.outputs`, with graph links for `rules` (default: the config's rules)."""
        outputs = config.outputs
        if rules is None:
            rules = _load_rules(config)
        exprs = {rule.alert: rule.expr for rule in rules if rule.expr}
        signals = {rule.alert: signal for rule in rules if (signal := _condition_signal(rule))}
        config_path = None if config.source_path.startswith("<") else os.path.abspath(config.source_path)
        return cls(outputs.report_url, outputs.prometheus_url or config.prometheus.url, exprs, signals,
                   outputs.dashboard_url, config_path, outputs.runbook_base_url)

    def with_absolute_runbooks(self, event: AlertGroupEvent) -> AlertGroupEvent:
        """The event with every relative `runbook_url` annotation made absolute (receivers read annotations)."""
        return replace(event, alerts=tuple(self.with_absolute_runbook(a) for a in event.alerts))

    def with_absolute_runbook(self, alert: AlertEvent) -> AlertEvent:
        """The alert with a relative `runbook_url` annotation made absolute (a rollback event's alert too)."""
        resolved = self.runbook(alert)
        if not resolved:
            return alert  # none, or relative with nowhere to resolve it: left as the rule wrote it
        return replace(alert, annotations={**alert.annotations, "runbook_url": resolved})

    def runbook(self, alert: AlertEvent) -> str:
        """The alert's `runbook_url`, resolved against `runbook_base_url` when it is relative ("" if none)."""
        url = alert.annotations.get("runbook_url", "").strip()
        if url and not urlsplit(url).scheme:
            return urljoin(self.runbook_base_url, url) if self.runbook_base_url else ""
        return url

    def for_event(self, event: AlertGroupEvent) -> dict[str, str]:
        """Every link of one alert group notification."""
        links = {**self.for_alerts(event.alerts), **self.alert_graphs(event.alerts)}
        common = event.common_labels
        dashboard = self.dashboard(common, common)
        if dashboard:
            links[DASHBOARD] = dashboard
        alertname = common.get("alertname") or event.group_labels.get("alertname", "")
        for duration in SILENCE_DURATIONS if common else ():  # no labels in common: it would silence everything
            links[silence_command_key(duration)] = silence_command(common, duration, alertname, self.config_path)
        return links

    def for_alerts(self, alerts: Sequence[AlertEvent]) -> dict[str, str]:
        """The report, the runbook and the group's graph (a rollback event's links, too)."""
        links: dict[str, str] = {}
        if self.report_url:
            links[REPORT] = self.report_url
        runbooks = {self.runbook(a) for a in alerts} - {""}
        if len(runbooks) == 1:
            links[RUNBOOK] = runbooks.pop()
        if not self.prometheus_url or not alerts:
            return links
        group_graph = self._graph_expr(_common(alerts), {a.alertname for a in alerts})
        if group_graph:
            links[GRAPH] = prometheus_graph_url(self.prometheus_url, group_graph)
        return links

    def alert_graphs(self, alerts: Sequence[AlertEvent]) -> dict[str, str]:
        """One graph link per alert (`graph:<fingerprint>`)."""
        links: dict[str, str] = {}
        for alert in alerts if self.prometheus_url else ():
            expr = self._graph_expr(alert.labels, {alert.alertname})
            if expr:
                links[alert_graph_key(alert)] = prometheus_graph_url(self.prometheus_url, expr)
        return links

    def dashboard(self, labels: Mapping[str, str], common_labels: Mapping[str, str]) -> str | None:
        """`dashboard_url` rendered with URL-quoted label values; None when unset or broken (logged)."""
        if not self.dashboard_url:
            return None
        quoted = {k: quote(v, safe="") for k, v in labels.items()}
        quoted_common = {k: quote(v, safe="") for k, v in common_labels.items()}
        try:
            url = templates.render_checked(self.dashboard_url, labels=quoted, common_labels=quoted_common).strip()
        except Exception as exc:  # noqa: BLE001 - a broken template leaves the link out, never the message
            _log_once(f"outputs.dashboard_url does not render, dashboard links left out: {exc}")
            return None
        if not url.startswith(("https://", "http://")):
            _log_once(f"outputs.dashboard_url renders to something that is not an http(s) URL "
                      f"({url[:80]!r}): dashboard links left out")
            return None
        return url

    def _graph_expr(self, labels: Mapping[str, str], alertnames: set[str]) -> str | None:
        """The graph's query for alerts of these names: the rule's PromQL, or the exported signal's series."""
        exprs = {self.expr_by_alertname[n] for n in alertnames if n in self.expr_by_alertname}
        signals = {self.signal_by_alertname[n] for n in alertnames if n in self.signal_by_alertname}
        if len(exprs) == 1 and not signals:
            return exprs.pop()
        if len(signals) == 1 and not exprs:
            return exported_series_selector(signals.pop(), labels)
        return None


def _common(alerts: Sequence[AlertEvent]) -> dict[str, str]:
    first = dict(alerts[0].labels)
    return {k: v for k, v in first.items() if all(a.labels.get(k) == v for a in alerts[1:])}


def _condition_signal(rule: "Rule") -> str | None:
    if rule.condition is None:
        return None
    from monitor.alerting.condition import comparisons
    found = comparisons(rule.condition)
    return found[0].signal if found else None


def _load_rules(config: "Config") -> list["Rule"]:
    if not config.rule_files:
        return []
    from monitor.alerting.rule_spec import load_rules
    from monitor.errors import MonitorError
    try:
        return load_rules(config)
    except MonitorError as exc:
        log.warning("graph links left out: rules did not load: %s", str(exc).splitlines()[0] if str(exc) else exc)
        return []


_logged: set[str] = set()


def _log_once(message: str) -> None:
    if message not in _logged:
        if len(_logged) < 1000:  # a message quoting label values could otherwise grow it forever
            _logged.add(message)
        log.warning("%s", message)
