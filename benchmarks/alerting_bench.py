"""Alerting stage cost per cycle, as ratios against named baselines run in the same process.

1. An `and` join of per-column drift signals with per-version drift shares, against
   the baseline of a single comparison over the same number of signals: the join
   should cost a small constant factor, not grow quadratically.
2. The whole alerting stage of a cycle (evaluate, state machine, silences,
   inhibition, grouping, one SQLite transaction with WAL and synchronous=FULL),
   against the baseline of writing the same number of rows in one bare transaction.

Run: .venv/bin/python benchmarks/alerting_bench.py
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from monitor.alerting.condition import evaluate_condition, parse_condition
from monitor.alerting.evaluate import evaluate_rules
from monitor.alerting.lifecycle import advance
from monitor.alerting.policy import apply_inhibition, apply_silences, plan_group_notifications
from monitor.alerting.repository import AlertRepository
from monitor.alerting.rule_spec import load_rule_file
from monitor.config import AlertingConfig
from monitor.signals import Signal
from monitor.store import StateStore

MODELS, VERSIONS, COLUMNS = 200, 3, 10
T0 = datetime(2026, 11, 22, tzinfo=timezone.utc)


def drift_signals() -> list[Signal]:
    signals = []
    for m in range(MODELS):
        for v in range(VERSIONS):
            labels = {"model": f"model-{m}", "version": f"v{v}"}
            signals.append(Signal("drift_share", labels, (m + v) % 10 / 10))
            for c in range(COLUMNS):
                signals.append(Signal("drift_detected", {**labels, "column": f"col-{c}"}, float((m + c) % 3 == 0)))
                signals.append(Signal("drift_psi", {**labels, "column": f"col-{c}"}, ((m * c) % 7) / 10))
    return signals


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_join(signals: list[Signal]) -> None:
    single = parse_condition("drift_psi > 0.3")
    join = parse_condition("drift_psi > 0.3 and drift_share >= 0.5")
    baseline = best_of(5, lambda: evaluate_condition(single, signals))
    joined = best_of(5, lambda: evaluate_condition(join, signals))
    n = sum(s.name == "drift_psi" for s in signals)
    print(f"condition over {n} drift_psi signals: single comparison (baseline) {baseline * 1e3:.1f} ms, "
          f"and-join with {MODELS * VERSIONS} drift_share {joined * 1e3:.1f} ms, ratio {joined / baseline:.2f}x")


def bench_stage(signals: list[Signal], tmp: Path) -> None:
    rules_path = tmp / "rules.yaml"
    rules_path.write_text("""version: monitor/v1
groups:
  - name: bench
    rules:
      - alert: ColumnDrift
        condition: drift_detected == 1
        for: 15m
        labels: {severity: ticket}
        annotations: {summary: "{{ $labels.model }} {{ $labels.version }} {{ $labels.column }} drifted"}
      - alert: VersionDrift
        condition: drift_share >= 0.5
        labels: {severity: page}
""")
    rules = load_rule_file(rules_path)
    config = AlertingConfig(group_by=["model"])
    store = StateStore(tmp / "stage.db")
    repository = AlertRepository(store)
    alerts_written = 0

    def one_cycle(minute: int) -> None:
        nonlocal alerts_written
        at = T0 + timedelta(minutes=minute)
        previous = repository.alerts()
        outcomes = evaluate_rules(rules, signals, {})
        alerts, transitions = advance(previous, rules, outcomes.instances, at, outcomes.absent_means)
        alerts = apply_inhibition(apply_silences(alerts, repository.silences(), at), config.inhibit)
        notes, groups = plan_group_notifications(alerts, repository.groups(), config, at)
        repository.save_cycle(evaluated_at=at, started_at=at, finished_at=at, signal_count=len(signals),
                              previous=previous, alerts=alerts, transitions=transitions, groups=groups,
                              versions={}, notifications=notes)
        alerts_written = len(alerts)

    minute = iter(range(10_000))
    stage = best_of(5, lambda: one_cycle(next(minute)))
    store.close()

    conn = sqlite3.connect(tmp / "baseline.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, labels TEXT, state TEXT, at REAL)")
    rows = [(f"k{i}", '{"model":"m","version":"v","column":"c"}', "firing", float(i)) for i in range(alerts_written)]

    def bare_write() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT OR REPLACE INTO t VALUES (?, ?, ?, ?)", rows)
        conn.execute("COMMIT")

    baseline = best_of(5, bare_write)
    conn.close()
    print(f"alerting stage for {len(signals)} signals -> {alerts_written} alerts: {stage * 1e3:.1f} ms per cycle; "
          f"bare SQLite write of {alerts_written} rows (baseline) {baseline * 1e3:.1f} ms, "
          f"ratio {stage / baseline:.1f}x")


def main() -> None:
    signals = drift_signals()
    bench_join(signals)
    with tempfile.TemporaryDirectory(prefix="alerting-bench-") as tmp:
        bench_stage(signals, Path(tmp))


if __name__ == "__main__":
    main()
