"""The state file's size over 10,000 cycles levels off with retention, against a run without pruning.

Two state files are driven through the same simulated week, in the same process,
by the daemon's own code paths: the rule evaluator and the alert state machine
(`evaluate_rules`, `advance`), grouping (`plan_group_notifications`), the cycle's
save (`AlertRepository.save_cycle`, `record_failed_cycle`), routing into the outbox
(`route_pending_notifications`) and the outbox worker sending to a destination
that fails now and then (retries and expiries). The clock advances one minute per
cycle. One run prunes after every cycle (`monitor.retention.prune_history`, as
`run_cycle` does), the other never prunes: the baseline.

Retention is shortened to 2 days, so 10,000 cycles (~6.9 days) cross it about 3.5
times; with the default 35d the same shape appears after 35 days. The horizon is
rounded down to a UTC midnight (whole days are kept), so the pruned file swings
by up to a day's worth of rows once pruning has started.

Sizes are the main file after a WAL checkpoint (what stays on disk) plus the WAL.

Run: .venv/bin/python benchmarks/state_bench.py [--cycles N]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from monitor.alerting.evaluate import evaluate_rules
from monitor.alerting.lifecycle import advance
from monitor.alerting.policy import plan_group_notifications
from monitor.alerting.repository import AlertRepository
from monitor.alerting.rule_spec import load_rule_file
from monitor.config import AlertingConfig, OutputsConfig, SlackConfig
from monitor.outputs.outbox import Delivery, Outbox
from monitor.outputs.results import SendOutcome, SendResult
from monitor.outputs.routing import Router, route_pending_notifications
from monitor.outputs.worker import OutboxWorker
from monitor.retention import prune_history
from monitor.signals import Signal
from monitor.store import StateStore

T0 = datetime(2026, 11, 2, tzinfo=timezone.utc)
RETENTION = timedelta(days=2)
SERVICES = 12
EPISODE_EVERY_CYCLES = 60     # each service's condition holds for 12 minutes every hour
EPISODE_CYCLES = 12
FAILED_CYCLE_EVERY = 97       # Prometheus unreachable now and then: a failed cycle row

RULES = """version: monitor/v1
groups:
  - name: slo
    rules:
      - alert: ErrorBudgetBurn
        condition: slo_burn_rate > 1
        for: 3m
        labels: {severity: page}
        annotations: {summary: "{{ $labels.service }} burns its error budget at {{ $value }}x"}
"""


class SimClock:
    """The outbox worker's clock: the simulated time, one minute per cycle."""

    def __init__(self, start: datetime):
        self.at = start

    def now(self) -> float:
        return self.at.timestamp()

    def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class FlakyReceiver:
    """Fails every 5th attempt with a 503 and refuses every 41st with a 400 (expired at once)."""

    name = "slack"

    def __init__(self) -> None:
        self.attempts = 0

    def send(self, delivery: Delivery) -> SendResult:
        self.attempts += 1
        if self.attempts % 41 == 0:
            return SendResult(SendOutcome.REFUSED, 400, error="HTTP 400: invalid_blocks")
        if self.attempts % 5 == 0:
            return SendResult(SendOutcome.FAILED, 503, error="HTTP 503")
        return SendResult.delivered()


class SimulatedDaemon:
    """One state file stepped through cycles by the daemon's code paths."""

    def __init__(self, path: Path, rules_path: Path, prune: bool):
        self.store = StateStore(path)
        self.path = path
        self.prune = prune
        self.rules = load_rule_file(rules_path)
        self.alerting = AlertingConfig(group_by=["alertname", "service"], repeat_interval=timedelta(hours=1))
        self.repository = AlertRepository(self.store)
        self.clock = SimClock(T0)
        self.outbox = Outbox(self.store)
        self.router = Router(OutputsConfig(slack=SlackConfig(channel="#alerts", token_env="SLACK_TOKEN")))
        self.worker = OutboxWorker(self.outbox, {"slack": FlakyReceiver()}, self.clock)

    def cycle(self, n: int) -> None:
        at = T0 + timedelta(minutes=n)
        self.clock.at = at
        if n % FAILED_CYCLE_EVERY == FAILED_CYCLE_EVERY - 1:
            self.repository.record_failed_cycle(at, at, at, "query failed: prometheus: connection refused")
        else:
            signals = [Signal("slo_burn_rate", {"service": f"svc-{i}"},
                              3.0 if (n + 5 * i) % EPISODE_EVERY_CYCLES < EPISODE_CYCLES else 0.2)
                       for i in range(SERVICES)]
            previous = self.repository.alerts()
            outcomes = evaluate_rules(self.rules, signals, {})
            alerts, transitions = advance(previous, self.rules, outcomes.instances, at, outcomes.absent_means)
            notifications, groups = plan_group_notifications(alerts, self.repository.groups(), self.alerting, at)
            self.repository.save_cycle(evaluated_at=at, started_at=at, finished_at=at, signal_count=len(signals),
                                       previous=previous, alerts=alerts, transitions=transitions, groups=groups,
                                       versions={}, notifications=notifications)
        route_pending_notifications(self.outbox, self.router, at.timestamp())
        self.worker.drain_due()
        if self.prune:
            prune_history(self.store, evaluated_at=at, wall_now=at, retention=RETENTION)

    def size(self) -> tuple[int, int]:
        """(main file bytes after a passive checkpoint, WAL bytes)."""
        self.store.query("PRAGMA wal_checkpoint(PASSIVE)")
        wal = Path(f"{self.path}-wal")
        return self.path.stat().st_size, wal.stat().st_size if wal.exists() else 0

    def rows(self) -> dict[str, int]:
        return {table: self.store.query(f"SELECT COUNT(*) FROM {table}")[0][0]
                for table in ("cycles", "alert_transitions", "notifications", "deliveries")}


def mib(n: int) -> str:
    return f"{n / 2**20:7.2f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=1_000, help="print sizes every this many cycles")
    args = parser.parse_args()
    logging.getLogger("monitor").setLevel(logging.ERROR)  # the flaky receiver's delivery warnings
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None  # fsyncs are not what is measured here
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        rules_path = Path(tmp) / "rules.yaml"
        rules_path.write_text(RULES)
        pruned = SimulatedDaemon(Path(tmp) / "pruned.db", rules_path, prune=True)
        unpruned = SimulatedDaemon(Path(tmp) / "unpruned.db", rules_path, prune=False)
        print(f"{args.cycles} cycles, 1 min apart ({args.cycles / 1440:.1f} days), {SERVICES} alert instances, "
              f"retention {RETENTION.days}d (the default is 35d)")
        print("rows c/t/n/d: cycles / alert transitions / notifications / deliveries; "
              "ratio: pruned (file + WAL) / unpruned (file + WAL)")
        print(f"{'cycle':>6} {'days':>5} | {'pruned: file':>13} {'wal':>11} {'rows c/t/n/d':>22} | "
              f"{'unpruned: file':>15} {'wal':>11} {'rows c/t/n/d':>22} | ratio")
        seconds = {True: 0.0, False: 0.0}
        for n in range(args.cycles):
            for daemon in (pruned, unpruned):
                started = time.perf_counter()
                daemon.cycle(n)
                seconds[daemon.prune] += time.perf_counter() - started
            if (n + 1) % args.every == 0:
                (p_file, p_wal), (u_file, u_wal) = pruned.size(), unpruned.size()
                p_rows, u_rows = pruned.rows(), unpruned.rows()
                print(f"{n + 1:>6} {(n + 1) / 1440:5.2f} | {mib(p_file):>13} {mib(p_wal):>11} "
                      f"{'/'.join(map(str, p_rows.values())):>22} | {mib(u_file):>15} {mib(u_wal):>11} "
                      f"{'/'.join(map(str, u_rows.values())):>22} | {(p_file + p_wal) / (u_file + u_wal):5.2f}")
        print(f"cycle time: {seconds[True] / args.cycles * 1000:.2f} ms with pruning, "
              f"{seconds[False] / args.cycles * 1000:.2f} ms without "
              f"(ratio {seconds[True] / seconds[False]:.2f})")
        free = pruned.store.query("PRAGMA freelist_count")[0][0]
        pages = pruned.store.query("PRAGMA page_count")[0][0]
        print(f"pruned file: {pages} pages, {free} free (auto_vacuum="
              f"{pruned.store.query('PRAGMA auto_vacuum')[0][0]}, 2 = incremental)")
        for daemon in (pruned, unpruned):
            daemon.store.close()


if __name__ == "__main__":
    main()
