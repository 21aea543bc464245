"""Alerting's tables in the state store: the only module that knows their SQL.

Everything one cycle changes (alert states, groups, versions, transitions and the
notifications they cause) is written by `save_cycle` inside one transaction, so
a notification is queued if and only if the state change that caused it is.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Sequence

from monitor.alerting.condition import Matcher
from monitor.alerting.lifecycle import Alert, AlertState, Transition
from monitor.alerting.notification_repository import NotificationRepository, QueuedNotification
from monitor.alerting.notifications import Notification
from monitor.alerting.policy import GroupState
from monitor.alerting.silences import Silence, SilenceError
from monitor.alerting.versions import ModelVersion, VersionKey
from monitor.secrets import redact
from monitor.store import StateStore
from monitor.timeutil import from_unix

# Resolved alerts are kept a day for `monitor alerts --all` and late resolved notifications.
RESOLVED_RETENTION_S = 86400.0


def _ts(at: datetime | None) -> float | None:
    return at.timestamp() if at is not None else None


def _dt(value: float | None) -> datetime | None:
    return from_unix(value) if value is not None else None


# Pruning (monitor.retention), a batch at a time, oldest first. What a report or an
# open alert still needs is never deleted:
# - a transition goes once the episode it belongs to ended (a later resolved or
#   inactive transition of the same alert) before the horizon, or once its alert is
#   gone from the alerts table and has no transition after the horizon (its rule was
#   removed); so an episode that started long ago but ended or is still open inside
#   the retention window keeps its start, which the report's incident needs;
# - a notification goes as `NotificationRepository.prune` says (after the transitions:
#   it checks which of its alerts still have one);
# - a cycle goes once no transition or notification references it.
_PRUNE_TRANSITIONS = """
    DELETE FROM alert_transitions WHERE rowid IN (
        SELECT t.rowid FROM alert_transitions t WHERE t.at < :horizon AND (
            EXISTS (SELECT 1 FROM alert_transitions e WHERE e.fingerprint = t.fingerprint
                    AND e.to_state IN ('resolved', 'inactive') AND e.at < :horizon AND e.rowid >= t.rowid)
            OR (NOT EXISTS (SELECT 1 FROM alerts a WHERE a.fingerprint = t.fingerprint)
                AND NOT EXISTS (SELECT 1 FROM alert_transitions e WHERE e.fingerprint = t.fingerprint
                                AND e.at >= :horizon)))
        ORDER BY t.at LIMIT :batch)
"""
_PRUNE_CYCLES = """
    DELETE FROM cycles WHERE id IN (
        SELECT c.id FROM cycles c WHERE c.evaluated_at < :horizon
            AND NOT EXISTS (SELECT 1 FROM alert_transitions t WHERE t.cycle_id = c.id)
            AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.cycle_id = c.id)
        ORDER BY c.evaluated_at LIMIT :batch)
"""


_ALERT_COLUMNS = ("fingerprint", "alertname", "rule", "labels", "annotations", "state", "last_evaluated_at",
                  "active_since", "fired_at", "resolved_at", "false_since", "value", "evidence", "silenced_by",
                  "inhibited", "rollback_requested_at", "no_data_since")
# An upsert both backends run (SQLite's INSERT OR REPLACE is not PostgreSQL's).
_UPSERT_ALERT = (f"INSERT INTO alerts ({', '.join(_ALERT_COLUMNS)}) VALUES ({', '.join('?' * len(_ALERT_COLUMNS))}) "
                 f"ON CONFLICT (fingerprint) DO UPDATE SET "
                 + ", ".join(f"{c} = excluded.{c}" for c in _ALERT_COLUMNS[1:]))


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class CycleRecord:
    id: int
    evaluated_at: datetime
    started_at: datetime
    finished_at: datetime
    status: str
    error: str | None
    signals: int
    transitions: int
    notifications: int


@dataclass(frozen=True)
class PrunedHistory:
    """Rows one pruning pass deleted, per table."""

    transitions: int = 0
    notifications: int = 0
    cycles: int = 0


@dataclass(frozen=True)
class LoggedTransition:
    """One state change from the transitions log (values are not logged)."""

    fingerprint: str
    alertname: str
    labels: Mapping[str, str]
    from_state: AlertState
    to_state: AlertState
    at: datetime


class AlertRepository:
    """Reads and writes alerting state through a `StateStore`."""

    def __init__(self, store: StateStore):
        self.store = store
        self.queue = NotificationRepository(store)

    # -- reads --------------------------------------------------------------------

    def alerts(self) -> dict[str, Alert]:
        return {row["fingerprint"]: _alert_from_row(row) for row in self.store.query("SELECT * FROM alerts")}

    def groups(self) -> dict[str, GroupState]:
        return {row["group_key"]: GroupState(
            row["group_key"], json.loads(row["group_labels"]), _dt(row["first_seen_at"]),
            _dt(row["last_notified_at"]), frozenset(json.loads(row["notified_firing"])),
            frozenset(json.loads(row["notified_resolved"])), row["route_id"], row["receiver"])
            for row in self.store.query("SELECT * FROM alert_groups")}

    def versions(self) -> dict[VersionKey, ModelVersion]:
        return {(r["model"], r["version"]): ModelVersion(r["model"], r["version"], _dt(r["first_seen_at"]),
                                                         _dt(r["last_seen_at"]), _dt(r["rollback_fired_at"]))
                for r in self.store.query("SELECT * FROM model_versions")}

    def silences(self) -> list[Silence]:
        return [_silence_from_row(r) for r in self.store.query("SELECT * FROM silences ORDER BY created_at, id")]

    def notifications(self, cycle_id: int | None = None, status: str | None = None) -> list[QueuedNotification]:
        return self.queue.notifications(cycle_id, status)

    def transitions(self, until: datetime | None = None) -> list[LoggedTransition]:
        """Every logged state change (up to `until`), oldest first, in the order they were saved."""
        sql, params = "SELECT * FROM alert_transitions", ()
        if until is not None:
            sql, params = sql + " WHERE at <= ?", (_ts(until),)
        return [LoggedTransition(r["fingerprint"], r["alertname"], json.loads(r["labels"]),
                                 AlertState(r["from_state"]), AlertState(r["to_state"]), _dt(r["at"]))
                for r in self.store.query(sql + " ORDER BY at, rowid", params)]

    def cycles(self) -> list[CycleRecord]:
        return [CycleRecord(r["id"], _dt(r["evaluated_at"]), _dt(r["started_at"]), _dt(r["finished_at"]),
                            r["status"], r["error"], r["signals"], r["transitions"], r["notifications"])
                for r in self.store.query("SELECT * FROM cycles ORDER BY id")]

    def cycle_counts(self) -> dict[str, int]:
        """Cycles by status (ok, failed)."""
        return {r["status"]: r["n"] for r in self.store.query(
            "SELECT status, COUNT(*) AS n FROM cycles GROUP BY status")}

    # -- writes ---------------------------------------------------------------------

    def record_failed_cycle(self, evaluated_at: datetime, started_at: datetime, finished_at: datetime,
                            error: str) -> int:
        """Count a cycle whose queries failed; nothing else changes."""
        with self.store.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO cycles (evaluated_at, started_at, finished_at, status, error) VALUES (?, ?, ?, ?, ?)",
                (_ts(evaluated_at), _ts(started_at), _ts(finished_at), "failed", redact(error)))
            return int(cursor.lastrowid)

    def prune(self, horizon: datetime, batch: int) -> PrunedHistory:
        """Delete up to `batch` rows per table of finished history older than `horizon`, oldest first
        (what an open alert or a queued delivery needs is kept: see _PRUNE_TRANSITIONS and below)."""
        params = {"horizon": _ts(horizon), "batch": int(batch)}
        with self.store.transaction() as conn:
            transitions = conn.execute(_PRUNE_TRANSITIONS, params).rowcount
            notifications = self.queue.prune(conn, horizon, batch)  # after the transitions: see above
            cycles = conn.execute(_PRUNE_CYCLES, params).rowcount
        return PrunedHistory(transitions, notifications, cycles)

    def save_cycle(self, *, evaluated_at: datetime, started_at: datetime, finished_at: datetime,
                   signal_count: int, previous: Mapping[str, Alert], alerts: Mapping[str, Alert],
                   transitions: Sequence[Transition], groups: Mapping[str, GroupState],
                   versions: Mapping[VersionKey, ModelVersion], notifications: Sequence[Notification]
                   ) -> tuple[int, list[QueuedNotification]]:
        """Write one successful cycle's outcome atomically; returns its id and the notifications queued."""
        with self.store.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO cycles (evaluated_at, started_at, finished_at, status, signals, transitions, "
                "notifications) VALUES (?, ?, ?, 'ok', ?, ?, 0)",
                (_ts(evaluated_at), _ts(started_at), _ts(finished_at), signal_count, len(transitions)))
            cycle_id = int(cursor.lastrowid)
            self._write_alerts(conn, previous, alerts, evaluated_at)
            conn.execute("DELETE FROM alert_groups")
            conn.executemany(
                "INSERT INTO alert_groups (group_key, group_labels, first_seen_at, last_notified_at, "
                "notified_firing, notified_resolved, route_id, receiver) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [
                    (g.group_key, _json(dict(g.group_labels)), _ts(g.first_seen_at), _ts(g.last_notified_at),
                     _json(sorted(g.notified_firing)), _json(sorted(g.notified_resolved)), g.route_id, g.receiver)
                    for g in groups.values()])
            conn.executemany(
                "INSERT INTO model_versions VALUES (?, ?, ?, ?, ?) ON CONFLICT (model, version) DO UPDATE SET "
                "first_seen_at = excluded.first_seen_at, last_seen_at = excluded.last_seen_at, "
                "rollback_fired_at = excluded.rollback_fired_at",
                [(v.model, v.version, _ts(v.first_seen_at), _ts(v.last_seen_at), _ts(v.rollback_fired_at))
                 for v in versions.values()])
            conn.executemany("INSERT INTO alert_transitions (cycle_id, fingerprint, alertname, labels, from_state, "
                             "to_state, at) VALUES (?, ?, ?, ?, ?, ?, ?)", [
                (cycle_id, t.fingerprint, t.alertname, _json(dict(t.labels)), t.from_state.value,
                 t.to_state.value, _ts(t.at)) for t in transitions])
            queued = [q for q in (self.queue.insert(conn, n, cycle_id) for n in notifications) if q is not None]
            conn.execute("UPDATE cycles SET notifications = ? WHERE id = ?", (len(queued), cycle_id))
        return cycle_id, queued

    def _write_alerts(self, conn: sqlite3.Connection, previous: Mapping[str, Alert],
                      alerts: Mapping[str, Alert], at: datetime) -> None:
        gone = [fp for fp in previous if fp not in alerts]
        horizon = at.timestamp() - RESOLVED_RETENTION_S
        gone += [fp for fp, a in alerts.items() if a.state is AlertState.RESOLVED
                 and a.resolved_at is not None and a.resolved_at.timestamp() < horizon]
        conn.executemany("DELETE FROM alerts WHERE fingerprint = ?", [(fp,) for fp in gone])
        conn.executemany(_UPSERT_ALERT,
            [(a.fingerprint, a.alertname, a.rule, _json(dict(a.labels)), _json(dict(a.annotations)),
              a.state.value, _ts(a.last_evaluated_at), _ts(a.active_since), _ts(a.fired_at), _ts(a.resolved_at),
              _ts(a.false_since), a.value, _json(dict(a.evidence)), _json(list(a.silenced_by)),
              int(a.inhibited), _ts(a.rollback_requested_at), _ts(a.no_data_since))
             for fp, a in alerts.items() if fp not in gone])

    # -- silences ---------------------------------------------------------------------

    def add_silence(self, silence: Silence) -> None:
        with self.store.transaction() as conn:
            conn.execute("INSERT INTO silences VALUES (?, ?, ?, ?, ?, ?, ?)", (
                silence.id, _json([[m.label, m.op, m.value] for m in silence.matchers]), _ts(silence.starts_at),
                _ts(silence.ends_at), silence.created_by, silence.comment, _ts(silence.created_at)))

    def expire_silence(self, silence_id: str, at: datetime) -> Silence:
        """End a silence at `at` (kept for the record); raises SilenceError for an unknown id."""
        with self.store.transaction() as conn:
            rows = conn.execute("SELECT * FROM silences WHERE id = ? OR id LIKE ?",
                                (silence_id, f"{silence_id}%")).fetchall()
            if len(rows) != 1:
                raise SilenceError(f"no silence with id {silence_id!r}" if not rows
                                   else f"id prefix {silence_id!r} matches {len(rows)} silences")
            silence = _silence_from_row(rows[0])
            conn.execute("UPDATE silences SET ends_at = ? WHERE id = ? AND ends_at > ?", (_ts(at), silence.id, _ts(at)))
            rows = conn.execute("SELECT * FROM silences WHERE id = ?", (silence.id,)).fetchall()
        return _silence_from_row(rows[0])


def _alert_from_row(row: sqlite3.Row) -> Alert:
    return Alert(
        fingerprint=row["fingerprint"], alertname=row["alertname"], rule=row["rule"],
        labels=json.loads(row["labels"]), annotations=json.loads(row["annotations"]),
        state=AlertState(row["state"]), last_evaluated_at=_dt(row["last_evaluated_at"]),
        active_since=_dt(row["active_since"]), fired_at=_dt(row["fired_at"]), resolved_at=_dt(row["resolved_at"]),
        false_since=_dt(row["false_since"]), value=row["value"], evidence=json.loads(row["evidence"]),
        silenced_by=tuple(json.loads(row["silenced_by"])), inhibited=bool(row["inhibited"]),
        rollback_requested_at=_dt(row["rollback_requested_at"]), no_data_since=_dt(row["no_data_since"]))


def _silence_from_row(row: sqlite3.Row) -> Silence:
    return Silence(row["id"], tuple(Matcher(*m) for m in json.loads(row["matchers"])), _dt(row["starts_at"]),
                   _dt(row["ends_at"]), row["created_by"], row["comment"], _dt(row["created_at"]))
