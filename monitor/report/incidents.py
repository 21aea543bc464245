"""Incidents and change health from the alert history in the state store.

An incident is one episode of one alert (fingerprint): it *starts* when the
alert's condition first held (its pending transition; the firing one when it
fired at once), is *detected* at the first notification queued for it while
firing, and *resolves* at its resolved transition. History comes from the
`alert_transitions` and `notifications` tables, which keep everything, unlike the
`alerts` table, which forgets resolved alerts after a day.

Versions: `model_versions` gives first/last seen; a version counts as deployed in
the period when first seen in it, except versions already serving when the daemon
first ran (first seen at its first cycle): they predate monitoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from monitor.alerting.events import AlertGroupEvent, RollbackEvent
from monitor.alerting.lifecycle import AlertState
from monitor.alerting.repository import AlertRepository
from monitor.report.model import (ChangeSection, IncidentRow, IncidentSection, SectionStatus, SeverityMttr,
                                  VersionRow)
from monitor.report.period import ReportPeriod
from monitor.store import StateStore

NOTIFYING_KINDS = ("firing", "repeat")
SUBJECT_LABELS = ("service", "model", "pipeline", "slo_id", "job", "instance")


@dataclass
class _Episode:
    fingerprint: str
    alertname: str
    labels: dict[str, str]
    started_at: datetime | None
    fired_at: datetime
    resolved_at: datetime | None = None


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, timezone.utc)


def alert_episodes(store: StateStore, until: datetime) -> list[_Episode]:
    """Every firing episode up to `until`, from the transitions log (oldest first)."""
    pending_since: dict[str, datetime] = {}
    open_episodes: dict[str, _Episode] = {}
    episodes: list[_Episode] = []
    for transition in AlertRepository(store).transitions(until):
        fp, to_state, at = transition.fingerprint, transition.to_state, transition.at
        if to_state is AlertState.PENDING:
            pending_since.setdefault(fp, at)
        elif to_state is AlertState.INACTIVE:
            pending_since.pop(fp, None)
        elif to_state is AlertState.FIRING and fp not in open_episodes:
            episode = _Episode(fp, transition.alertname, dict(transition.labels), pending_since.pop(fp, at), at)
            open_episodes[fp] = episode
            episodes.append(episode)
        elif to_state is AlertState.RESOLVED and fp in open_episodes:
            open_episodes.pop(fp).resolved_at = at
            pending_since.pop(fp, None)
    return episodes


def _notified(store: StateStore) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per fingerprint: when a notification showed it firing, and when a rollback was requested."""
    firing: dict[str, list[float]] = {}
    rollbacks: dict[str, list[float]] = {}
    for queued in AlertRepository(store).notifications():
        n = queued.notification
        at = n.created_at.timestamp()
        event = n.payload
        if n.kind.value in NOTIFYING_KINDS and isinstance(event, AlertGroupEvent):
            for alert in event.alerts:
                if alert.firing and alert.fingerprint:
                    firing.setdefault(alert.fingerprint, []).append(at)
        elif n.kind.value == "rollback.requested" and isinstance(event, RollbackEvent):
            if event.alert.fingerprint:
                rollbacks.setdefault(event.alert.fingerprint, []).append(at)
    return firing, rollbacks


def _first_within(times: list[float], start: datetime, end: datetime | None) -> datetime | None:
    inside = [t for t in times if t >= start.timestamp() and (end is None or t <= end.timestamp())]
    return _dt(min(inside)) if inside else None


def _subject(labels: dict[str, str]) -> str:
    parts = [labels[k] for k in SUBJECT_LABELS if labels.get(k)]
    if labels.get("version"):
        parts.append(labels["version"])
    return " ".join(dict.fromkeys(parts)) or "\N{EM DASH}"


def build_incident_section(store: StateStore | None, period: ReportPeriod) -> IncidentSection:
    """Each alert episode that was firing during `period`, and MTTR/MTTD per severity."""
    if store is None:
        return IncidentSection(status=SectionStatus(False, "no state store: the daemon's alert history is "
                                                           "where incidents come from"))
    if not AlertRepository(store).cycle_counts():
        return IncidentSection(status=SectionStatus(False, "the state store has no evaluation cycles: the "
                                                           "daemon has not run, so no alert history exists"))
    firing, rollbacks = _notified(store)
    rows = []
    for e in alert_episodes(store, period.end):
        if e.fired_at >= period.end or (e.resolved_at is not None and e.resolved_at < period.start):
            continue
        resolved = e.resolved_at if e.resolved_at is not None and e.resolved_at <= period.end else None
        rows.append(IncidentRow(
            alertname=e.alertname, severity=e.labels.get("severity", "none"), subject=_subject(e.labels),
            labels=e.labels, started_at=e.started_at, condition_held_at=e.started_at,
            first_notified_at=_first_within(firing.get(e.fingerprint, []), e.fired_at, resolved),
            resolved_at=resolved,
            rollback_requested=_first_within(rollbacks.get(e.fingerprint, []), e.fired_at, resolved) is not None))
    rows.sort(key=lambda r: (r.started_at or r.first_notified_at or period.end, r.alertname, r.subject))
    return IncidentSection(tuple(rows), tuple(mttr_by_severity(rows)), _coverage_status(store, period))


def _coverage_status(store: StateStore, period: ReportPeriod) -> SectionStatus:
    """Say when the daemon's history covers only part of the period (incidents before it are unknown)."""
    cycles = AlertRepository(store).cycles()
    inside = [c.evaluated_at for c in cycles if period.start <= c.evaluated_at <= period.end]
    if not inside:
        return SectionStatus(True, "the daemon ran no evaluation cycle during this period")
    first = min(inside)
    if first - period.start > timedelta(hours=1):
        return SectionStatus(True, f"alert history starts {first:%a %d %b %H:%M} UTC (the daemon's first cycle "
                                   "in this period); earlier incidents are not known")
    return SectionStatus(True)


def mttr_by_severity(rows: list[IncidentRow]) -> list[SeverityMttr]:
    """Mean time to resolve (resolved incidents only) and to detect, per severity."""
    out = []
    for severity in sorted({r.severity for r in rows}):
        mine = [r for r in rows if r.severity == severity]
        resolve = [r.time_to_resolve for r in mine if r.time_to_resolve is not None]
        detect = [r.time_to_detect for r in mine if r.time_to_detect is not None]
        out.append(SeverityMttr(severity, len(mine), len(resolve), _mean(resolve), _mean(detect)))
    return out


def _mean(values: list[timedelta]) -> timedelta | None:
    return sum(values, timedelta(0)) / len(values) if values else None


def build_change_section(store: StateStore | None, period: ReportPeriod) -> ChangeSection:
    """Model versions seen, which were deployed in `period`, and which had a rollback requested."""
    if store is None:
        return ChangeSection(status=SectionStatus(False, "no state store"))
    repository = AlertRepository(store)
    cycles = repository.cycles()
    if not cycles:
        return ChangeSection(status=SectionStatus(False, "the daemon has not run: no model versions recorded"))
    monitoring_began = min(c.evaluated_at for c in cycles)
    requested: set[tuple[str, str]] = set()
    for queued in repository.notifications():
        n = queued.notification
        if (n.kind.value == "rollback.requested" and isinstance(n.payload, RollbackEvent)
                and period.start <= n.created_at < period.end):
            requested.add((n.payload.model, n.payload.bad_version))
    rows = []
    for (model, version), seen in sorted(repository.versions().items()):
        if seen.last_seen_at is not None and seen.last_seen_at < period.start:
            continue
        if seen.first_seen_at is not None and seen.first_seen_at >= period.end:
            continue
        deployed = (seen.first_seen_at is not None and period.start <= seen.first_seen_at < period.end
                    and seen.first_seen_at > monitoring_began)
        rows.append(VersionRow(model, version, seen.first_seen_at, seen.last_seen_at, deployed,
                               (model, version) in requested))
    return ChangeSection(tuple(rows), SectionStatus())
