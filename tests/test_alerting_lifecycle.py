"""Each alert's state machine, and that its state survives a restart (a real SQLite file)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor.alerting.condition import Instance, Truth
from monitor.alerting.lifecycle import AlertState, advance
from monitor.alerting.repository import AlertRepository
from monitor.alerting.rule_spec import load_rule_file
from monitor.store import StateStore

T0 = datetime(2026, 11, 22, 0, 0, tzinfo=timezone.utc)
LABELS = {"model": "ranker", "version": "v2"}


def rule(tmp_path: Path, for_: str = "10m", keep_firing_for: str = "0s", expr: bool = False):
    condition = "expr: up == 0" if expr else "condition: drift_share > 0.5"
    path = tmp_path / "rules.yaml"
    path.write_text(f"""version: monitor/v1
groups:
  - name: g
    rules:
      - alert: Drift
        {condition}
        for: {for_}
        keep_firing_for: {keep_firing_for}
        labels: {{severity: page}}
        annotations: {{summary: "{{{{ $labels.model }}}} at {{{{ $value }}}}"}}
""")
    return load_rule_file(path)[0]


def step_through(r, steps):
    """Run (minute, truth) evaluations; return the state after each (INACTIVE when gone)."""
    alerts: dict = {}
    states = []
    for minute, truth in steps:
        at = T0 + timedelta(minutes=minute)
        instances = [] if truth is None else [Instance(LABELS, truth, 0.9 if truth is Truth.TRUE else 0.1)]
        alerts, _ = advance(alerts, [r], {r.alert: instances}, at,
                            {r.alert: Truth.FALSE if r.expr else Truth.UNKNOWN})
        states.append(alerts[next(iter(alerts))].state if alerts else AlertState.INACTIVE)
    return states, alerts


T, F, U = Truth.TRUE, Truth.FALSE, Truth.UNKNOWN
P, FI, R, I, ND = AlertState.PENDING, AlertState.FIRING, AlertState.RESOLVED, AlertState.INACTIVE, AlertState.NO_DATA


@pytest.mark.parametrize("options, steps, expected", [
    pytest.param({}, [(0, T), (5, T), (10, T), (15, F)], [P, P, FI, R],
                 id="pending for its for duration, then firing, then resolved"),
    pytest.param({"for_": "0s"}, [(0, T), (1, F)], [FI, R], id="a for of zero fires at the first evaluation"),
    pytest.param({}, [(0, T), (5, F), (6, T), (15, T), (16, T)], [P, I, P, P, FI],
                 id="a pending alert whose condition stops holding starts its for clock again"),
    pytest.param({}, [(0, T), (5, U), (10, T)], [P, ND, FI],
                 id="no data while pending keeps the pending-since time"),
    pytest.param({}, [(0, T), (10, T), (11, U), (12, U), (13, T)], [P, FI, ND, ND, FI],
                 id="no data while firing neither resolves nor restarts it"),
    pytest.param({}, [(0, T), (10, T), (11, U), (12, F)], [P, FI, ND, R],
                 id="a fired alert resolves only on a real false"),
    pytest.param({}, [(0, U), (1, F)], [ND, I], id="no data for an instance never seen is recorded as no_data"),
    pytest.param({"keep_firing_for": "10m"}, [(0, T), (10, T), (11, F), (15, F), (21, F)], [P, FI, FI, FI, R],
                 id="keep_firing_for holds a firing alert until the condition stays false that long"),
    pytest.param({"keep_firing_for": "10m"}, [(0, T), (10, T), (11, F), (15, T), (26, F), (30, F)],
                 [P, FI, FI, FI, FI, FI], id="keep_firing_for restarts when the condition holds again"),
    pytest.param({"for_": "0s"}, [(0, T), (1, F), (2, T)], [FI, R, FI],
                 id="a resolved alert that fires again starts a new episode"),
    pytest.param({"expr": True}, [(0, T), (10, T), (11, None)], [P, FI, R],
                 id="a PromQL alert whose series stops coming back resolves, as in Prometheus"),
    pytest.param({}, [(0, T), (10, T), (11, None)], [P, FI, ND],
                 id="a signal alert whose signal stops being produced is no data"),
])
def test_state_machine(tmp_path, options, steps, expected):
    states, _ = step_through(rule(tmp_path, **options), steps)
    assert states == expected


def test_a_new_episode_has_a_new_start_and_no_fired_time(tmp_path):
    _, alerts = step_through(rule(tmp_path, for_="0s"), [(0, T), (1, F), (2, T)])
    [alert] = alerts.values()
    assert alert.active_since == T0 + timedelta(minutes=2) and alert.fired_at == alert.active_since
    assert alert.resolved_at is None


def test_labels_annotations_and_identity(tmp_path):
    _, alerts = step_through(rule(tmp_path), [(0, T)])
    [alert] = alerts.values()
    assert alert.labels == {"model": "ranker", "version": "v2", "severity": "page", "alertname": "Drift"}
    assert alert.annotations == {"summary": "ranker at 0.9"}
    assert alert.active_since == T0


def test_a_restart_between_cycles_keeps_pending_since_and_firing(tmp_path):
    r = rule(tmp_path)
    state_file = tmp_path / "state.db"
    at = T0
    with StateStore(state_file) as store:
        repo = AlertRepository(store)
        pending, transitions = advance({}, [r], {r.alert: [Instance(LABELS, T, 0.9)]}, at)
        repo.save_cycle(evaluated_at=at, started_at=at, finished_at=at, signal_count=1, previous={},
                        alerts=pending, transitions=transitions, groups={}, versions={}, notifications=[])
    with StateStore(state_file) as store:  # a new process: only the file carries over
        repo = AlertRepository(store)
        restored = repo.alerts()
        assert restored == pending
        at = T0 + timedelta(minutes=10)
        firing, transitions = advance(restored, [r], {r.alert: [Instance(LABELS, T, 0.9)]}, at)
        assert [t.to_state for t in transitions] == [AlertState.FIRING]
        repo.save_cycle(evaluated_at=at, started_at=at, finished_at=at, signal_count=1, previous=restored,
                        alerts=firing, transitions=transitions, groups={}, versions={}, notifications=[])
    with StateStore(state_file) as store:
        [alert] = AlertRepository(store).alerts().values()
        assert alert.state is AlertState.FIRING
        assert alert.active_since == T0 and alert.fired_at == T0 + timedelta(minutes=10)
