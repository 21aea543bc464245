"""The notifications table behind NotificationRepository: queue, route, settle, prune; old rows still decode."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone

from monitor.alerting.events import AlertEvent, AlertGroupEvent, RollbackEvent, event_from_json, event_to_json
from monitor.alerting.notification_repository import (DELIVERED, FAILED, NO_DESTINATION, ROUTED,
                                                      NotificationRepository)
from monitor.alerting.notifications import PENDING, Notification, NotificationKind
from monitor.store import MIGRATIONS, StateStore

T0 = datetime(2026, 11, 22, 21, 5, tzinfo=timezone.utc)
ALERT = AlertEvent(status="firing", state="firing",
                   labels={"alertname": "SLOBudgetBurnPage", "service": "ranker", "severity": "page"},
                   annotations={"summary": "ranker burns"}, starts_at="2026-11-22T21:00:00Z", ends_at=None,
                   fingerprint="f1", active_since="2026-11-22T20:58:00Z", value=15.2,
                   evidence={"burn_rate_1h": 15.2, "burn_rate_5m": None})
GROUP = AlertGroupEvent(kind="firing", status="firing", group_key="g1", group_labels={"service": "ranker"},
                        alerts=(ALERT,), created_at="2026-11-22T21:05:00Z", receiver="ranking",
                        route_id='{}/{severity="page"}/0')
ROLLBACK = RollbackEvent(kind="rollback.requested", model="ranker", bad_version="v2", reason="drift",
                         alert=ALERT, created_at="2026-11-22T21:05:00Z", last_known_good_version="v1")


def notification(key: str, event, kind: NotificationKind = NotificationKind.FIRING) -> Notification:
    return Notification(key, kind, T0, event)


def test_a_queued_event_reads_back_as_the_same_typed_event(open_state):
    with open_state() as store:
        repository = NotificationRepository(store)
        with store.transaction() as conn:
            group = repository.insert(conn, notification("firing:g1", GROUP), None)
            rollback = repository.insert(conn, notification("rb:f1", ROLLBACK, NotificationKind.ROLLBACK_REQUESTED),
                                         None)
        assert group is not None and rollback is not None and group.status == PENDING
        read = repository.notifications()
        assert [q.notification.payload for q in read] == [GROUP, ROLLBACK]
        assert [q.notification.created_at for q in read] == [T0, T0]
        # Stored as the event's JSON, exactly.
        assert [r[0] for r in store.query("SELECT payload FROM notifications ORDER BY id")] == \
            [event_to_json(GROUP), event_to_json(ROLLBACK)]


def test_the_same_idempotency_key_is_queued_once(open_state):
    with open_state() as store:
        repository = NotificationRepository(store)
        with store.transaction() as conn:
            assert repository.insert(conn, notification("firing:g1", GROUP), None) is not None
            assert repository.insert(conn, notification("firing:g1", GROUP), None) is None
        assert len(repository.notifications()) == 1


def test_pending_ones_are_routed_then_settled_from_their_deliveries(open_state):
    with open_state() as store:
        repository = NotificationRepository(store)
        with store.transaction() as conn:
            ids = [repository.insert(conn, notification(f"firing:g{i}", GROUP), None).id for i in range(4)]
        with store.transaction() as conn:
            assert [q.id for q in repository.pending(conn)] == ids
            repository.mark_routed(conn, ids[0], deliveries=2)
            repository.mark_routed(conn, ids[1], deliveries=0)
            repository.mark_routed(conn, ids[2], deliveries=1)
            repository.mark_routed(conn, ids[3], deliveries=1)
            assert [q.id for q in repository.pending(conn)] == []
            repository.settle(conn, ids[2], any_failed=False)
            repository.settle(conn, ids[3], any_failed=True)
        assert [q.status for q in repository.notifications()] == [ROUTED, NO_DESTINATION, DELIVERED, FAILED]
        assert [q.id for q in repository.notifications(status=FAILED)] == [ids[3]]
        with store.transaction() as conn:
            repository.mark_rerouted(conn, ids[3])
        assert repository.notifications(status=ROUTED)[-1].id == ids[3]


def test_rows_of_the_previous_release_decode_to_typed_events(open_state):
    # The dicts earlier releases stored (Alertmanager's field names; rollback rows without "type").
    old_group = {"kind": "firing", "status": "firing", "groupKey": "g1", "groupLabels": {"service": "ranker"},
                 "alerts": [{"status": "firing", "state": "firing", "labels": dict(ALERT.labels),
                             "annotations": {"summary": "ranker burns"}, "startsAt": "2026-11-22T21:00:00Z",
                             "activeSince": "2026-11-22T20:58:00Z", "endsAt": None, "fingerprint": "f1",
                             "value": 15.2, "evidence": {"burn_rate_1h": 15.2, "burn_rate_5m": None}}],
                 "firing": 1, "resolved": 0}
    old_rollback = {"model": "ranker", "bad_version": "v2", "last_known_good_version": "v1", "reason": "drift",
                    "alert": old_group["alerts"][0], "evidence": {"burn_rate_1h": 15.2}}
    with open_state() as store:
        with store.transaction() as conn:
            conn.executemany("INSERT INTO notifications (idempotency_key, kind, created_at, payload, status) "
                             "VALUES (?, ?, ?, ?, 'pending')",
                             [("firing:g1", "firing", T0.timestamp(), json.dumps(old_group)),
                              ("rb:f1", "rollback.requested", T0.timestamp(), json.dumps(old_rollback))])
        group, rollback = [q.notification.payload for q in NotificationRepository(store).notifications()]
    # Before routes existed every group was the root route's, for the `default` receiver.
    assert group == AlertGroupEvent(**{**GROUP.__dict__, "receiver": "default", "route_id": ""})
    assert rollback == ROLLBACK
    assert event_from_json("resolved", json.dumps({**old_group, "kind": "firing"})).kind == "resolved"


def test_a_version_6_file_keeps_its_slack_threads_and_groups_after_migration_7(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY)")
    for version, sql in MIGRATIONS:
        if version < 7:
            conn.executescript(sql)
            conn.execute("INSERT INTO schema_migrations VALUES (?)", (version,))
    conn.execute("INSERT INTO slack_threads VALUES ('g1', 'C1', '1700000000.000100', 1, 0)")
    conn.execute("INSERT INTO alert_groups VALUES ('g1', '{\"service\":\"ranker\"}', 0, 1, '[\"f1\"]', '[]')")
    conn.commit()
    conn.close()
    with StateStore(path) as store:
        from monitor.alerting.repository import AlertRepository
        from monitor.outputs.slack import SlackThreads
        assert SlackThreads(store).get("g1").ts == "1700000000.000100"        # destination `slack`
        assert SlackThreads(store, "ranking/slack").get("g1") is None
        (group,) = AlertRepository(store).groups().values()
        assert (group.route_id, group.receiver, group.notified_firing) == ("{}", "default", frozenset({"f1"}))
        assert group.first_seen_at == datetime.fromtimestamp(0, timezone.utc)
