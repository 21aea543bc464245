"""What each page shows, built from the last cycle's signals and the store's alert state: pure functions.

No HTTP, no templates, no clock: signals, alerts and `now` in, frozen rows out. The HTML
pages and their JSON twins both render these, so the two can never disagree.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Iterable, Mapping, Sequence

from monitor.alerting.condition import Matcher
from monitor.alerting.lifecycle import Alert, AlertState
from monitor.alerting.routes import matcher_text
from monitor.report.model import DriftRow, TimeSeries
from monitor.report.present import NO_DATA, format_time
from monitor.report.slo_section import AT_RISK_BUDGET_BELOW
from monitor.signals import Signal
from monitor.slo.burn_rate import PAGE_CONDITIONS, TICKET_CONDITIONS, WINDOWS
from monitor.timeutil import from_unix, iso_z

# Burn-rate windows as columns, shortest first (the period's own window is shown as budget).
BURN_WINDOWS = tuple(WINDOWS)
SLO_LABELS = ("slo_id", "service", "slo")


class SloStatus(Enum):
    """An SLO's state now, worst first: the word shown beside its colour."""

    PAGE = "page"          # the page condition holds (1h & 5m, or 6h & 30m)
    TICKET = "ticket"      # the ticket condition holds (1d & 2h, or 3d & 6h)
    ERROR = "error"        # its query is rejected: no numbers
    EXHAUSTED = "exhausted"  # no budget left in the period
    OK = "ok"
    NO_DATA = "no_data"

    @property
    def word(self) -> str:
        return self.value.replace("_", " ")

    @property
    def rank(self) -> int:
        return list(SloStatus).index(self)


@dataclass(frozen=True)
class SloRow:
    """One SLO (or one group of a grouped SLO) as the last cycle measured it."""

    slo_id: str
    service: str
    name: str
    group_labels: Mapping[str, str]
    objective: float | None
    attainment: float | None       # good / all events over the period so far
    budget_remaining: float | None
    events_total: float | None
    burn_rates: Mapping[str, float | None]
    page: bool | None
    ticket: bool | None
    status: SloStatus
    error: str | None = None

    @property
    def key(self) -> str:
        """Unique per row: the spec id, and the group's labels for a grouped SLO."""
        if not self.group_labels:
            return self.slo_id
        return self.slo_id + "{" + ",".join(f"{k}={v}" for k, v in sorted(self.group_labels.items())) + "}"

    @property
    def fastest_burn(self) -> float | None:
        """The burn rate that decides the order: the highest of the page condition's windows."""
        values = [self.burn_rates.get(w) for c in PAGE_CONDITIONS for w in (c.long, c.short)]
        present = [v for v in values if v is not None]
        return max(present) if present else None

    @property
    def at_risk(self) -> bool:
        """Burning (page or ticket), exhausted or under the report's at-risk share of budget left."""
        return (self.status in (SloStatus.PAGE, SloStatus.TICKET, SloStatus.EXHAUSTED)
                or (self.budget_remaining is not None and self.budget_remaining < AT_RISK_BUDGET_BELOW))

    def labels_text(self) -> str:
        return " ".join(f"{k}={v}" for k, v in sorted(self.group_labels.items()))

    def to_json(self) -> dict:
        return {"slo_id": self.slo_id, "service": self.service, "slo": self.name,
                "group_labels": dict(self.group_labels), "objective": self.objective,
                "attainment": self.attainment, "error_budget_remaining": self.budget_remaining,
                "events_total": self.events_total, "burn_rates": dict(self.burn_rates),
                "page": self.page, "ticket": self.ticket, "status": self.status.value,
                "at_risk": self.at_risk, "error": self.error}


def format_burn(value: float | None) -> str:
    """A burn rate as the pages print it: `14.40×`, or "no data"."""
    return NO_DATA if value is None else f"{value:.2f}\N{MULTIPLICATION SIGN}"


# Evidence names whose values are instants (unix seconds): shown as times.
_INSTANT_SUFFIXES = ("_start", "_end", "_at")


def format_figure(value: float | None, name: str = "") -> str:
    """An evidence figure as the pages print it: counts with separators, instants as times, else 6 digits."""
    if value is None or value != value:
        return NO_DATA
    if name.endswith(_INSTANT_SUFFIXES) and value > 1e9:
        return format_time(from_unix(value))
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{value:,.0f}"
    if abs(value) >= 1e5:
        return f"{value:,.1f}"
    return f"{value:.6g}"


def _flag(value: float | None) -> bool | None:
    return None if value is None else value >= 1.0


def _group(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """A grouped SLO's group labels, sorted; () for an ungrouped one (most: checked without a copy)."""
    if len(labels) - ("window" in labels) == len(SLO_LABELS) and all(k in labels for k in SLO_LABELS):
        return ()
    return tuple(sorted((k, v) for k, v in labels.items() if k not in SLO_LABELS and k != "window"))


def slo_rows(signals: Iterable[Signal]) -> list[SloRow]:
    """One row per SLO instance in the signals, plus one per SLO whose query is in error."""
    by_instance: dict[tuple, dict] = defaultdict(lambda: {"burn": {}})
    errors: dict[str, str] = {}
    for signal in signals:
        if signal.name == "definition_error" and signal.labels.get("kind") == "slo":
            errors[signal.labels.get("name", "")] = signal.labels.get("error", "")
            continue
        if not signal.name.startswith("slo_"):
            continue
        key = (signal.labels.get("slo_id", ""), _group(signal.labels))
        entry = by_instance[key]
        entry.setdefault("labels", signal.labels)
        if signal.name == "slo_burn_rate":
            entry["burn"][signal.labels.get("window", "")] = signal.value
        elif signal.name == "slo_error_budget_remaining":
            entry["budget"] = signal.value
            entry["objective"] = signal.evidence.get("objective")
            entry["total"] = signal.evidence.get("events_total")
            entry["bad"] = signal.evidence.get("events_bad")
        elif signal.name == "slo_page":
            entry["page"] = _flag(signal.value)
        elif signal.name == "slo_ticket":
            entry["ticket"] = _flag(signal.value)
    rows = []
    for (slo_id, group), entry in by_instance.items():
        labels = entry["labels"]
        total, bad = entry.get("total"), entry.get("bad")
        attainment = None if total is None or bad is None or total <= 0 else 1.0 - bad / total
        page, ticket, budget = entry.get("page"), entry.get("ticket"), entry.get("budget")
        rows.append(SloRow(slo_id, labels.get("service", ""), labels.get("slo", ""), dict(group),
                           entry.get("objective"), attainment, budget, total,
                           {w: entry["burn"].get(w) for w in (*BURN_WINDOWS, *[k for k in entry["burn"]
                                                                             if k not in WINDOWS])},
                           page, ticket, _slo_status(page, ticket, budget)))
    measured = {row.slo_id for row in rows}
    for slo_id, message in errors.items():
        if slo_id not in measured:
            service, _, name = slo_id.partition("-")
            rows.append(SloRow(slo_id, service, name, {}, None, None, None, None,
                               dict.fromkeys(BURN_WINDOWS), None, None, SloStatus.ERROR, message))
    return rows


def _slo_status(page: bool | None, ticket: bool | None, budget: float | None) -> SloStatus:
    if page:
        return SloStatus.PAGE
    if ticket:
        return SloStatus.TICKET
    if budget is not None and budget <= 0:
        return SloStatus.EXHAUSTED
    # Neither condition decidable (too few events in its windows): never "ok" for lack of data.
    if page is None and ticket is None:
        return SloStatus.NO_DATA
    return SloStatus.OK


class SloSort(Enum):
    """The orders /slos offers (`?sort=`)."""

    BURN = "burn"              # worst status first, then the fastest burn: the default
    BUDGET = "budget"          # least budget left first
    ATTAINMENT = "attainment"  # lowest first
    OBJECTIVE = "objective"    # strictest first
    NAME = "name"              # by id
    SERVICE = "service"


def _low_first(value: float | None) -> tuple[bool, float]:
    return (value is None, value if value is not None else 0.0)


def _high_first(value: float | None) -> tuple[bool, float]:
    return (value is None, -value if value is not None else 0.0)


_SORT_KEYS = {
    SloSort.BURN: lambda r: (r.status.rank, _high_first(r.fastest_burn), r.key),
    SloSort.BUDGET: lambda r: (_low_first(r.budget_remaining), r.key),
    SloSort.ATTAINMENT: lambda r: (_low_first(r.attainment), r.key),
    SloSort.OBJECTIVE: lambda r: (_high_first(r.objective), r.key),
    SloSort.NAME: lambda r: r.key,
    SloSort.SERVICE: lambda r: (r.service, r.key),
}


def select_slos(rows: Sequence[SloRow], *, sort: SloSort = SloSort.BURN, service: str | None = None,
                query: str | None = None) -> list[SloRow]:
    """`rows` of `service` (exact) whose id, name, service or a `label=value` contains `query`, in `sort` order."""
    needle = (query or "").strip().lower()
    chosen = [r for r in rows
              if (not service or r.service == service)
              and (not needle or needle in r.key.lower() or needle in r.name.lower()
                   or needle in r.service.lower() or needle in r.labels_text().lower())]
    return sorted(chosen, key=_SORT_KEYS[sort])


@dataclass(frozen=True)
class WindowCheck:
    """One multiwindow burn-rate condition: both windows against the threshold."""

    severity: str           # "page" | "ticket"
    long: str
    short: str
    threshold: float
    long_burn_rate: float | None
    short_burn_rate: float | None

    @property
    def holds(self) -> bool | None:
        if self.long_burn_rate is None or self.short_burn_rate is None:
            return None
        return self.long_burn_rate > self.threshold and self.short_burn_rate > self.threshold


def window_checks(row: SloRow, period_s: float) -> list[WindowCheck]:
    """The page and ticket conditions for one SLO, with their thresholds for its period."""
    checks = []
    for severity, conditions in (("page", PAGE_CONDITIONS), ("ticket", TICKET_CONDITIONS)):
        for condition in conditions:
            checks.append(WindowCheck(severity, condition.long, condition.short,
                                      condition.threshold(timedelta(seconds=period_s)),
                                      row.burn_rates.get(condition.long), row.burn_rates.get(condition.short)))
    return checks


# -- alerts --------------------------------------------------------------------------------

SHOWN_STATES = (AlertState.FIRING, AlertState.PENDING, AlertState.NO_DATA)


@dataclass(frozen=True)
class SentNotification:
    """One notification that showed an alert, and where it went."""

    kind: str
    created_at: datetime
    status: str
    destinations: tuple[tuple[str, str], ...]   # (destination, delivery status)


@dataclass(frozen=True)
class AlertRow:
    alert: Alert
    severity: str
    matchers: str            # the silence form's prefill, one matcher per line
    notifications: tuple[SentNotification, ...] = field(default_factory=tuple)

    def to_json(self) -> dict:
        a = self.alert
        return {"fingerprint": a.fingerprint, "alertname": a.alertname, "state": a.state.value,
                "severity": self.severity, "labels": dict(a.labels), "annotations": dict(a.annotations),
                "value": a.value, "evidence": dict(a.evidence),
                "active_since": _iso(a.active_since), "fired_at": _iso(a.fired_at),
                "silenced_by": list(a.silenced_by), "inhibited": a.inhibited, "matchers": self.matchers.splitlines(),
                "notifications": [{"kind": n.kind, "created_at": iso_z(n.created_at), "status": n.status,
                                   "deliveries": [{"destination": d, "status": s} for d, s in n.destinations]}
                                  for n in self.notifications]}


def _iso(at: datetime | None) -> str | None:
    return None if at is None else iso_z(at)


def silence_matchers(alert: Alert) -> str:
    """`alertname="…"` then the alert's identifying labels, one matcher per line, quoted as routes are."""
    lines = [matcher_text(Matcher("alertname", "=", alert.alertname))]
    lines += [matcher_text(Matcher(name, "=", value)) for name, value in sorted(alert.labels.items())
              if name != "alertname"]
    return "\n".join(lines)


_STATE_ORDER = {AlertState.FIRING: 0, AlertState.NO_DATA: 1, AlertState.PENDING: 2}
_SEVERITY_ORDER = {"page": 0, "critical": 0, "ticket": 1, "warning": 1}


def alert_rows(alerts: Iterable[Alert], sent: Mapping[str, Sequence[SentNotification]] | None = None
               ) -> list[AlertRow]:
    """Firing, no-data and pending alerts, firing pages first, then by when they started."""
    sent = sent or {}
    shown = [a for a in alerts if a.state in SHOWN_STATES]
    shown.sort(key=lambda a: (_STATE_ORDER[a.state], _SEVERITY_ORDER.get(a.labels.get("severity", ""), 2),
                              a.active_since or a.last_evaluated_at, a.alertname, a.fingerprint))
    return [AlertRow(a, a.labels.get("severity", ""), silence_matchers(a), tuple(sent.get(a.fingerprint, ())))
            for a in shown]


# -- models ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelCost:
    """One model (version None: all its versions) over the trailing 7 days, and the week before."""

    model: str
    version: str | None
    cost_per_1k: float | None
    cost_per_1k_wow_change: float | None
    cost_usd: float | None
    inferences: float | None
    gpu_hours: float | None
    idle_cost_usd: float | None
    inference_rate: float | None

    @property
    def previous_cost_per_1k(self) -> float | None:
        """Last week's cost per 1k: this week's over (1 + the week-over-week change)."""
        if self.cost_per_1k is None or self.cost_per_1k_wow_change is None or self.cost_per_1k_wow_change == -1:
            return None
        return self.cost_per_1k / (1.0 + self.cost_per_1k_wow_change)


@dataclass(frozen=True)
class ModelView:
    name: str
    costs: tuple[ModelCost, ...]           # the model's total first, then per version
    drift: tuple[DriftRow, ...]
    drift_share: Mapping[str, float | None]  # version -> share of columns drifted
    gpu_utilization: float | None

    @property
    def drifting(self) -> bool:
        return any(row.drifted for row in self.drift)

    @property
    def total(self) -> ModelCost | None:
        return next((c for c in self.costs if c.version is None), None)


def model_views(signals: Iterable[Signal], names: Iterable[str] = ()) -> dict[str, ModelView]:
    """Per model: cost per version, drift per column, GPU utilisation; `names` (configured) listed even
    when the cycle had no figures for them."""
    costs: dict[tuple[str, str | None], dict] = defaultdict(dict)
    drift: dict[tuple[str, str, str], dict] = defaultdict(dict)
    shares: dict[str, dict[str, float | None]] = defaultdict(dict)
    utilization: dict[str, float | None] = {}
    cost_names = {"cost_per_1k", "cost_per_1k_wow_change", "cost_usd", "idle_cost_usd", "gpu_hours",
                  "model_inference_rate"}
    for s in signals:
        model = s.labels.get("model")
        if model is None:
            continue
        if s.name in cost_names:
            entry = costs[(model, s.labels.get("version") or None)]
            entry[s.name] = s.value
            if s.name == "cost_usd":
                entry["inferences"] = s.evidence.get("inferences")
        elif s.name.startswith("drift_") and s.name != "drift_share" and "column" in s.labels:
            drift[(model, s.labels.get("version", ""), s.labels["column"])][s.name] = s.value
        elif s.name == "drift_share":
            shares[model][s.labels.get("version", "")] = s.value
        elif s.name == "gpu_utilization":
            utilization[model] = s.value
    models = sorted({*names, *(m for m, _ in costs), *(m for m, _, _ in drift), *shares, *utilization})
    views = {}
    for name in models:
        model_costs = sorted(((version, entry) for (m, version), entry in costs.items() if m == name),
                             key=lambda item: (item[0] is not None, item[0] or ""))
        views[name] = ModelView(
            name,
            tuple(ModelCost(name, version, e.get("cost_per_1k"), e.get("cost_per_1k_wow_change"), e.get("cost_usd"),
                            e.get("inferences"), e.get("gpu_hours"), e.get("idle_cost_usd"),
                            e.get("model_inference_rate")) for version, e in model_costs),
            tuple(DriftRow(m, v, c, e.get("drift_psi"), e.get("drift_js"), e.get("drift_ks"),
                           e.get("drift_wasserstein_norm"), _flag(e.get("drift_detected")))
                  for (m, v, c), e in sorted(drift.items()) if m == name),
            dict(shares.get(name, {})), utilization.get(name))
    return views


# -- the overview ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Overview:
    firing_pages: int
    firing_tickets: int
    firing_other: int
    silenced: int
    pending: int
    no_data: int
    slos: int
    slos_at_risk: tuple[SloRow, ...]
    models_drifting: tuple[str, ...]
    # Fleet cost per 1k this week: the sum of models' cost over the sum of their inferences.
    cost_per_1k: float | None
    models: tuple[ModelView, ...]
    definition_errors: tuple[Mapping[str, str], ...]

    def to_json(self) -> dict:
        return {"firing": {"page": self.firing_pages, "ticket": self.firing_tickets, "other": self.firing_other},
                "silenced": self.silenced, "pending": self.pending, "no_data": self.no_data, "slos": self.slos,
                "slos_at_risk": [r.to_json() for r in self.slos_at_risk],
                "models_drifting": list(self.models_drifting), "cost_per_1k": self.cost_per_1k,
                "models": [model_json(m) for m in self.models],
                "definition_errors": [dict(e) for e in self.definition_errors]}


def overview(alerts: Iterable[Alert], signals: Sequence[Signal], model_names: Iterable[str] = (),
             slos: Sequence[SloRow] | None = None) -> Overview:
    """The overview of the alert state and a cycle's signals; `slos` are `slo_rows(signals)` when
    already built (the pages keep them per cycle)."""
    alerts = list(alerts)
    firing = [a for a in alerts if a.state is AlertState.FIRING]
    unsuppressed = [a for a in firing if not a.suppressed]
    severities = [a.labels.get("severity", "") for a in unsuppressed]
    rows = select_slos(slo_rows(signals) if slos is None else slos)
    models = model_views(signals, model_names)
    totals = [m.total for m in models.values() if m.total is not None]
    paired = [(c.cost_usd, c.inferences) for c in totals if c.cost_usd is not None and c.inferences]
    inferences = sum(i for _, i in paired)
    cost_per_1k = sum(c for c, _ in paired) / inferences * 1000.0 if paired and inferences > 0 else None
    errors = tuple(dict(s.labels) for s in signals if s.name == "definition_error")
    return Overview(
        firing_pages=severities.count("page"), firing_tickets=severities.count("ticket"),
        firing_other=len(severities) - severities.count("page") - severities.count("ticket"),
        silenced=len(firing) - len(unsuppressed),
        pending=sum(a.state is AlertState.PENDING for a in alerts),
        no_data=sum(a.state is AlertState.NO_DATA for a in alerts),
        slos=len(rows), slos_at_risk=tuple(r for r in rows if r.at_risk),
        models_drifting=tuple(name for name, m in models.items() if m.drifting),
        cost_per_1k=cost_per_1k, models=tuple(models.values()), definition_errors=errors)


def model_json(view: ModelView) -> dict:
    return {"name": view.name, "gpu_utilization": view.gpu_utilization, "drifting": view.drifting,
            "drift_share": dict(view.drift_share),
            "costs": [{**asdict(c), "previous_cost_per_1k": c.previous_cost_per_1k} for c in view.costs],
            "drift": [asdict(d) for d in view.drift]}


# -- one SLO's history, from the closed hours the store keeps ------------------------------------

@dataclass(frozen=True)
class SloHistory:
    """Hourly burn rate and the budget's burndown over the period, from the store's closed hours.

    `budget_remaining[i]` is 1 minus the bad events up to hour i over the budget of the whole
    window shown (objective's share of all its events): the burndown that ends at the period's
    remaining budget, without the partial hours at either end that the cycle adds."""

    burn_rate: TimeSeries
    budget_remaining: TimeSeries
    hours: int


def slo_history(hours: Mapping[float, Sequence], group_key: str, objective: float) -> SloHistory | None:
    """From `PeriodRepository.hourly` rows (figures "bad" and "total" per group key); None without hours."""
    points = []
    for end in sorted(hours):
        figures = {v.figure: v.value for v in hours[end] if v.key == group_key}
        points.append((end, figures.get("bad"), figures.get("total")))
    if not points or objective >= 1.0:
        return None
    allowed = 1.0 - objective
    burn = [None if bad is None or not total else (bad / total) / allowed for _, bad, total in points]
    window_total = sum(total or 0.0 for _, _, total in points)
    budget: list[float | None] = []
    spent = 0.0
    for _, bad, _ in points:
        spent += bad or 0.0
        budget.append(None if window_total <= 0 else 1.0 - spent / (allowed * window_total))
    stamps = tuple(end for end, _, _ in points)
    return SloHistory(TimeSeries(stamps, tuple(burn)), TimeSeries(stamps, tuple(budget)), len(points))
