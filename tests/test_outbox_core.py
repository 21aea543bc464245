"""The outbox's contract: written before any attempt, delivered only after a 2xx, in order, retried, expired."""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import timedelta

import pytest

from monitor.cli import main
from monitor.outputs.backoff import STANDARD_WEBHOOKS_SCHEDULE, RetrySchedule, parse_retry_after_s
from monitor.outputs.outbox import DeliveryStatus, Outbox, OutboxItem
from monitor.outputs.results import SendOutcome, SendResult, classify_http_status
from monitor.outputs.routing import Router, route_pending_notifications
from monitor.outputs.worker import OutboxWorker
from monitor.store import StateStore
from standins.clock import ManualClock
from standins.configs import write_config

FAST = RetrySchedule(tuple(timedelta(seconds=s) for s in (0, 0.2, 0.5)), jitter_share=0.1)


class ScriptedDestination:
    """A destination answering from a script of outcomes (then DELIVERED), recording what it was sent."""

    def __init__(self, name: str, script: list[SendResult] | None = None):
        self.name = name
        self.script = list(script or [])
        self.sent: list[tuple[str, int]] = []  # (notification key, attempt number)

    def send(self, delivery):
        self.sent.append((delivery.notification_key, delivery.attempts))
        return self.script.pop(0) if self.script else SendResult.delivered()


def failed(code: int = 500, retry_after: float | None = None) -> SendResult:
    """A webhook destination's answer (Standard Webhooks: a 410 unsubscribes)."""
    return SendResult(classify_http_status(code, retry_after, gone_unsubscribes=True), code, retry_after,
                      f"HTTP {code}")


def items(*keys: str, destination: str = "hook") -> list[OutboxItem]:
    return [OutboxItem(k, destination, "rollback.requested", json.dumps({"key": k})) for k in keys]


@pytest.fixture
def store(state_store):
    """The outbox contract holds on both state backends."""
    return state_store


def test_the_default_schedule_is_the_standard_webhooks_one():
    assert [d.total_seconds() for d in STANDARD_WEBHOOKS_SCHEDULE] == [
        0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
    assert RetrySchedule().max_attempts == 10


@pytest.mark.parametrize("failures, low, high", [(1, 5, 5.5), (2, 300, 330), (9, 86400, 95040)],
                         ids=["the first retry waits 5s plus up to 10%", "the second waits 5m plus up to 10%",
                              "the last waits 24h plus up to 10%"])
def test_retry_delays_follow_the_schedule_with_bounded_jitter(failures, low, high):
    rng = random.Random(0)
    delays = [RetrySchedule().delay_after_failures_s(failures, rng) for _ in range(200)]
    assert all(low <= d <= high for d in delays)
    assert len(set(delays)) > 100, "jittered, so receivers recovering are not hit at one instant"


def test_no_retry_is_left_after_the_last_scheduled_attempt():
    assert RetrySchedule().delay_after_failures_s(10, random.Random(0)) is None


@pytest.mark.parametrize("header, seconds", [("2", 2.0), (" 120 ", 120.0), ("0", 0.0), ("-1", None), ("soon", None),
                                              (None, None), ("999999", 3600.0)],
                         ids=["seconds", "spaces around", "zero", "negative is ignored", "garbage is ignored",
                              "absent", "absurd waits are capped at an hour"])
def test_retry_after_is_read_as_seconds(header, seconds):
    assert parse_retry_after_s(header) == seconds


@pytest.mark.parametrize("status, retry_after, outcome", [
    (200, None, SendOutcome.DELIVERED), (204, None, SendOutcome.DELIVERED), (410, None, SendOutcome.GONE),
    (429, 2.0, SendOutcome.RATE_LIMITED), (429, None, SendOutcome.FAILED), (503, 5.0, SendOutcome.RATE_LIMITED),
    (503, None, SendOutcome.FAILED), (302, None, SendOutcome.FAILED), (400, None, SendOutcome.FAILED),
], ids=["200 is delivered", "204 is delivered", "410 disables", "429 with Retry-After waits for it",
        "429 without Retry-After uses the schedule", "503 with Retry-After waits for it", "503 uses the schedule",
        "a redirect is a failure, not followed", "400 uses the schedule"])
def test_http_answers_are_classified(status, retry_after, outcome):
    assert classify_http_status(status, retry_after, gone_unsubscribes=True) is outcome


def test_a_410_disables_only_where_the_protocol_says_it_unsubscribes():
    """Slack, PagerDuty, Teams and Alertmanager give 410 no meaning: one more failure, retried."""
    assert classify_http_status(410, None, gone_unsubscribes=True) is SendOutcome.GONE
    assert classify_http_status(410, None) is SendOutcome.FAILED


def test_a_delivery_is_persisted_before_any_attempt_and_counted_before_the_send(store):
    clock = ManualClock()
    outbox = Outbox(store, FAST)
    outbox.enqueue(items("a"), clock.now())
    (queued,) = outbox.deliveries()
    assert (queued.status, queued.attempts) == (DeliveryStatus.PENDING, 0)

    class Inspecting:
        name = "hook"

        def send(self, delivery):
            # What a crash right now would leave behind: the attempt counted, still pending.
            on_disk = Outbox(store).get(delivery.id)
            assert (on_disk.status, on_disk.attempts) == (DeliveryStatus.PENDING, 1)
            return SendResult.delivered()

    OutboxWorker(outbox, {"hook": Inspecting()}, clock).run_until_idle()
    assert outbox.get(queued.id).status is DeliveryStatus.DELIVERED


def test_a_destination_sends_in_order_and_waits_behind_a_failing_head(store):
    clock = ManualClock()
    outbox = Outbox(store, FAST, rng=random.Random(1))
    outbox.enqueue(items("first", "second", "third"), clock.now())
    hook = ScriptedDestination("hook", [failed(503), failed(500)])
    other = ScriptedDestination("other")
    outbox.enqueue(items("elsewhere", destination="other"), clock.now())
    worker = OutboxWorker(outbox, {"hook": hook, "other": other}, clock)
    worker.drain_due()
    assert hook.sent == [("first", 1)], "nothing overtakes the failing first delivery"
    assert other.sent == [("elsewhere", 1)], "another destination is not held up"
    worker.run_until_idle()
    assert hook.sent == [("first", 1), ("first", 2), ("first", 3), ("second", 1), ("third", 1)]
    assert [d.status for d in outbox.deliveries()] == [DeliveryStatus.DELIVERED] * 4
    counts = outbox.counts()
    assert counts.results == {("hook", "failed"): 2, ("hook", "delivered"): 3, ("other", "delivered"): 1}
    assert counts.pending == {} and counts.expired == {}


def test_an_expired_head_lets_the_next_one_go(store):
    clock = ManualClock()
    outbox = Outbox(store, FAST)
    outbox.enqueue(items("doomed", "next"), clock.now())
    hook = ScriptedDestination("hook", [failed(500)] * 3)
    OutboxWorker(outbox, {"hook": hook}, clock).run_until_idle()
    assert [(d.notification_key, d.status) for d in outbox.deliveries()] == [
        ("doomed", DeliveryStatus.EXPIRED), ("next", DeliveryStatus.DELIVERED)]
    assert outbox.counts().expired == {"hook": 1}


def test_rate_limits_do_not_use_up_the_schedule_but_expire_after_expire_after(store):
    clock = ManualClock()
    outbox = Outbox(store, FAST, expire_after_s=30)
    outbox.enqueue(items("a"), clock.now())
    hook = ScriptedDestination("hook", [failed(429, retry_after=10)] * 5)
    OutboxWorker(outbox, {"hook": hook}, clock).run_until_idle()
    (delivery,) = outbox.deliveries()
    assert len(hook.sent) == 4, "attempts at 0s, 10s, 20s and 30s; the next (40s) would pass expire_after"
    assert (delivery.status, delivery.failures) == (DeliveryStatus.EXPIRED, 0)
    assert "gave up" in delivery.last_error


def test_a_refused_delivery_expires_at_once_with_its_reason(store):
    clock = ManualClock()
    outbox = Outbox(store, FAST)
    outbox.enqueue(items("a"), clock.now())
    hook = ScriptedDestination("hook", [SendResult(SendOutcome.REFUSED, error="resolves to 10.0.0.1, a private address")])
    OutboxWorker(outbox, {"hook": hook}, clock).run_until_idle()
    (delivery,) = outbox.deliveries(failed_only=True)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.EXPIRED, 1)
    assert "private address" in delivery.last_error


def test_an_exception_in_a_destination_is_a_failed_attempt_not_a_crash(store):
    class Broken:
        name = "hook"

        def send(self, delivery):
            raise RuntimeError("bug")

    clock = ManualClock()
    outbox = Outbox(store, FAST)
    outbox.enqueue(items("a"), clock.now())
    OutboxWorker(outbox, {"hook": Broken()}, clock).run_until_idle()
    (delivery,) = outbox.deliveries()
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        DeliveryStatus.EXPIRED, 3, "gave up after 3 attempt(s): internal error: RuntimeError")


def test_pending_notifications_are_routed_once_and_their_status_follows_the_deliveries(tmp_path, state_store):
    config = write_config(tmp_path, """
        webhooks:
          - name: a
            url: https://a.example/hook
            secret_env: A
          - name: b
            url: https://b.example/hook
            secret_env: B
            match: {model: recommender}
    """)
    store = state_store
    payload = {"model": "ranker", "bad_version": "v2", "last_known_good_version": "v1", "reason": "drift",
               "alert": {"labels": {"alertname": "ModelPredictionDrift", "model": "ranker"}}, "evidence": {}}
    with store.transaction() as conn:
        conn.execute("INSERT INTO notifications (idempotency_key, kind, created_at, payload) VALUES (?, ?, ?, ?)",
                     ("rollback.requested:x", "rollback.requested", 1795800000.0, json.dumps(payload)))
        conn.execute("INSERT INTO notifications (idempotency_key, kind, created_at, payload) VALUES (?, ?, ?, ?)",
                     ("resolved:g", "resolved", 1795800000.0, json.dumps({"alerts": []})))
    outbox = Outbox(store, FAST)
    router = Router(config.outputs)
    assert route_pending_notifications(outbox, router, 1795800001.0) == 1
    assert route_pending_notifications(outbox, router, 1795800002.0) == 0
    statuses = [r[0] for r in store.query("SELECT status FROM notifications ORDER BY id")]
    assert statuses == ["routed", "no_destination"]
    (delivery,) = outbox.deliveries()
    assert delivery.destination == "webhook:a" and delivery.notification_id == 1
    assert json.loads(delivery.body)["timestamp"] == "2026-11-27T17:20:00Z"  # created_at, as ISO 8601 UTC
    outbox.record(outbox.begin_attempt(delivery, 1795800003.0), SendResult.delivered(), 1795800003.0)
    assert store.query("SELECT status FROM notifications WHERE id = 1")[0][0] == "delivered"


def test_deliveries_prints_a_table_and_failed_filters(tmp_path, capsys):
    config = write_config(tmp_path, "webhooks: []")
    with StateStore(tmp_path / "state.db") as store:
        outbox = Outbox(store, FAST)
        clock = ManualClock()
        outbox.enqueue(items("ok", "bad"), clock.now())
        hook = ScriptedDestination("hook", [SendResult.delivered(), SendResult(SendOutcome.REFUSED, error="nope")])
        OutboxWorker(outbox, {"hook": hook}, clock).run_until_idle()
    assert main(["deliveries", "--config", config.source_path]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "CREATED", "DESTINATION", "EVENT", "STATUS", "ATTEMPTS", "LAST", "ERROR"]
    assert len(lines) == 3 and "delivered" in lines[1] and "expired" in lines[2] and lines[2].endswith("nope")
    assert main(["deliveries", "--failed", "--config", config.source_path]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "expired" in lines[1]


class BlockingDestination:
    """A destination whose every attempt hangs until the test releases it (a receiver that never answers)."""

    def __init__(self, name: str):
        self.name = name
        self.started = threading.Event()
        self.release = threading.Event()

    def send(self, delivery):
        self.started.set()
        self.release.wait(30)
        return SendResult(SendOutcome.FAILED, error="timed out")


def test_in_the_daemon_loop_a_hung_destination_delays_only_itself(store):
    """Each destination has its own lane: a queued Slack page goes out while a webhook is stuck mid-request."""
    outbox = Outbox(store, RetrySchedule((timedelta(0), timedelta(hours=1))))
    stuck, slack = BlockingDestination("hook"), ScriptedDestination("slack")
    outbox.enqueue(items("rollback", destination="hook"), time.time())
    worker = OutboxWorker(outbox, {"hook": stuck, "slack": slack})
    stop = threading.Event()
    page_queued: list[int] = []

    def route() -> int:
        # What routing does once the cycle has queued a page: new work, after the hook is stuck.
        if stuck.started.is_set() and not page_queued:
            page_queued.append(outbox.enqueue(items("page", destination="slack"), time.time()))
            return page_queued[0]
        return 0

    loop = threading.Thread(target=worker.run_forever, args=(stop, 0.05), kwargs={"before_pass": route})
    loop.start()
    try:
        assert stuck.started.wait(10), "the hook's delivery was never attempted"
        deadline = time.monotonic() + 10
        while not slack.sent and time.monotonic() < deadline:
            time.sleep(0.02)
        assert slack.sent == [("page", 1)], "the page waited behind the stuck webhook"
        assert not stuck.release.is_set()
    finally:
        stuck.release.set()
        stop.set()
        loop.join(10)
    assert not loop.is_alive(), "run_forever did not return after stop"
    statuses = {d.destination: d.status for d in outbox.deliveries()}
    assert statuses == {"slack": DeliveryStatus.DELIVERED, "hook": DeliveryStatus.PENDING}


def test_stop_lets_the_in_flight_delivery_finish_and_starts_no_new_one(store):
    outbox = Outbox(store, FAST)
    outbox.enqueue(items("first", "second"), time.time())
    stuck = BlockingDestination("hook")
    stop = threading.Event()
    loop = threading.Thread(target=OutboxWorker(outbox, {"hook": stuck}).run_forever, args=(stop, 0.05))
    loop.start()
    assert stuck.started.wait(10)
    stop.set()
    time.sleep(0.2)
    assert loop.is_alive(), "run_forever returned while a delivery was in flight"
    stuck.release.set()
    loop.join(10)
    assert not loop.is_alive()
    first, second = outbox.deliveries()
    assert (first.attempts, second.attempts) == (1, 0)


def test_a_replica_fenced_out_mid_delivery_logs_one_line_per_lane_pass_not_a_traceback(store, caplog):
    """After a step-down every write the lane makes is refused by the fence (FencedOut, a
    StateError): the lane says so in one warning and keeps polling; nothing is delivered."""
    import logging

    from monitor.ha import LeaderLease
    from monitor.store import FencedOut

    outbox = Outbox(store, FAST)
    outbox.enqueue(items("k1"), time.time())
    store.set_fence(LeaderLease(connect=lambda: None, replica="deposed", ttl_s=30).check)
    with pytest.raises(FencedOut):  # the control: this store refuses leader writes now
        with store.transaction() as conn:
            conn.execute("DELETE FROM deliveries")
    hook = ScriptedDestination("hook")
    stop = threading.Event()
    caplog.set_level(logging.WARNING, logger="monitor.outputs.worker")
    loop = threading.Thread(target=OutboxWorker(outbox, {"hook": hook}).run_forever, args=(stop, 0.05))
    loop.start()
    deadline = time.monotonic() + 10
    while not any("outbox lane hook" in r.getMessage() for r in caplog.records) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    loop.join(10)
    lane = [r for r in caplog.records if "outbox lane hook" in r.getMessage()]
    assert lane and all(r.exc_info is None and "does not hold the leader lease" in r.getMessage() for r in lane)
    store.set_fence(None)
    assert [d.status for d in outbox.deliveries()] == [DeliveryStatus.PENDING]
