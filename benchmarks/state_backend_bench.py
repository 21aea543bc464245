"""A cycle's alerting and state writes at 1,000 SLOs and 100 models: PostgreSQL against SQLite.

The same cycles run, in the same process, on both state backends through the daemon's
own code paths: read the alert state, groups and silences; evaluate the rules; the
alert state machine; silences and inhibition; grouping; the cycle's one transaction
(`AlertRepository.save_cycle`); routing the queued notifications into the outbox
(`route_pending_notifications`); a delivery pass (claims and outcomes) to a receiver
that answers at once; and the retention pass (`prune_history`). Prometheus is not in
the loop (its queries cost the same on either backend): the signals are fixed, with
a share of SLOs and models changing state every few cycles so that each cycle has
transitions, notifications and deliveries to write.

SQLite is the baseline: WAL with synchronous=FULL on a local file. PostgreSQL is a
private cluster on loopback (the tests' `PostgresServer`, Debian's package) with
durability as in production (fsync, synchronous_commit, full_page_writes on), reached
through the pool over TCP: every statement is a round trip, which is the cost this
measures.

Run: PYTHONPATH=. .venv/bin/python benchmarks/state_backend_bench.py [--cycles N]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from monitor.alerting.evaluate import evaluate_rules
from monitor.alerting.lifecycle import advance
from monitor.alerting.policy import apply_inhibition, apply_silences, plan_group_notifications
from monitor.alerting.repository import AlertRepository
from monitor.alerting.rule_spec import load_rule_file
from monitor.config import AlertingConfig, OutputsConfig, SlackConfig
from monitor.outputs.outbox import Delivery, Outbox
from monitor.outputs.results import SendResult
from monitor.outputs.routing import Router, route_pending_notifications
from monitor.outputs.worker import OutboxWorker
from monitor.retention import prune_history
from monitor.signals import Signal
from monitor.store import StateStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.postgres_server import PostgresServer  # noqa: E402 - the tests' private cluster

SLOS, MODELS, VERSIONS, COLUMNS = 1000, 100, 3, 10
T0 = datetime(2026, 11, 23, tzinfo=timezone.utc)
RETENTION = timedelta(days=2)

RULES = """version: monitor/v1
groups:
  - name: slo
    rules:
      - alert: ErrorBudgetBurn
        condition: slo_burn_rate > 14.4
        for: 2m
        labels: {severity: page}
        annotations: {summary: "{{ $labels.slo }} burns its error budget"}
  - name: drift
    rules:
      - alert: ColumnDrift
        condition: drift_detected == 1
        for: 5m
        labels: {severity: ticket}
        annotations: {summary: "{{ $labels.model }} {{ $labels.version }} {{ $labels.column }} drifted"}
      - alert: VersionDrift
        condition: drift_share >= 0.5
        labels: {severity: page}
"""


def signals(cycle: int) -> list[Signal]:
    """Every 10th SLO and model changes state every 4 cycles; a few always burn or drift."""
    out = []
    phase = (cycle // 4) % 2
    for i in range(SLOS):
        burning = i % 50 == 0 or (i % 10 == 3 and phase == 1)
        out.append(Signal("slo_burn_rate", {"service": f"svc-{i // 10}", "slo": f"slo-{i}"},
                          20.0 if burning else 0.5))
    for m in range(MODELS):
        for v in range(VERSIONS):
            labels = {"model": f"model-{m}", "version": f"v{v}"}
            drifting = m % 25 == 0 or (m % 10 == 7 and phase == 1)
            out.append(Signal("drift_share", labels, 0.6 if drifting else 0.1))
            for c in range(COLUMNS):
                out.append(Signal("drift_detected", {**labels, "column": f"col-{c}"},
                                  float(drifting and c % 3 == 0)))
    return out


class SimClock:
    def __init__(self) -> None:
        self.t = T0.timestamp()

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


class Receiver:
    name = "slack"

    def send(self, delivery: Delivery) -> SendResult:
        return SendResult.delivered()


class Daemon:
    """One state store driven cycle by cycle through the daemon's alerting and delivery code."""

    def __init__(self, store, rules_path: Path):
        self.store = store
        self.repository = AlertRepository(store)
        self.rules = load_rule_file(rules_path)
        self.alerting = AlertingConfig(group_by=["alertname", "service", "model"])
        self.clock = SimClock()
        self.outbox = Outbox(store)
        self.router = Router(OutputsConfig(slack=SlackConfig(channel="#alerts", token_env="X")))
        self.worker = OutboxWorker(self.outbox, {"slack": Receiver()}, self.clock)
        self.signals = [signals(n) for n in range(8)]   # the pattern repeats every 8 cycles

    def cycle(self, n: int) -> dict[str, float]:
        """One cycle; seconds per phase: `alerting` (reads, evaluation, the cycle's transaction), `delivery`
        (routing and one delivery pass), `retention`, and `total`."""
        at = T0 + timedelta(minutes=n)
        self.clock.t = at.timestamp()
        started = time.perf_counter()
        previous = self.repository.alerts()
        outcomes = evaluate_rules(self.rules, self.signals[n % 8], {})
        alerts, transitions = advance(previous, self.rules, outcomes.instances, at, outcomes.absent_means)
        alerts = apply_inhibition(apply_silences(alerts, self.repository.silences(), at), self.alerting.inhibit)
        notes, groups = plan_group_notifications(alerts, self.repository.groups(), self.alerting, at)
        self.repository.save_cycle(evaluated_at=at, started_at=at, finished_at=at,
                                   signal_count=len(self.signals[n % 8]), previous=previous, alerts=alerts,
                                   transitions=transitions, groups=groups, versions={}, notifications=notes)
        saved = time.perf_counter()
        route_pending_notifications(self.outbox, self.router, self.clock.now())
        self.worker.drain_due()
        delivered = time.perf_counter()
        prune_history(self.store, evaluated_at=at, wall_now=at, retention=RETENTION)
        done = time.perf_counter()
        return {"alerting": saved - started, "delivery": delivered - saved, "retention": done - delivered,
                "total": done - started}


def durable_postgres() -> PostgresServer:
    server = PostgresServer().start()
    import psycopg

    with psycopg.connect(server.url(), autocommit=True) as conn:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(f"ALTER SYSTEM SET {setting} = on")
        conn.execute("SELECT pg_reload_conf()")
    return server


def run(store, rules_path: Path, cycles: int, warmup: int) -> tuple[dict[str, list[float]], dict[str, int]]:
    daemon = Daemon(store, rules_path)
    for n in range(warmup):
        daemon.cycle(n)
    phases = [daemon.cycle(n) for n in range(warmup, warmup + cycles)]
    rows = {t: store.query(f"SELECT COUNT(*) FROM {t}")[0][0]
            for t in ("alerts", "alert_transitions", "notifications", "deliveries")}
    return {phase: [p[phase] for p in phases] for phase in phases[0]}, rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=8)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    server = durable_postgres()
    try:
        from monitor.store_postgres import PostgresStore

        with tempfile.TemporaryDirectory(prefix="state-backend-bench-") as tmp:
            rules_path = Path(tmp) / "rules.yaml"
            rules_path.write_text(RULES)
            results = {}
            with StateStore(Path(tmp) / "state.db") as sqlite:
                results["sqlite"] = run(sqlite, rules_path, args.cycles, args.warmup)
            with PostgresStore(server.new_database()) as postgresql:
                results["postgresql"] = run(postgresql, rules_path, args.cycles, args.warmup)
    finally:
        server.stop()
    n_signals = len(signals(0))
    print(f"{SLOS} SLOs and {MODELS} models ({n_signals} signals), {args.cycles} cycles after {args.warmup} "
          f"warm-up cycles; per cycle: read state, evaluate, state machine, save_cycle, route, deliver, prune")
    for name, (times, rows) in results.items():
        median = {phase: statistics.median(t) * 1e3 for phase, t in times.items()}
        print(f"  {name:<10} median {median['total']:7.1f} ms per cycle (alerting {median['alerting']:.1f}, "
              f"delivery {median['delivery']:.1f}, retention {median['retention']:.1f}), p90 "
              f"{statistics.quantiles(times['total'], n=10)[-1] * 1e3:.1f} ms; rows {rows}")
    if results["sqlite"][1] != results["postgresql"][1]:
        print(f"  ROW COUNTS DIFFER: {results['sqlite'][1]} vs {results['postgresql'][1]}")
    for phase in ("total", "alerting", "delivery", "retention"):
        ratio = statistics.median(results["postgresql"][0][phase]) / statistics.median(results["sqlite"][0][phase])
        print(f"PostgreSQL / SQLite (baseline), median {phase}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
