"""The read pages (/, /slos, /slos/<id>, /alerts, /models/<name>, /reports) and their JSON twins.

Every page reads the last successful cycle's snapshot (`monitor.ui.snapshot`) and the
state store's alert state and history; none queries Prometheus. Before the first
cycle the pages say so rather than show zeros.
"""

from __future__ import annotations

import functools
import mimetypes
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Sequence
from urllib.parse import quote

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Rule
from werkzeug.security import safe_join
from werkzeug.wrappers import Request, Response

from monitor.alerting.events import AlertGroupEvent, RollbackEvent
from monitor.alerting.repository import AlertRepository
from monitor.alerting.versions import last_known_good
from monitor.config import Config
from monitor.incremental.repository import PeriodRepository
from monitor.outputs.outbox import Outbox
from monitor.report import charts
from monitor.report.present import format_percent
from monitor.report.render import archive_entries
from monitor.slo.closed_hours import series_set
from monitor.slo.evaluate import promql_duration, sli_queries, slo_windows
from monitor.slo.groups import group_key
from monitor.slo.rule_file import RuleOptions, rule_file_text
from monitor.slo.spec import EventsSli, SloSpec
from monitor.ui import views
from monitor.ui.app import Endpoint, UiContext
from monitor.ui.render import DOCUMENT_POLICY, render_json, render_page, render_text, secured, ui_environment
from monitor.ui.snapshot import CACHE, CycleSnapshot, SnapshotError

# -- what every page reads ------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    snapshot: CycleSnapshot | None
    problem: str | None     # why there is no snapshot to show


def _load(context: UiContext) -> Loaded:
    try:
        snapshot = CACHE.load(context.store)
    except SnapshotError as exc:
        return Loaded(None, str(exc))
    if snapshot is None:
        return Loaded(None, "no cycle has succeeded yet: the figures appear after the first one")
    return Loaded(snapshot, None)


def _signals(loaded: Loaded) -> Sequence:
    return loaded.snapshot.signals if loaded.snapshot else ()


def _freshness(loaded: Loaded, now: datetime) -> dict:
    s = loaded.snapshot
    if s is None:
        return {"cycle_id": None, "evaluated_at": None, "age_s": None, "duration_s": None, "problem": loaded.problem}
    return {"cycle_id": s.cycle_id, "evaluated_at": s.evaluated_at.isoformat().replace("+00:00", "Z"),
            "age_s": (now - s.evaluated_at).total_seconds(), "duration_s": s.duration_s, "problem": None}


def _page(context: UiContext, request: Request, template: str, loaded: Loaded, **values) -> Response:
    return render_page(context, request, template, snapshot=loaded.snapshot, problem=loaded.problem,
                       now=context.clock(), refresh=True, **values)


class _Specs:
    """The config's SLO specs by id, loaded once per config (a reload brings a new config object)."""

    def __init__(self) -> None:
        self._config: Config | None = None
        self._by_id: dict[str, SloSpec] = {}

    def get(self, config: Config, slo_id: str) -> SloSpec | None:
        if config is not self._config:
            from monitor.slo import load_slo_specs
            try:
                specs = load_slo_specs(config)
            except Exception:   # a config that cannot load now: the page shows figures without PromQL
                specs = []
            self._by_id, self._config = {spec.id: spec for spec in specs}, config
        return self._by_id.get(slo_id)


_SPECS = _Specs()


# -- /  -------------------------------------------------------------------------------------

def overview_page(context: UiContext, request: Request) -> Response:
    loaded = _load(context)
    summary = _overview(context, loaded)
    return _page(context, request, "ui/overview.html.j2", loaded, overview=summary)


def overview_api(context: UiContext, request: Request) -> Response:
    loaded = _load(context)
    return render_json({"cycle": _freshness(loaded, context.clock()), **_overview(context, loaded).to_json()})


def _overview(context: UiContext, loaded: Loaded) -> views.Overview:
    names = [m.name for m in context.config().models]
    return views.overview(AlertRepository(context.store).alerts().values(), _signals(loaded), names)


# -- /slos ----------------------------------------------------------------------------------

def _slo_selection(request: Request, loaded: Loaded) -> tuple[list[views.SloRow], dict]:
    try:
        sort = views.SloSort(request.args.get("sort", views.SloSort.BURN.value))
    except ValueError:
        sort = views.SloSort.BURN
    service = request.args.get("service") or None
    query = request.args.get("q") or None
    table = _slo_table(loaded)
    rows = table.select(sort, service, query)
    return rows, {"sort": sort.value, "service": service or "", "q": query or "", "services": table.services,
                  "sorts": [s.value for s in views.SloSort], "total": len(table.rows)}


class _SloTable:
    """One cycle's SLO rows, their printed cells and recent selections: built once per cycle, so a
    refresh storm on /slos re-renders the page and nothing else."""

    MAX_SELECTIONS = 32

    def __init__(self, cycle_id: int | None, rows: list[views.SloRow]):
        self.cycle_id = cycle_id
        self.snapshot: CycleSnapshot | None = None
        self.rows = rows
        self.services = sorted({r.service for r in rows})
        self._cells: dict[int, dict] = {}
        self._selections: dict[tuple, list[views.SloRow]] = {}
        self._lock = threading.Lock()

    def select(self, sort: views.SloSort, service: str | None, query: str | None) -> list[views.SloRow]:
        key = (sort, service, query)
        with self._lock:
            found = self._selections.get(key)
        if found is None:
            found = views.select_slos(self.rows, sort=sort, service=service, query=query)
            with self._lock:
                if len(self._selections) >= self.MAX_SELECTIONS:
                    self._selections.pop(next(iter(self._selections)))
                self._selections[key] = found
        return found

    def cells(self, row: views.SloRow) -> dict:
        found = self._cells.get(id(row))
        if found is None:
            found = self._cells[id(row)] = _slo_cells(row)
        return found


_TABLES: dict[int, _SloTable] = {}
_TABLES_KEPT = 4     # a process may serve a few stores (tests do); each store's last cycle
_TABLES_LOCK = threading.Lock()
_NO_SNAPSHOT = _SloTable(None, [])


def _slo_table(loaded: Loaded) -> _SloTable:
    """The table of the loaded snapshot, built once per snapshot (the cache hands out one object per cycle)."""
    snapshot = loaded.snapshot
    if snapshot is None:
        return _NO_SNAPSHOT
    with _TABLES_LOCK:
        table = _TABLES.get(id(snapshot))
        if table is not None and table.snapshot is snapshot:
            return table
    table = _SloTable(snapshot.cycle_id, views.slo_rows(snapshot.signals))
    table.snapshot = snapshot   # held, so its id is not reused while the table is kept
    with _TABLES_LOCK:
        while len(_TABLES) >= _TABLES_KEPT:
            _TABLES.pop(next(iter(_TABLES)))
        _TABLES[id(snapshot)] = table
    return table


def _slo_rows(loaded: Loaded) -> list[views.SloRow]:
    return _slo_table(loaded).rows


def slos_page(context: UiContext, request: Request) -> Response:
    loaded = _load(context)
    rows, selection = _slo_selection(request, loaded)
    table = _slo_table(loaded)
    return _page(context, request, "ui/slos.html.j2", loaded, cells=[table.cells(row) for row in rows],
                 selection=selection, windows=views.BURN_WINDOWS)


def _slo_cells(row: views.SloRow) -> dict:
    """One /slos row as the table prints it. A thousand rows of sandboxed attribute lookups and macro
    calls take most of a second; plain strings subscripted from a dict take a tenth of that."""
    return {"id": row.slo_id, "path": quote(row.slo_id, safe=""), "service": row.service,
            "labels": [f'{k}="{v}"' for k, v in sorted(row.group_labels.items())],
            "objective": format_percent(row.objective, 3), "attainment": format_percent(row.attainment, 3),
            "budget": format_percent(row.budget_remaining, 1),
            "burns": [views.format_burn(row.burn_rates.get(w)) for w in views.BURN_WINDOWS],
            "status": row.status.value, "word": row.status.word}


def slos_api(context: UiContext, request: Request) -> Response:
    loaded = _load(context)
    rows, selection = _slo_selection(request, loaded)
    selection.pop("sorts")
    return render_json({"cycle": _freshness(loaded, context.clock()), "selection": selection,
                        "slos": [r.to_json() for r in rows]})


# -- /slos/<id> -----------------------------------------------------------------------------

@dataclass(frozen=True)
class SloDetail:
    slo_id: str
    rows: list[views.SloRow]
    spec: SloSpec | None
    checks: dict[str, list[views.WindowCheck]]       # row key -> its page and ticket conditions
    histories: dict[str, views.SloHistory | None]    # row key -> hourly history from the store
    transitions: list                                # its alerts' state changes, newest first
    queries: dict[str, dict[str, str]]               # window -> role -> PromQL
    rule_file: str | None

    def to_json(self) -> dict:
        return {"slo_id": self.slo_id, "instances": [
            {**row.to_json(), "conditions": [
                {"severity": c.severity, "long": c.long, "short": c.short, "threshold": c.threshold,
                 "long_burn_rate": c.long_burn_rate, "short_burn_rate": c.short_burn_rate, "holds": c.holds}
                for c in self.checks[row.key]],
             "history_hours": (self.histories[row.key].hours if self.histories[row.key] else 0)}
            for row in self.rows],
            "alert_history": [{"alertname": t.alertname, "labels": dict(t.labels), "from": t.from_state.value,
                               "to": t.to_state.value, "at": t.at.isoformat().replace("+00:00", "Z")}
                              for t in self.transitions],
            "promql": self.queries, "rule_file": self.rule_file}


def _slo_detail(context: UiContext, loaded: Loaded, slo_id: str) -> SloDetail:
    rows = [r for r in _slo_rows(loaded) if r.slo_id == slo_id]
    config = context.config()
    spec = _SPECS.get(config, slo_id)
    if not rows and spec is None:
        raise NotFound(f"no SLO {slo_id!r} in the last cycle or the config")
    now = loaded.snapshot.evaluated_at if loaded.snapshot else context.clock()
    period_s = spec.period_length(now).total_seconds() if spec else timedelta(days=30).total_seconds()
    checks = {row.key: views.window_checks(row, period_s) for row in rows}
    histories: dict[str, views.SloHistory | None] = {}
    hours = None
    if spec is not None and isinstance(spec.sli, EventsSli):
        hours = PeriodRepository(context.store).hourly(series_set(spec), now - spec.period_window(now), now)
    for row in rows:
        objective = row.objective if row.objective is not None else (spec.objective if spec else None)
        key = group_key(tuple(sorted(row.group_labels.items()))) if row.group_labels else ""
        histories[row.key] = (views.slo_history(hours, key, objective)
                              if hours and objective is not None else None)
    transitions = [t for t in AlertRepository(context.store).transitions() if t.labels.get("slo_id") == slo_id]
    transitions.reverse()
    queries, rule_file = {}, None
    if spec is not None:
        queries = {key: sli_queries(spec, promql_duration(window)) for key, window in slo_windows(spec, now).items()}
        rule_file = rule_file_text([spec], RuleOptions(min_events=config.slo_min_events))
    return SloDetail(slo_id, rows, spec, checks, histories, transitions, queries, rule_file)


def slo_page(context: UiContext, request: Request, slo_id: str) -> Response:
    loaded = _load(context)
    detail = _slo_detail(context, loaded, slo_id)
    return _page(context, request, "ui/slo.html.j2", loaded, detail=detail)


def slo_api(context: UiContext, request: Request, slo_id: str) -> Response:
    loaded = _load(context)
    return render_json({"cycle": _freshness(loaded, context.clock()),
                        **_slo_detail(context, loaded, slo_id).to_json()})


@functools.lru_cache(maxsize=64)
def _chart(kind: str, cycle_id: int | None, slo_id: str, key: str, history: views.SloHistory | None,
           threshold: float | None) -> str:
    """A chart of one SLO instance, drawn once per cycle (the snapshot's id is part of the key)."""
    if kind == "burn-rate":
        return charts.burn_rate_chart(history.burn_rate, f"{key} burn rate", "1h", threshold)
    return charts.error_budget_chart(history.budget_remaining, f"{key} error budget left")


def slo_chart(context: UiContext, request: Request, slo_id: str, kind: str) -> Response:
    """/slos/<id>/burn-rate.svg or budget.svg (`?key=` picks a group): an image, so the page
    itself needs no inline styles."""
    if kind not in ("burn-rate", "budget"):
        raise NotFound()
    loaded = _load(context)
    detail = _slo_detail(context, loaded, slo_id)
    key = request.args.get("key") or (detail.rows[0].key if detail.rows else "")
    history = detail.histories.get(key)
    if history is None:
        raise NotFound("no history in the store for this SLO")
    threshold = next((c.threshold for c in detail.checks[key] if c.severity == "page" and c.long == "1h"), None)
    svg = _chart(kind, loaded.snapshot.cycle_id if loaded.snapshot else None, slo_id, key, history, threshold)
    return render_text(svg, "image/svg+xml", policy=DOCUMENT_POLICY)


# -- /alerts --------------------------------------------------------------------------------

def _alerts(context: UiContext) -> list[views.AlertRow]:
    repository = AlertRepository(context.store)
    alerts = [a for a in repository.alerts().values() if a.state in views.SHOWN_STATES]
    wanted = {a.fingerprint for a in alerts}
    sent: dict[str, list[views.SentNotification]] = defaultdict(list)
    if wanted:
        deliveries = defaultdict(list)
        for delivery in Outbox(context.store).deliveries():
            if delivery.notification_id is not None:
                deliveries[delivery.notification_id].append((delivery.destination, delivery.status.value))
        for queued in repository.notifications():
            event = queued.notification.payload
            if isinstance(event, AlertGroupEvent):
                shown = {a.fingerprint for a in event.alerts}
            elif isinstance(event, RollbackEvent):
                shown = {event.alert.fingerprint}
            else:
                continue
            note = views.SentNotification(queued.notification.kind.value, queued.notification.created_at,
                                          queued.status, tuple(deliveries.get(queued.id, ())))
            for fp in shown & wanted:
                sent[fp].append(note)
    return views.alert_rows(alerts, sent)


def alerts_page(context: UiContext, request: Request) -> Response:
    loaded = _load(context)
    return _page(context, request, "ui/alerts.html.j2", loaded, alerts=_alerts(context))


def alerts_api(context: UiContext, request: Request) -> Response:
    return render_json({"alerts": [row.to_json() for row in _alerts(context)]})


# -- /models/<name> -------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelDetail:
    view: views.ModelView
    versions: list        # ModelVersion, newest first
    last_known_good: object
    rollbacks: list       # ModelVersion with a rollback requested

    def to_json(self) -> dict:
        def version(v) -> dict:
            return {"version": v.version, "first_seen_at": _iso(v.first_seen_at), "last_seen_at": _iso(v.last_seen_at),
                    "rollback_requested_at": _iso(v.rollback_fired_at)}
        return {**views.model_json(self.view), "versions": [version(v) for v in self.versions],
                "last_known_good": self.last_known_good.version if self.last_known_good else None,
                "rollbacks": [version(v) for v in self.rollbacks]}


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat().replace("+00:00", "Z")


def _model(context: UiContext, loaded: Loaded, name: str) -> ModelDetail:
    config = context.config()
    model_views = views.model_views(_signals(loaded), [m.name for m in config.models])
    view = model_views.get(name)
    if view is None:
        raise NotFound(f"no model {name!r}")
    known = AlertRepository(context.store).versions()
    versions = sorted((v for v in known.values() if v.model == name), key=lambda v: v.order_key(), reverse=True)
    good = last_known_good(known, name, config.alerting.last_known_good_after)
    return ModelDetail(view, versions, good, [v for v in versions if v.rollback_fired_at is not None])


def model_page(context: UiContext, request: Request, name: str) -> Response:
    loaded = _load(context)
    return _page(context, request, "ui/model.html.j2", loaded, model=_model(context, loaded, name))


def model_api(context: UiContext, request: Request, name: str) -> Response:
    loaded = _load(context)
    return render_json({"cycle": _freshness(loaded, context.clock()), **_model(context, loaded, name).to_json()})


# -- /reports -------------------------------------------------------------------------------

def _reports_dir(context: UiContext) -> Path:
    config = context.config()
    return config.resolve_path(config.reports.dir)


def reports_page(context: UiContext, request: Request) -> Response:
    loaded = _load(context)
    return _page(context, request, "ui/reports.html.j2", loaded, entries=archive_entries(_reports_dir(context)))


def report_file(context: UiContext, request: Request, path: str) -> Response:
    """A file of the archive, read-only; nothing outside `reports.dir` (no `..`, no absolute paths)."""
    root = _reports_dir(context).resolve()
    joined = safe_join(str(root), path)
    if joined is None:
        raise NotFound()
    target = Path(joined)
    if target.is_dir():
        target = target / "index.html"
    try:
        resolved = target.resolve(strict=True)
    except (OSError, RuntimeError):
        raise NotFound() from None
    # A symlink inside the archive must not lead out of it either.
    if not resolved.is_file() or (resolved != root and root not in resolved.parents):
        raise NotFound()
    mimetype = mimetypes.guess_type(resolved.name)[0] or "application/octet-stream"
    return render_text(resolved.read_bytes(), mimetype, policy=DOCUMENT_POLICY)


# -- static: the stylesheet and the one script ----------------------------------------------

@functools.lru_cache(maxsize=1)
def _stylesheet() -> str:
    return ui_environment().get_template("ui/style.css.j2").render()


def stylesheet(context: UiContext, request: Request) -> Response:
    return render_text(_stylesheet(), "text/css", cache_seconds=300)


@functools.lru_cache(maxsize=1)
def _script() -> str:
    return (Path(ui_environment().loader.searchpath[0]) / "ui" / "ui.js.j2").read_text(encoding="utf-8")


def script(context: UiContext, request: Request) -> Response:
    return render_text(_script(), "text/javascript", cache_seconds=300)


def routes() -> list[tuple[Rule, Endpoint]]:
    get = ["GET", "HEAD"]
    table: list[tuple[str, str, Endpoint]] = [
        ("/", "overview", overview_page),
        ("/slos", "slos", slos_page),
        ("/slos/<slo_id>", "slo", slo_page),
        ("/slos/<slo_id>/<kind>.svg", "slo_chart", slo_chart),
        ("/alerts", "alerts", alerts_page),
        ("/models/<name>", "model", model_page),
        ("/reports/", "reports", reports_page),
        ("/reports/<path:path>", "report_file", report_file),
        ("/ui.css", "stylesheet", stylesheet),
        ("/ui.js", "script", script),
        ("/api/v1/overview", "api_overview", overview_api),
        ("/api/v1/slos", "api_slos", slos_api),
        ("/api/v1/slos/<slo_id>", "api_slo", slo_api),
        ("/api/v1/alerts", "api_alerts", alerts_api),
        ("/api/v1/models/<name>", "api_model", model_api),
    ]
    return [(Rule(path, endpoint=name, methods=get), _secured_errors(endpoint)) for path, name, endpoint in table]


def _secured_errors(endpoint: Endpoint) -> Endpoint:
    """An endpoint whose 404s (and other HTTP errors) carry the same security headers as its pages."""
    @functools.wraps(endpoint)
    def wrapped(context: UiContext, request: Request, **values) -> Response:
        try:
            return endpoint(context, request, **values)
        except HTTPException as exc:
            return secured(exc.get_response(request.environ))
    return wrapped
