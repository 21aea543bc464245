"""Bounded state: history older than `state.retention` is pruned in batches, and never what the weekly
report, an open alert or a queued delivery still needs (real SQLite files and PostgreSQL databases, the daemon's
alerting path)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor.alerting.evaluate import evaluate_rules
from monitor.alerting.events import AlertGroupEvent
from monitor.alerting.lifecycle import AlertState, advance
from monitor.alerting.notifications import Notification, NotificationKind
from monitor.alerting.policy import plan_group_notifications
from monitor.alerting.repository import AlertRepository
from monitor.alerting.rule_spec import load_rule_file
from monitor.config import AlertingConfig
from monitor.outputs.outbox import DeliveryStatus, Outbox, OutboxItem
from monitor.outputs.results import SendResult
from monitor.report.incidents import alert_episodes, build_incident_section
from monitor.report.period import week_containing
from monitor.retention import horizon, prune_history
from monitor.signals import Signal
from monitor.store import MIGRATIONS, StateStore
from monitor.store_postgres import PostgresStore

T0 = datetime(2026, 9, 7, tzinfo=timezone.utc)  # a Monday
RETENTION = timedelta(days=35)
DAYS = 50
RULES = """version: monitor/v1
groups:
  - name: slo
    rules:
      - alert: ErrorBudgetBurn
        condition: slo_burn_rate > 1
        for: 30m
        labels: {severity: page}
"""


def burning(service: str, hour: int) -> bool:
    """The scripted history: one alert still firing since day 2, one that fired on day 5 and resolved on
    day 20 (its start is older than the horizon at the end), one flapping for 3 hours every 2 days."""
    day = hour / 24
    if service == "long":
        return day >= 2
    if service == "straddle":
        return 5 <= day < 20
    return hour % 48 < 3


class Driver:
    """One state file stepped hourly through the scripted history by the daemon's alerting path."""

    def __init__(self, store: StateStore, rules_path: Path, prune: bool):
        self.store = store
        self.repository = AlertRepository(self.store)
        self.rules = load_rule_file(rules_path)
        self.alerting = AlertingConfig(group_by=["alertname", "service"])
        self.prune = prune

    def cycle(self, hour: int) -> None:
        at = T0 + timedelta(hours=hour)
        signals = [Signal("slo_burn_rate", {"service": s}, 2.0 if burning(s, hour) else 0.5)
                   for s in ("long", "straddle", "flap")]
        previous = self.repository.alerts()
        outcomes = evaluate_rules(self.rules, signals, {})
        alerts, transitions = advance(previous, self.rules, outcomes.instances, at, outcomes.absent_means)
        notifications, groups = plan_group_notifications(alerts, self.repository.groups(), self.alerting, at)
        self.repository.save_cycle(evaluated_at=at, started_at=at, finished_at=at, signal_count=len(signals),
                                   previous=previous, alerts=alerts, transitions=transitions, groups=groups,
                                   versions={}, notifications=notifications)
        # Routed with no destination, as a config without outputs does.
        self.store.query("UPDATE notifications SET status = 'no_destination' WHERE status = 'pending'")
        if self.prune:
            prune_history(self.store, evaluated_at=at, wall_now=at, retention=RETENTION)

    def count(self, table: str) -> int:
        return self.store.query(f"SELECT COUNT(*) FROM {table}")[0][0]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def twins(request, tmp_path_factory):
    """The same 50 days written twice: pruned after every cycle on each state backend, and never pruned
    (the reference, an SQLite file)."""
    tmp = tmp_path_factory.mktemp("twins")
    (tmp / "rules.yaml").write_text(RULES)
    if request.param == "sqlite":
        stores = StateStore(tmp / "pruned.db"), StateStore(tmp / "kept.db")
    else:
        stores = PostgresStore(request.getfixturevalue("postgres_server").new_database()), StateStore(tmp / "kept.db")
    pruned, kept = Driver(stores[0], tmp / "rules.yaml", True), Driver(stores[1], tmp / "rules.yaml", False)
    for hour in range(DAYS * 24):
        pruned.cycle(hour)
        kept.cycle(hour)
    yield pruned, kept
    pruned.store.close()
    kept.store.close()


END = T0 + timedelta(hours=DAYS * 24 - 1)


def test_history_older_than_the_retention_is_pruned(twins):
    pruned, kept = twins
    cutoff = horizon(END, RETENTION).timestamp()
    assert kept.store.query("SELECT COUNT(*) FROM cycles WHERE evaluated_at < ?", (cutoff,))[0][0] > 300
    # Cycles before the horizon survive only where an episode still needs them.
    old = pruned.store.query("SELECT id FROM cycles WHERE evaluated_at < ?", (cutoff,))
    referenced = pruned.store.query(
        "SELECT COUNT(*) FROM cycles c WHERE c.evaluated_at < ? AND (c.id IN (SELECT cycle_id FROM "
        "alert_transitions) OR c.id IN (SELECT cycle_id FROM notifications))", (cutoff,))[0][0]
    assert len(old) == referenced
    # (those left are the firing alert's repeat notifications' cycles, six a day)
    assert kept.count("cycles") - pruned.count("cycles") > 200
    assert pruned.count("alert_transitions") < kept.count("alert_transitions")
    assert pruned.count("notifications") < kept.count("notifications")
    # Every cycle inside the window is there.
    assert pruned.store.query("SELECT COUNT(*) FROM cycles WHERE evaluated_at >= ?", (cutoff,))[0][0] == \
        kept.store.query("SELECT COUNT(*) FROM cycles WHERE evaluated_at >= ?", (cutoff,))[0][0]


def test_a_firing_alert_keeps_its_whole_episode_and_notifications(twins):
    pruned, kept = twins
    long_alert = next(a for a in pruned.repository.alerts().values() if a.labels["service"] == "long")
    assert long_alert.state is AlertState.FIRING and long_alert.fired_at < horizon(END, RETENTION)

    def history(driver):
        transitions = [(t.to_state, t.at) for t in driver.repository.transitions()
                       if t.fingerprint == long_alert.fingerprint]
        notified = [q.notification.created_at for q in driver.repository.notifications()
                    if any(a.fingerprint == long_alert.fingerprint for a in q.notification.payload.alerts)]
        return transitions, notified

    assert history(pruned) == history(kept)
    assert history(pruned)[1][0] < T0 + timedelta(days=3)  # the first page, from day 2, is still there


def test_an_episode_that_ended_inside_the_window_keeps_its_start(twins):
    pruned, _ = twins
    episodes = [e for e in alert_episodes(pruned.store, END) if e.labels["service"] == "straddle"]
    assert [(e.started_at, e.resolved_at) for e in episodes] == [
        (T0 + timedelta(days=5), T0 + timedelta(days=20))]


@pytest.mark.parametrize("weeks_back", range(5), ids=[
    "the last complete week's incidents are unchanged by pruning",
    "one week back is unchanged", "two weeks back are unchanged", "three weeks back are unchanged",
    "four weeks back (the trend's oldest week) is unchanged"])
def test_the_weekly_report_reads_the_same_incidents_after_pruning(twins, weeks_back):
    pruned, kept = twins
    period = week_containing(END).previous
    for _ in range(weeks_back):
        period = period.previous
    assert period.start >= horizon(END, RETENTION) - timedelta(days=7)
    expected = build_incident_section(kept.store, period)
    assert expected.rows, "the scripted history has incidents in every week"
    assert build_incident_section(pruned.store, period) == expected


def old_cycles(store: StateStore, n: int, at: datetime) -> None:
    repository = AlertRepository(store)
    for i in range(n):
        repository.record_failed_cycle(at + timedelta(minutes=i), at, at, "query failed")


def test_each_pass_deletes_at_most_the_batch_size(open_state):
    with open_state() as store:
        old_cycles(store, 50, T0)
        now = T0 + timedelta(days=40)
        deleted = [prune_history(store, evaluated_at=now, wall_now=now, retention=RETENTION, batch=20).rows
                   for _ in range(4)]
        assert deleted == [20, 20, 10, 0]


def test_a_queued_delivery_and_its_notification_outlive_the_retention(open_state):
    with open_state() as store:
        repository = AlertRepository(store)
        _, queued = repository.save_cycle(
            evaluated_at=T0, started_at=T0, finished_at=T0, signal_count=0, previous={}, alerts={},
            transitions=[], groups={}, versions={},
            notifications=[Notification(f"k{i}", NotificationKind.RESOLVED, T0, AlertGroupEvent(
                kind="resolved", status="resolved", group_key=f"g{i}", group_labels={}, alerts=(),
                created_at="2026-09-07T00:00:00Z")) for i in range(2)])
        outbox = Outbox(store)
        outbox.enqueue([OutboxItem(q.notification.idempotency_key, "slack", "resolved", "{}", None, q.id)
                        for q in queued], T0.timestamp())
        store.query("UPDATE notifications SET status = 'routed'")
        done, waiting = outbox.deliveries()
        outbox.record(outbox.begin_attempt(done, T0.timestamp()), SendResult.delivered(), T0.timestamp())
        now = T0 + timedelta(days=60)
        prune_history(store, evaluated_at=now, wall_now=now, retention=RETENTION)
        assert [(d.id, d.status) for d in outbox.deliveries()] == [(waiting.id, DeliveryStatus.PENDING)]
        assert [q.id for q in repository.notifications()] == [waiting.notification_id]
        assert len(repository.cycles()) == 1  # its notification still references the cycle


def test_a_file_from_before_retention_is_upgraded_in_place_and_keeps_its_vacuum_mode(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY)")
    for version, sql in MIGRATIONS[:3]:
        conn.executescript(sql)
        conn.execute("INSERT INTO schema_migrations VALUES (?)", (version,))
    conn.commit()
    conn.close()
    with StateStore(path) as store:
        old_cycles(store, 30, T0)
        assert {r[0] for r in store.query("SELECT version FROM schema_migrations")} == {v for v, _ in MIGRATIONS}
        assert store.query("PRAGMA auto_vacuum")[0][0] == 0  # only a full VACUUM could change it: never done
        now = T0 + timedelta(days=40)
        assert prune_history(store, evaluated_at=now, wall_now=now, retention=RETENTION).rows == 30
    with StateStore(tmp_path / "new.db") as store:
        assert store.query("PRAGMA auto_vacuum")[0][0] == 2  # incremental


def test_a_new_file_hands_back_its_space_after_a_large_prune(tmp_path):
    with StateStore(tmp_path / "state.db") as store:
        repository = AlertRepository(store)
        for i in range(3000):
            repository.record_failed_cycle(T0 + timedelta(minutes=i), T0, T0, "query failed: " + "x" * 500)
        store.query("PRAGMA wal_checkpoint(TRUNCATE)")
        full = (tmp_path / "state.db").stat().st_size
        now = T0 + timedelta(days=40)
        while prune_history(store, evaluated_at=now, wall_now=now, retention=RETENTION).rows:
            pass
        for _ in range(5):
            prune_history(store, evaluated_at=now, wall_now=now, retention=RETENTION)
        store.query("PRAGMA wal_checkpoint(TRUNCATE)")
        assert (tmp_path / "state.db").stat().st_size < full / 2
