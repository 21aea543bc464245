"""`monitor run --once`: one full cycle (pull, compute, evaluate, queue) at a chosen time."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitor.cli import add_log_level_argument
from monitor.commands.arguments import parse_instant
from monitor.commands.state_file import add_state_arguments, open_state
from monitor.config import config_path_from
from monitor.errors import MonitorError
from monitor.secrets import redact
from monitor.timeutil import iso_z, utc_now

if TYPE_CHECKING:
    from monitor.alerting.repository import QueuedNotification
    from monitor.pipeline import CycleReport
    from monitor.signals import Signal

__all__ = ["add_state_arguments", "open_state", "register", "run"]

# The daemon reads prediction logs every cycle and refits their profiles hourly. Arrow's
# default allocator (mimalloc) keeps what it freed, so the process's RSS would ratchet up
# with each refit; the system allocator hands it back. Arrow picks its pool when first
# imported, which is after this module (a command imports its own module first).
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="run the daemon (or one cycle with --once)",
        description="Without --once: the daemon. It runs the cycle every schedule.evaluate_every, the weekly "
                    "report and the outbox worker, and serves /metrics, /healthz and /readyz; SIGHUP reloads "
                    "the config (a bad one is rejected and logged), SIGTERM finishes in-flight work and exits "
                    "0. On an SQLite state a second daemon on the same file is refused; replicas sharing a "
                    "PostgreSQL state (state.url) elect a leader, which alone runs cycles and sends. With --once: one full cycle evaluated at --at (default now) against the state file: "
                    "query Prometheus, compute SLO, drift and cost signals, evaluate the alert rules, advance "
                    "each alert's state and queue notifications. Running --once at successive --at times "
                    "steps a scenario through history. Exits 1 when the cycle's queries failed (alert states "
                    "are then left unchanged).")
    parser.add_argument("--once", action="store_true", help="run a single cycle and exit")
    parser.add_argument("--at", type=parse_instant, default=None,
                        help="with --once: evaluation time, ISO 8601 (default now)")
    parser.add_argument("--json", action="store_true",
                        help="with --once: print the cycle's signals, alert transitions and queued notifications")
    parser.add_argument("--listen", default=None,
                        help="daemon: HOST:PORT for /metrics and health (default: http.listen)")
    parser.add_argument("--log-format", choices=("plain", "json"), default="plain",
                        help="daemon: one line per event, plain text or JSON")
    add_log_level_argument(parser, on_subcommand=True)
    parser.add_argument("--replay-from", type=parse_instant, default=None,
                        help="daemon: evaluate history as if live, starting at this ISO 8601 instant "
                             "(for rehearsing rules against a past incident)")
    add_state_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from monitor.process_memory import limit_malloc_arenas

    limit_malloc_arenas()  # before the cycle's threads start (see monitor.process_memory)
    if not args.once:
        return run_daemon(args)
    from monitor.pipeline import run_cycle, save_ui_snapshot
    from monitor.sources.prometheus import PrometheusSource

    config, store = open_state(args)
    at = args.at or utc_now()
    with store, PrometheusSource.from_config(config.prometheus) as source:
        report = run_cycle(config, store, source, at)
        save_ui_snapshot(store, report)
    if args.json:
        # Cycle errors quote query errors, which may quote a URL: scrubbed like log lines.
        sys.stdout.write(redact(json.dumps(report_json(report), indent=2, default=_json_default)) + "\n")
    else:
        print_report(report)
    return 0 if report.ok else 1


def run_daemon(args: argparse.Namespace) -> int:
    """The long-running daemon (`monitor run` without --once)."""
    from monitor import progress
    from monitor.http_endpoints import parse_listen
    from monitor.log_format import daemon_logging

    if args.at is not None or args.json:
        raise MonitorError("--at and --json go with --once; the daemon evaluates at the current time "
                           "(or from --replay-from)")
    if args.listen is not None:
        parse_listen(args.listen, "--listen")  # a typo is one line at once, not after loading everything
    instance_lock = _lock_sqlite_state(args)
    # Log lines, plain or JSON, are not a terminal UI: no progress bars (the weekly report's).
    with daemon_logging(args.log_level or "INFO", args.log_format), progress.quiet_for_daemon():
        from monitor.daemon import Daemon  # after the log format is set: importing it logs at DEBUG

        try:
            daemon = Daemon(config_path_from(args.config), listen=args.listen, replay_from=args.replay_from,
                            state_path=args.state, instance_lock=instance_lock)
        except BaseException:
            if instance_lock is not None:
                instance_lock.release()
            raise
        return daemon.run()


def _lock_sqlite_state(args: argparse.Namespace):
    """A second daemon on an SQLite state file is refused at once, before the daemon's modules load.

    Returns the held lock for the daemon to keep (None on PostgreSQL, whose replicas share the
    database behind the leader lease). A config that does not load is left to the daemon, which
    reports all its problems."""
    from monitor.config import load_config
    from monitor.ha.single_instance import InstanceLock

    try:
        config = load_config(config_path_from(args.config))
    except MonitorError:
        return None
    if config.state.url and args.state is None:
        return None
    return InstanceLock(args.state or config.resolve_path(config.state.path)).acquire()


def signal_json(signal: Signal) -> dict[str, Any]:
    return {"name": signal.name, "labels": dict(signal.labels), "value": _number(signal.value),
            "evidence": {k: _number(v) for k, v in signal.evidence.items()}}


def notification_json(queued: QueuedNotification) -> dict[str, Any]:
    n = queued.notification
    return {"id": queued.id, "idempotency_key": n.idempotency_key, "kind": n.kind.value, "status": queued.status,
            "created_at": iso_z(n.created_at), "cycle_id": queued.cycle_id,
            "payload": n.payload.to_dict()}


def report_json(report: CycleReport) -> dict[str, Any]:
    return {
        "cycle": {"id": report.cycle_id, "evaluated_at": iso_z(report.evaluated_at),
                  "status": "ok" if report.ok else "failed", "error": report.error, "queries": report.queries,
                  "definition_errors": [e.to_json() for e in report.definition_errors]},
        "signals": [signal_json(s) for s in report.signals],
        "transitions": [{"alertname": t.alertname, "labels": dict(t.labels), "fingerprint": t.fingerprint,
                         "from": t.from_state.value, "to": t.to_state.value, "at": iso_z(t.at),
                         "value": _number(t.value)} for t in report.transitions],
        "notifications": [notification_json(n) for n in report.notifications],
    }


def print_report(report: CycleReport) -> None:
    if not report.ok:
        print(redact(f"cycle {report.cycle_id} at {iso_z(report.evaluated_at)}: FAILED, alert states unchanged: "
                     f"{report.error}"), file=sys.stderr)
        return
    print(f"cycle {report.cycle_id} at {iso_z(report.evaluated_at)}: {len(report.signals)} signals, "
          f"{len(report.transitions)} transitions, {len(report.notifications)} notifications queued")
    for error in report.definition_errors:
        print(f"  {error.kind.value} {error.name}: query rejected, not evaluated: {error.message}")
    for t in report.transitions:
        labels = ",".join(f"{k}={v}" for k, v in sorted(t.labels.items()) if k != "alertname")
        print(f"  {t.alertname}{{{labels}}}: {t.from_state.value} -> {t.to_state.value}")
    for queued in report.notifications:
        print(f"  queued {queued.notification.kind.value} ({queued.notification.idempotency_key})")


def _number(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, datetime):
        return iso_z(value)
    raise MonitorError(f"cannot serialise {type(value).__name__} to JSON")
