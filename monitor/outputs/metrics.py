"""The daemon's own /metrics: its health, and the latest computed signals.

Health metrics are ordinary prometheus-client instruments updated as cycles and
deliveries happen. Signals are exported by a custom collector from the last
successful cycle's values, so a series disappears when its signal stops being
computed, and a "no data" signal (None) is absent rather than a misleading 0.
"""

from __future__ import annotations

import platform
import threading
from typing import TYPE_CHECKING, Iterable

from prometheus_client import (CollectorRegistry, Counter, Gauge, GCCollector, Histogram, Info, PlatformCollector,
                               ProcessCollector, disable_created_metrics)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.alerting.events import RollbackEvent
from monitor.signals import CATALOGUE, Signal

if TYPE_CHECKING:
    from monitor.alerting.notification_repository import QueuedNotification

# Signal name -> (metric name, help). Units in names, Prometheus conventions.
SIGNAL_METRICS: dict[str, tuple[str, str]] = {
    "slo_error_ratio": ("monitor_slo_error_ratio", "SLO error ratio (bad/total events) over the window"),
    "slo_burn_rate": ("monitor_slo_burn_rate", "SLO burn rate over the window: error ratio / (1 - objective)"),
    "slo_error_budget_remaining": ("monitor_slo_error_budget_remaining_ratio",
                                   "Share of the SLO period's error budget left (negative when overspent)"),
    "slo_page": ("monitor_slo_page_alert", "1 when the SLO's multi-window page condition holds"),
    "slo_ticket": ("monitor_slo_ticket_alert", "1 when the SLO's multi-window ticket condition holds"),
    "drift_psi": ("monitor_drift_psi", "Population stability index, current vs reference window"),
    "drift_js": ("monitor_drift_js_distance", "Jensen-Shannon distance (base 2), current vs reference"),
    "drift_ks": ("monitor_drift_ks_statistic", "Two-sample Kolmogorov-Smirnov statistic"),
    "drift_ks_pvalue": ("monitor_drift_ks_pvalue", "Asymptotic p-value of the KS statistic"),
    "drift_wasserstein_norm": ("monitor_drift_wasserstein_norm",
                               "Wasserstein distance divided by the reference standard deviation"),
    "drift_chi2_pvalue": ("monitor_drift_chi2_pvalue", "Chi-square test p-value (categorical columns)"),
    "drift_detected": ("monitor_drift_detected", "1 when the column crosses its drift thresholds"),
    "drift_share": ("monitor_drift_share_ratio", "Drifted columns / monitored columns"),
    "model_inference_rate": ("monitor_model_inferences_per_second", "Inferences per second over 5 minutes"),
    "cost_per_1k": ("monitor_cost_per_1k_inferences_usd", "USD per 1,000 inferences over the trailing 7 days"),
    "cost_per_1k_wow_change": ("monitor_cost_per_1k_wow_change_ratio",
                               "Relative change of cost per 1k inferences vs the previous 7 days"),
    "cost_usd": ("monitor_cost_usd", "Serving cost in USD over the trailing 7 days"),
    "idle_cost_usd": ("monitor_cost_idle_usd", "Idle GPU cost in USD over the trailing 7 days"),
    "gpu_hours": ("monitor_gpu_usage_seconds", "GPU time (seconds of GPU use) over the trailing 7 days"),
    "cost_allocation_info": ("monitor_cost_allocation_info",
                             "1 per model and version: how its trailing-7-day cost was charged (allocation: "
                             "placement or inference_share; sharing: exclusive, time_slicing_utilization, "
                             "time_slicing_even)"),
    "gpu_utilization": ("monitor_gpu_utilization_ratio", "Mean GPU utilisation (0..1) over 15 minutes"),
    "prompt_tokens": ("monitor_model_prompt_tokens", "Prompt (input) tokens processed over the trailing 7 days"),
    "generation_tokens": ("monitor_model_generation_tokens", "Tokens generated over the trailing 7 days"),
    "cost_per_1m_tokens": ("monitor_cost_per_million_tokens_usd",
                           "USD per 1,000,000 tokens (prompt + generation) over the trailing 7 days"),
    "cost_per_1m_tokens_wow_change": ("monitor_cost_per_million_tokens_wow_change_ratio",
                                      "Relative change of cost per 1M tokens, this week vs the week before"),
    "fleet_gpu_hours": ("monitor_fleet_gpu_usage_seconds", "GPU time (seconds) of every GPU the models select, over "
                                                           "the trailing 7 days (a shared GPU counted once)"),
    "fleet_gpu_utilization": ("monitor_fleet_gpu_utilization_ratio",
                              "Fleet GPU utilisation (0..1) over the trailing 7 days, weighted by GPU-hours"),
    "fleet_idle_cost_usd": ("monitor_fleet_idle_cost_usd",
                            "Idle GPU cost in USD of the whole fleet over the trailing 7 days"),
    "definition_error": ("monitor_definition_errors",
                         "1 for an SLO, rule or model whose query the server rejects (see `monitor alerts`)"),
    "figures_age_seconds": ("monitor_figures_age_seconds",
                            "Age of a figure computed on its own schedule (e.g. weekly cost): now - its as-of time"),
}

# Signals computed in another unit than their metric's base unit: value x factor.
# GPU time is hours in the cost model and reports, seconds on /metrics (Prometheus base units).
SIGNAL_UNIT_SCALE: dict[str, float] = {"gpu_hours": 3600.0, "fleet_gpu_hours": 3600.0}

# SLO series carry Sloth's label names, as the generated rule files' slo:* series do
# (monitor.slo.rule_file.ID_LABELS, `sloth_window`): both sets of series join on the
# same labels, and Sloth's dashboards select both. Signals keep their own names inside
# the daemon (rule conditions and notifications match `slo_id`, `service`, `slo`).
SLO_EXPORTED_LABELS: dict[str, str] = {"slo_id": "sloth_id", "service": "sloth_service", "slo": "sloth_slo",
                                       "window": "sloth_window"}
SIGNAL_EXPORTED_LABELS: dict[str, dict[str, str]] = {
    name: SLO_EXPORTED_LABELS for name in CATALOGUE if name.startswith("slo_")}


def exported_label_name(signal: str, label: str) -> str:
    """The name a signal's label has on /metrics."""
    return SIGNAL_EXPORTED_LABELS.get(signal, {}).get(label, label)


# Labels a signal carries for alerts but not into /metrics: the error text would make
# a new series each time the message changes.
SIGNAL_LABELS_NOT_EXPORTED: dict[str, frozenset[str]] = {"definition_error": frozenset({"error"})}

assert set(SIGNAL_METRICS) == set(CATALOGUE), "every catalogued signal needs a metric name"


class SignalCollector(Collector):
    """Exports the latest cycle's signals; replaced wholesale after each successful cycle."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._signals: list[Signal] = []

    def update(self, signals: Iterable[Signal]) -> None:
        with self._lock:
            self._signals = [s for s in signals if s.name in SIGNAL_METRICS]

    def collect(self):
        with self._lock:
            signals = list(self._signals)
        present = [s for s in signals if s.value is not None]  # no data: absent, never a 0 that reads as healthy
        # One label set per metric: the union over its signals (a whole-model cost
        # signal has no version label; it exports version="").
        label_names: dict[str, set[str]] = {}
        for signal in present:
            label_names.setdefault(SIGNAL_METRICS[signal.name][0], set()).update(_exported_labels(signal))
        families: dict[str, GaugeMetricFamily] = {}
        exported: set[tuple[str, tuple[str, ...]]] = set()
        for signal in present:
            metric, help_text = SIGNAL_METRICS[signal.name]
            names = sorted(label_names[metric])
            if metric not in families:
                families[metric] = GaugeMetricFamily(metric, help_text, labels=names)
            labels = _exported_labels(signal)
            values = [labels.get(n, "") for n in names]
            if (metric, tuple(values)) in exported:
                continue  # the same series twice once a hidden label is dropped: the first stands
            exported.add((metric, tuple(values)))
            families[metric].add_metric(values, float(signal.value) * SIGNAL_UNIT_SCALE.get(signal.name, 1.0))
        yield from families.values()


def _exported_labels(signal: Signal) -> dict[str, str]:
    """The signal's labels as /metrics names them, less the ones it does not export."""
    hidden = SIGNAL_LABELS_NOT_EXPORTED.get(signal.name, frozenset())
    return {exported_label_name(signal.name, name): str(value) for name, value in signal.labels.items()
            if name not in hidden}


class DeliveryCollector(Collector):
    """Delivery results and the queue's depth, read from the outbox at scrape time.

    The outbox keeps its result counts in the state file, so these counters survive
    restarts instead of resetting with the process.
    """

    METRICS = ("monitor_deliveries_total", "monitor_outbox_pending", "monitor_outbox_expired_deliveries",
               "monitor_outbox_disabled_destinations")

    def __init__(self) -> None:
        self._counts_source = None

    def attach(self, counts_source) -> None:
        """`counts_source()` returns the outbox's OutboxCounts; None detaches."""
        self._counts_source = counts_source

    def collect(self):
        deliveries = CounterMetricFamily("monitor_deliveries", "Delivery attempts by output and result",
                                         labels=["output", "result"])
        pending = GaugeMetricFamily("monitor_outbox_pending", "Notifications waiting for delivery")
        # The queue's state now, not a count of events: `monitor deliveries retry` re-queues
        # an expired delivery and retention prunes old ones, so this goes down too.
        expired = GaugeMetricFamily("monitor_outbox_expired_deliveries",
                                    "Deliveries that gave up (retries exhausted or refused), kept until retried "
                                    "or pruned", labels=["output"])
        disabled = GaugeMetricFamily("monitor_outbox_disabled_destinations",
                                     "1 for an output disabled by a 410 answer", labels=["output"])
        counts = self._counts_source() if self._counts_source else None
        if counts is not None:
            for (output, result), n in sorted(counts.results.items()):
                deliveries.add_metric([output, result], n)
            pending.add_metric([], sum(counts.pending.values()))
            for output, n in sorted(counts.expired.items()):
                expired.add_metric([output], n)
            for output, n in sorted(counts.disabled.items()):
                disabled.add_metric([output], 1 if n else 0)
        yield from (deliveries, pending, expired, disabled)


class TemplateErrorCollector(Collector):
    """Message templates that failed and fell back to the built-in text, per integration."""

    def collect(self):
        from monitor.outputs.message_templates import template_error_counts
        from monitor.outputs.receivers import INTEGRATIONS
        errors = CounterMetricFamily("monitor_template_errors",
                                     "Message template renders that failed and sent the built-in text instead",
                                     labels=["integration"])
        counts = template_error_counts()
        for integration in sorted(set(INTEGRATIONS) | set(counts)):
            errors.add_metric([integration], counts.get(integration, 0))
        yield errors


class DaemonMetrics:
    """The daemon's instruments on a registry of its own: its health, its build, the signals, and
    the standard process_* and python_* series every Prometheus client exports."""

    def __init__(self, registry: CollectorRegistry | None = None):
        # *_created series double every counter's cardinality for no alerting value.
        disable_created_metrics()
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # The standard collectors, on this registry rather than the global one (which
        # also collects whatever imported libraries register there).
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        # `monitor_build_info{version, python_version} 1`: join it onto other series
        # (`* on(instance) group_left(version)`) to see which version produced them.
        Info("monitor_build", "The running monitor's version and Python", registry=r).info(
            {"version": __version__, "python_version": platform.python_version()})
        self.cycle_duration = Histogram("monitor_cycle_duration_seconds", "Wall time of one evaluation cycle",
                                        buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300), registry=r)
        self.cycles = Counter("monitor_cycles_total", "Evaluation cycles by result (success or error)",
                              ["result"], registry=r)
        self.cycles_missed = Counter("monitor_cycles_missed_total",
                                     "Cycles skipped because the previous one was still running", registry=r)
        self.query_errors = Counter("monitor_query_errors_total", "Prometheus queries that failed", registry=r)
        # The load the daemon puts on Prometheus: samples its queries read, as the server
        # reports them (`stats=all`); servers without query stats add nothing.
        self.prometheus_samples = Counter("monitor_prometheus_samples_total",
                                          "Samples Prometheus read to answer the daemon's queries "
                                          "(totalQueryableSamples)", registry=r)
        self.last_success = Gauge("monitor_last_cycle_success_timestamp_seconds",
                                  "Unix time the last successful cycle finished", registry=r)
        self.config_reloads = Counter("monitor_config_reloads_total", "SIGHUP config reloads by result",
                                      ["result"], registry=r)
        # Rollback requests and cancellations the cycles queued: the dashboard's rollback
        # annotations. Counted by the process whose cycle queued them (the leader).
        self.rollback_events = Counter("monitor_rollback_events", "Rollback requests and cancellations queued, "
                                       "by model and type (rollback.requested, rollback.cancelled)",
                                       ["model", "type"], registry=r)
        # High availability (monitor.ha): max(monitor_leader) over the replicas is 1 while someone leads.
        self.leader = Gauge("monitor_leader", "1 while this replica is the leader (runs cycles and deliveries; "
                                              "a daemon on an SQLite state always is), else 0", registry=r)
        self.leader_changes = Counter("monitor_leader_changes", "New leader terms this replica has seen since it "
                                                                "started (the one it found at start not counted)",
                                      registry=r)
        self.signals = SignalCollector()
        r.register(self.signals)
        self.deliveries = DeliveryCollector()
        r.register(self.deliveries)
        r.register(TemplateErrorCollector())
        for result in ("success", "error"):
            self.cycles.labels(result)
            self.config_reloads.labels(result)

    def count_queued(self, notifications: Iterable[QueuedNotification]) -> None:
        """Count what one cycle queued (its CycleReport.notifications)."""
        for queued in notifications:
            event = queued.notification.payload
            if isinstance(event, RollbackEvent):
                self.rollback_events.labels(event.model, event.kind).inc()
