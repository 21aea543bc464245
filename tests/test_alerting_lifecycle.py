"""Each alert's state machine, and that its state survives a restart (a real SQLite file)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor.alerting.condition import Instance, Truth
from monitor.alerting.lifecycle import AlertState, advance
from monitor.alerting.repository import AlertRepository
from monitor.alerting.rule_spec import load_rule_file

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


def test_a_restart_between_cycles_keeps_pending_since_and_firing(tmp_path, open_state):
    r = rule(tmp_path)
    at = T0
    with open_state() as store:
        repo = AlertRepository(store)
        pending, transitions = advance({}, [r], {r.alert: [Instance(LABELS, T, 0.9)]}, at)
        repo.save_cycle(evaluated_at=at, started_at=at, finished_at=at, signal_count=1, previous={},
                        alerts=pending, transitions=transitions, groups={}, versions={}, notifications=[])
    with open_state() as store:  # a new process: only the file carries over
        repo = AlertRepository(store)
        restored = repo.alerts()
        assert restored == pending
        at = T0 + timedelta(minutes=10)
        firing, transitions = advance(restored, [r], {r.alert: [Instance(LABELS, T, 0.9)]}, at)
        assert [t.to_state for t in transitions] == [AlertState.FIRING]
        repo.save_cycle(evaluated_at=at, started_at=at, finished_at=at, signal_count=1, previous=restored,
                        alerts=firing, transitions=transitions, groups={}, versions={}, notifications=[])
    with open_state() as store:
        [alert] = AlertRepository(store).alerts().values()
        assert alert.state is AlertState.FIRING
        assert alert.active_since == T0 and alert.fired_at == T0 + timedelta(minutes=10)


# -- no data is not silence: the rule's no_data policy after no_data_for ----------------------

def no_data_rule(tmp_path: Path, policy: str | None, no_data_for: str = "30m", keep_firing_for: str = "0s"):
    settings = (f"no_data: {policy}\n        " if policy else "") + f"no_data_for: {no_data_for}"
    path = tmp_path / "rules.yaml"
    path.write_text(f"""version: monitor/v1
groups:
  - name: g
    rules:
      - alert: Drift
        condition: drift_share > 0.5
        for: 10m
        keep_firing_for: {keep_firing_for}
        {settings}
        labels: {{severity: page}}
        annotations: {{summary: "{{{{ $labels.model }}}} at {{{{ $value }}}}", runbook_url: "https://runbooks/drift"}}
""")
    return load_rule_file(path)[0]


NODATA_LABELS = {**LABELS, "severity": "page", "alertname": "Drift", "alertstate": "nodata"}


def run_cycles(r, steps):
    """Run (minute, truth) evaluations (None: the signal is not produced at all); return, after each,
    (the alert's state, the no-data alert's state) (INACTIVE when absent), and the last alerts."""
    alerts: dict = {}
    states = []
    for minute, truth in steps:
        at = T0 + timedelta(minutes=minute)
        instances = [] if truth is None else [Instance(LABELS, truth, 0.9 if truth is Truth.TRUE else 0.1)]
        alerts, _ = advance(alerts, [r], {r.alert: instances}, at, {r.alert: Truth.UNKNOWN})
        main = [a for a in alerts.values() if not a.is_no_data_alert]
        no_data = [a for a in alerts.values() if a.is_no_data_alert]
        assert len(main) <= 1 and len(no_data) <= 1
        states.append((main[0].state if main else I, no_data[0].state if no_data else I))
    return states, alerts


@pytest.mark.parametrize("policy, steps, expected", [
    pytest.param(None, [(0, U), (29, U), (30, U), (31, U), (40, F)],
                 [(ND, I), (ND, I), (ND, FI), (ND, FI), (I, R)],
                 id="by default a condition with no data for no_data_for fires a no-data alert until data returns"),
    pytest.param("alert", [(0, T), (10, T), (11, None), (40, None), (41, None), (42, T)],
                 [(P, I), (FI, I), (ND, I), (ND, I), (ND, FI), (FI, R)],
                 id="a firing alert whose signal vanishes is held and a no-data alert fires after no_data_for"),
    pytest.param("alert", [(0, U), (20, U), (21, F), (22, U), (51, U), (52, U)],
                 [(ND, I), (ND, I), (I, I), (ND, I), (ND, I), (ND, FI)],
                 id="a minute of data restarts the no_data_for clock"),
    pytest.param("alert", [(0, U), (30, U), (31, T), (32, U), (62, U)],
                 [(ND, I), (ND, FI), (P, R), (ND, R), (ND, FI)],
                 id="a no-data alert resolved by returning data fires again in a new silence"),
    pytest.param("ok", [(0, T), (10, T), (11, U), (40, U), (41, U), (42, U)],
                 [(P, I), (FI, I), (ND, I), (ND, I), (R, I), (R, I)],
                 id="ok resolves a firing alert once its data has been gone for no_data_for, and it stays resolved"),
    pytest.param("ok", [(0, T), (5, U), (34, U), (35, U)], [(P, I), (ND, I), (ND, I), (I, I)],
                 id="ok ends a pending alert whose data has been gone for no_data_for"),
    pytest.param("ok", [(0, U), (60, U), (61, None)], [(I, I), (I, I), (I, I)],
                 id="ok keeps an alert that was never active quiet when it has no data"),
    pytest.param("keep", [(0, T), (10, T), (11, U), (600, U), (601, None)],
                 [(P, I), (FI, I), (ND, I), (ND, I), (ND, I)],
                 id="keep holds a fired alert in no data for ever, with no no-data alert"),
])
def test_no_data_policy(tmp_path, policy, steps, expected):
    states, _ = run_cycles(no_data_rule(tmp_path, policy), steps)
    assert states == expected


def test_the_no_data_alert_says_since_when_and_keeps_the_rules_runbook(tmp_path):
    _, alerts = run_cycles(no_data_rule(tmp_path, "alert", no_data_for="15m"), [(0, T), (3, U), (10, U), (18, U)])
    [no_data] = [a for a in alerts.values() if a.is_no_data_alert]
    assert dict(no_data.labels) == NODATA_LABELS
    assert no_data.alertname == "Drift" and no_data.rule == "g/Drift"
    assert no_data.active_since == T0 + timedelta(minutes=3) and no_data.fired_at == T0 + timedelta(minutes=18)
    assert no_data.annotations["summary"] == "Drift for model=ranker, version=v2: no data since 2026-11-22T00:03:00Z"
    assert "no_data_for of 15m" in no_data.annotations["description"]
    assert no_data.annotations["runbook_url"] == "https://runbooks/drift"
    [held] = [a for a in alerts.values() if not a.is_no_data_alert]
    assert held.state is ND and held.no_data_since == T0 + timedelta(minutes=3) and held.active_since == T0


def test_ok_counts_keep_firing_for_from_when_the_data_stopped(tmp_path):
    r = no_data_rule(tmp_path, "ok", no_data_for="10m", keep_firing_for="20m")
    states, _ = run_cycles(r, [(0, T), (10, T), (11, U), (21, U), (30, U), (31, U)])
    assert [s for s, _ in states] == [P, FI, ND, ND, ND, R]


def test_no_data_since_and_the_no_data_alert_survive_a_restart(tmp_path, open_state):
    r = no_data_rule(tmp_path, "alert")
    alerts: dict = {}
    for minute in (0, 10, 25):
        at = T0 + timedelta(minutes=minute)
        with open_state() as store:  # a new process each cycle: only the file carries over
            repo = AlertRepository(store)
            previous = repo.alerts()
            assert previous == alerts
            alerts, transitions = advance(previous, [r], {r.alert: [Instance(LABELS, U, None)]}, at)
            repo.save_cycle(evaluated_at=at, started_at=at, finished_at=at, signal_count=1, previous=previous,
                            alerts=alerts, transitions=transitions, groups={}, versions={}, notifications=[])
    with open_state() as store:
        alerts, transitions = advance(AlertRepository(store).alerts(), [r], {r.alert: [Instance(LABELS, U, None)]},
                                      T0 + timedelta(minutes=30))
    assert [(t.labels.get("alertstate"), t.to_state) for t in transitions] == [("nodata", FI)]
    [no_data] = [a for a in alerts.values() if a.is_no_data_alert]
    assert no_data.active_since == T0
