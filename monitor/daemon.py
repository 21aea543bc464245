"""`monitor run`: the scheduled daemon.

An APScheduler 3 background scheduler runs the cycle every
`schedule.evaluate_every` (never two at once: an overrun makes the next one skip
and count as missed) and the weekly report; a worker thread drains the outbox; an
HTTP thread serves /metrics, /healthz and /readyz. The main thread only waits for
signals: SIGTERM/SIGINT stop the scheduler (the in-flight cycle finishes), give
in-flight deliveries a bounded time to finish and exit 0; SIGHUP re-reads the
config, and a config that fails validation is logged and rejected while the old
one keeps running.

High availability (monitor.ha): on an SQLite state the daemon is the only one on its
file (a second is refused at start) and always leads. On PostgreSQL any number of
replicas run; the one holding the leader lease runs the cycles, the weekly report
and the outbox worker, the others stand by (serving /metrics, /readyz and the UI)
and take over when the lease lapses. Delivery is the leader's alone: a replica that
loses the lease stops its outbox worker, and the fence rejects the attempt it would
record before sending, so a deposed leader sends nothing new; a delivery it had
already begun is sent again by the next leader with the same idempotency key.

The new config is read and validated on a thread of its own, within
`RELOAD_TIMEOUT_S`: the main thread keeps answering signals meanwhile, so a config
that takes forever to parse is rejected and SIGTERM still stops the daemon. Only
the swap itself (a validated config in, the outbox worker restarted) runs on the
main thread.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from pathlib import Path
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.alerting.lifecycle import AlertState
from monitor.alerting.notifications import alert_event
from monitor.config import Config, parse_weekly
from monitor.errors import ConfigError, MonitorError
from monitor.ha.lease import unfenced
from monitor.ha.leadership import LeaseLeadership, Leadership, SoleLeader, leader_only
from monitor.ha.single_instance import InstanceLock
from monitor.http_endpoints import HealthServer, parse_listen
from monitor.log_format import current_cycle_id
from monitor.outputs.alertmanager import AlertmanagerDestination, postable_alerts
from monitor.outputs.assembly import DeliveryService, build_delivery
from monitor.outputs.metrics import DaemonMetrics
from monitor.outputs.report import write_weekly_report
from monitor.outputs.report_announce import announce_written_report
from monitor.report.render import WrittenReport
from monitor.outputs.results import SendOutcome
from monitor.pipeline import CycleReport, Definitions, load_definitions, run_cycle, save_ui_snapshot
from monitor.process_memory import release_freed_memory
from monitor.sources.prometheus import PrometheusSource
from monitor.store import FencedOut, StateError, StateStore, Store, open_store
from monitor.timeutil import iso_z, utc_now
from monitor.ui.auth import read_auth_secret
from monitor.validation import validate

log = logging.getLogger(__name__)

READY_AFTER_INTERVALS = 3  # /readyz fails once the last success is older than this many intervals
RELOAD_TIMEOUT_S = 10.0    # reading and validating a new config on SIGHUP; longer is a rejection


@dataclass
class _PendingReload:
    """A config being read on its own thread; `outcome` is set, then `done`."""

    deadline_monotonic: float
    done: threading.Event
    outcome: tuple[Config, Definitions] | list | None = None  # (config, definitions), or the problems


def weekly_trigger(spec: str) -> CronTrigger:
    """`reports.weekly` ("mon 08:00", local time; validated at config load) as a cron trigger."""
    day, hour, minute = parse_weekly(spec)
    return CronTrigger(day_of_week=day, hour=hour, minute=minute)


class Daemon:
    """The long-running process: one per SQLite state file, or any number of replicas on PostgreSQL."""

    def __init__(self, config_path: str, *, listen: str | None = None, replay_from: datetime | None = None,
                 state_path: str | Path | None = None, shutdown_timeout_s: float = 30.0,
                 report_writer: Callable[[Config, datetime], object] | None = write_weekly_report,
                 instance_lock: InstanceLock | None = None):
        report = validate(config_path)
        if not report.ok:
            raise ConfigError(report.problems)
        self.config_path = config_path
        self.config: Config = report.config
        self.definitions: Definitions = load_definitions(self.config)
        self.listen = listen or self.config.http.listen
        self._listen_source = "--listen" if listen else f"{config_path}: http.listen"
        parse_listen(self.listen, self._listen_source)  # before anything is opened
        self.shutdown_timeout_s = shutdown_timeout_s
        self.metrics = DaemonMetrics()
        self.store, self.leadership = self._open_state(state_path, instance_lock)
        self.source = PrometheusSource.from_config(self.config.prometheus)
        with unfenced():  # re-enabling a destination whose target changed: any replica may
            self.delivery: DeliveryService = build_delivery(self.config, self.store)
        self._guard_delivery(self.delivery)
        self.metrics.deliveries.attach(self._outbox_counts)
        self._report_writer = report_writer
        # Replay mode evaluates history as if it were happening now: the evaluation
        # clock starts at `replay_from` and advances with wall time.
        self._replay_from = replay_from
        self._started_wall = time.time()
        self._last_success_monotonic: float | None = None
        self._query_errors_seen = 0
        self._stop = threading.Event()
        self._reload_requested = threading.Event()
        self._outbox_stop = threading.Event()
        self._outbox_thread: threading.Thread | None = None
        self._outbox_lock = threading.Lock()     # starting and stopping the worker (reload, lease changes)
        self._leading = False                    # the leader's work is running (set by the lease's callbacks)
        self._leading_since_monotonic: float | None = None
        self._cycle_lock = threading.Lock()      # held while a cycle runs: a step-down waits for it
        self._swap_lock = threading.Lock()
        self._pending_reload: _PendingReload | None = None
        self.reload_timeout_s = RELOAD_TIMEOUT_S
        self.last_cycle: CycleReport | None = None
        self.scheduler = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1})
        self.scheduler.add_listener(self._on_job_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_ERROR)

    def _open_state(self, state_path: str | Path | None,
                    instance_lock: InstanceLock | None) -> tuple[Store, Leadership]:
        """The state store, and who leads: the lease on PostgreSQL, this process alone on SQLite."""
        state = self.config.state
        if state.url and state_path is None:
            self.state_path = None
            store = open_store(self.config)
            try:
                password = None
                if state.password_env or state.password_file:
                    from monitor.secrets import read_secret
                    password = read_secret(state.password_env, state.password_file, "state.password")
                # A standby looks at least twice per interval: failover stays within TTL + 2 intervals.
                poll_s = self.config.schedule.evaluate_every.total_seconds() / 2
                return store, LeaseLeadership(self.config, store, self.metrics, password, poll_s=poll_s)
            except BaseException:
                store.close()
                raise
        self.state_path = Path(state_path) if state_path else self.config.resolve_path(state.path)
        # Its lock file is taken when the daemon starts (run), not here: only a running daemon
        # excludes another.
        return StateStore(self.state_path), SoleLeader(self.state_path, self.metrics, state.replica, instance_lock)

    def _guard_delivery(self, delivery: DeliveryService) -> None:
        """Deliveries are the leader's: each request re-checks the term just before it leaves, and
        every leader claims as `leader`. Only one replica can write as the leader (the fence), so a
        claim left by another is a dead or deposed leader's: the new one takes its in-flight
        delivery over at once (same idempotency key) rather than after the claim lapses."""
        delivery.worker.destinations = leader_only(delivery.worker.destinations, self.leadership)
        if isinstance(self.leadership, LeaseLeadership):
            delivery.outbox.claimant = "leader"

    # -- scheduling ------------------------------------------------------------

    def _schedule(self) -> None:
        interval = self.config.schedule.evaluate_every.total_seconds()
        self.scheduler.add_job(self.run_one_cycle, IntervalTrigger(seconds=interval), id="cycle",
                               replace_existing=True, next_run_time=utc_now(),
                               misfire_grace_time=max(1, int(interval)))
        if self._report_writer is not None:
            self.scheduler.add_job(self.write_weekly_report, weekly_trigger(self.config.reports.weekly),
                                   id="weekly-report", replace_existing=True, misfire_grace_time=3600)

    def _on_job_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MAX_INSTANCES and event.job_id == "cycle":
            self.metrics.cycles_missed.inc()
            log.warning("cycle skipped: the previous cycle is still running")
        elif event.code == EVENT_JOB_ERROR:
            log.error("job %s raised: %s", event.job_id, event.exception, exc_info=event.exception)

    def evaluation_time(self) -> datetime:
        now = utc_now()
        if self._replay_from is None:
            return now
        return self._replay_from + timedelta(seconds=time.time() - self._started_wall)

    def run_one_cycle(self) -> CycleReport | None:
        """One cycle, with its metrics and log lines; never raises into the scheduler (None if it crashed,
        or if this replica is not the leader)."""
        if not self.leadership.is_leader():
            return None
        with self._cycle_lock:
            return self._run_one_cycle()

    def _run_one_cycle(self) -> CycleReport | None:
        cycle_tag = uuid.uuid4().hex[:8]
        token = current_cycle_id.set(cycle_tag)
        started = time.monotonic()
        at = self.evaluation_time()
        with self._swap_lock:
            config, source, definitions = self.config, self.source, self.definitions
        try:
            log.info("cycle started at %s", at.isoformat())
            sent_errors_before = source.stats.errors - source.stats.skipped
            samples_before = source.stats.samples
            try:
                report = run_cycle(config, self.store, source, at, definitions=definitions)
            except FencedOut as exc:
                # The lease passed on while this cycle ran: its state write was rejected.
                log.warning("cycle abandoned, nothing written: %s", exc)
                self.metrics.cycles.labels("error").inc()
                return None
            except StateError as exc:  # the database is down or refused: one line, retried next cycle
                log.error("cycle failed, alert states unchanged: %s", exc)
                self.metrics.cycles.labels("error").inc()
                return None
            except Exception as exc:  # noqa: BLE001 - a bug must not kill the schedule
                # State is written in one transaction at the cycle's end, so a crash
                # before it leaves every alert as it was, like a failed cycle.
                log.exception("cycle crashed, alert states unchanged: %s", exc)
                self.metrics.cycles.labels("error").inc()
                return None
            duration = time.monotonic() - started
            self.metrics.cycle_duration.observe(duration)
            # Queries that went unanswered for real (skipped ones were never sent).
            self.metrics.query_errors.inc(max(0, source.stats.errors - source.stats.skipped - sent_errors_before))
            self.metrics.prometheus_samples.inc(max(0, source.stats.samples - samples_before))
            self.metrics.cycles.labels("success" if report.ok else "error").inc()
            if report.ok:
                self._last_success_monotonic = time.monotonic()
                self.metrics.last_success.set(time.time())
                self.metrics.signals.update(report.signals)
                self.metrics.count_queued(report.notifications)
                log.info("cycle finished in %.2fs: %d signals, %d transitions, %d notifications queued",
                         duration, len(report.signals), len(report.transitions), len(report.notifications))
            else:
                log.warning("cycle failed in %.2fs, alert states unchanged: %s", duration, report.error)
            self.last_cycle = report
            if self.leadership.is_leader():  # a replica that lost the lease meanwhile sends nothing
                self._repush_to_alertmanager(report, config)
            self._save_ui_snapshot(report)
            return report
        finally:
            current_cycle_id.reset(token)
            # The cycle's answers are garbage now: hand what malloc keeps of them back (see process_memory).
            release_freed_memory()

    def _save_ui_snapshot(self, report: CycleReport) -> None:
        """The cycle's signals for the web UI, once its alerts are on their way (see save_ui_snapshot)."""
        try:
            save_ui_snapshot(self.store, report)
        except (FencedOut, StateError) as exc:  # a step-down or a database fault: the UI shows the last one
            log.warning("the web UI keeps showing the previous cycle: its snapshot was not saved: %s", exc)

    def _repush_to_alertmanager(self, report: CycleReport, config: Config) -> None:
        """Re-send what is firing, every cycle, as Prometheus does.

        Alertmanager resolves an alert by itself once its endsAt passes without a
        re-send; pushing the stored firing alerts after failed cycles too keeps a
        Prometheus outage from resolving them there. Transitions travel through the
        outbox, so a failed push here loses nothing.
        """
        if config.outputs.alertmanager is None:
            return
        firing = [a for a in report.alerts.values() if a.state is AlertState.FIRING and not a.silenced_by]
        if not firing:
            return
        ends_at = utc_now() + max(4 * config.schedule.evaluate_every, timedelta(minutes=5))
        alerts = postable_alerts([alert_event(a) for a in firing])
        for alert in alerts:
            alert["endsAt"] = iso_z(ends_at)
        result = AlertmanagerDestination(config.outputs.alertmanager).push(alerts)
        if result.outcome is not SendOutcome.DELIVERED:
            log.warning("re-push of %d firing alerts to Alertmanager failed: %s", len(alerts),
                        result.error or result.outcome.value)

    def write_weekly_report(self) -> None:
        """The scheduled job: the last complete week's report, at its evaluation time."""
        if not self.leadership.is_leader():
            return
        with self._swap_lock:
            config = self.config
        try:
            at = self.evaluation_time()
            written = self._report_writer(config, at)
            log.info("weekly report written to %s", config.resolve_path(config.reports.dir))
        except Exception as exc:  # noqa: BLE001 - a failed report must not stop alerting
            log.exception("weekly report failed: %s", exc)
            return
        if isinstance(written, WrittenReport):
            try:
                announce_written_report(self.store, config, written, at)
            except Exception as exc:  # noqa: BLE001 - the report is written; alerting carries on
                log.exception("weekly report written, but its announcement could not be queued: %s", exc)

    # -- health ----------------------------------------------------------------

    def readiness(self) -> tuple[bool, str]:
        standby = self.leadership.standby_reason()
        if standby is not None:
            # A standby serves /metrics and the UI and is ready to take over: ready, unless it
            # cannot even read the lease.
            return not standby.startswith("standby: cannot"), standby
        interval = self.config.schedule.evaluate_every.total_seconds()
        since = self._leading_since_monotonic
        if self._last_success_monotonic is None or (since is not None and self._last_success_monotonic < since):
            # A new leader has READY_AFTER_INTERVALS to complete its first cycle, as a new process does.
            if since is not None and time.monotonic() - since <= READY_AFTER_INTERVALS * interval \
                    and self.state_path is None:
                return True, f"leader for {time.monotonic() - since:.0f}s, first cycle under way"
            return False, "no successful cycle yet"
        age = time.monotonic() - self._last_success_monotonic
        if age > READY_AFTER_INTERVALS * interval:
            return False, f"last successful cycle {age:.0f}s ago (> {READY_AFTER_INTERVALS} intervals)"
        return True, f"last successful cycle {age:.0f}s ago"

    def _outbox_counts(self):
        with self._swap_lock:
            return self.delivery.outbox.counts()

    # -- outbox worker ----------------------------------------------------------

    def _start_outbox(self) -> None:
        """Start the worker, on the leader only (and not twice)."""
        with self._outbox_lock:
            if not self._leading or (self._outbox_thread is not None and self._outbox_thread.is_alive()):
                return
            self._start_outbox_thread()

    def _start_outbox_thread(self) -> None:
        self._outbox_stop = threading.Event()
        delivery = self.delivery
        self._outbox_thread = threading.Thread(
            target=delivery.worker.run_forever, args=(self._outbox_stop, 1.0),
            kwargs={"before_pass": delivery.route_pending}, name="outbox", daemon=True)
        self._outbox_thread.start()

    def _stop_outbox(self, timeout_s: float) -> bool:
        """Ask the worker to stop after its in-flight delivery; False if it did not within the bound."""
        with self._outbox_lock:
            self._outbox_stop.set()
            if self._outbox_thread is None:
                return True
            self._outbox_thread.join(timeout_s)
            return not self._outbox_thread.is_alive()

    # -- leadership ----------------------------------------------------------------

    def _on_elected(self) -> None:
        """This replica now leads: deliveries start, and a cycle runs at once (the state is in the database)."""
        self._leading_since_monotonic = time.monotonic()
        self._leading = True
        self._start_outbox()
        if self.scheduler.running:
            try:
                self.scheduler.modify_job("cycle", next_run_time=utc_now())
            except Exception:  # noqa: BLE001 - the job may be rescheduling (reload): it runs at its interval
                log.debug("could not bring the cycle forward", exc_info=True)

    def _on_deposed(self) -> None:
        """This replica lost the lease: stop deliveries and wait out a running cycle (its writes are fenced)."""
        self._leading = False
        self._leading_since_monotonic = None
        if not self._stop_outbox(self.shutdown_timeout_s):
            log.warning("outbox worker still busy %.0fs after the step-down", self.shutdown_timeout_s)
        if self._cycle_lock.acquire(timeout=self.shutdown_timeout_s):
            self._cycle_lock.release()

    # -- reload ----------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read the config now, on this thread; keep the old one (and say why) if the new one is invalid."""
        outcome = self._read_config()
        return self._apply_reload(outcome)

    def _read_config(self) -> tuple[Config, Definitions] | list:
        """The validated new config and its definitions, or the problems that reject it."""
        try:
            report = validate(self.config_path)
            if not report.ok:
                return list(report.problems)
            return report.config, load_definitions(report.config)
        except Exception as exc:  # noqa: BLE001 - a reload must never take the daemon down
            return [f"{self.config_path}: {type(exc).__name__}: {exc}"]

    def _begin_reload(self) -> None:
        """Start reading the config on its own thread (one at a time; a SIGHUP meanwhile is folded in)."""
        if self._pending_reload is not None:
            log.info("config reload already in progress; this SIGHUP is folded into it")
            return
        pending = _PendingReload(deadline_monotonic=time.monotonic() + self.reload_timeout_s,
                                 done=threading.Event())

        def read() -> None:
            try:
                pending.outcome = self._read_config()
            finally:
                pending.done.set()

        self._pending_reload = pending
        log.info("config reload: reading %s", self.config_path)
        threading.Thread(target=read, name="config-reload", daemon=True).start()

    def _poll_reload(self) -> None:
        """Apply a finished reload, or reject one that ran past its time bound."""
        pending = self._pending_reload
        if pending is None:
            return
        if pending.done.is_set():
            self._pending_reload = None
            self._apply_reload(pending.outcome if pending.outcome is not None else ["the reader thread died"])
        elif time.monotonic() > pending.deadline_monotonic:
            # The thread cannot be killed; it is abandoned (a daemon thread) and its
            # result, should it ever finish, is dropped with `pending`.
            self._pending_reload = None
            self._apply_reload([f"{self.config_path}: reading the config took longer than "
                                f"{self.reload_timeout_s:.0f}s"])

    def _apply_reload(self, outcome: tuple[Config, Definitions] | list) -> bool:
        if isinstance(outcome, list):
            self.metrics.config_reloads.labels("error").inc()
            for problem in outcome:
                log.error("config reload rejected, keeping the running config: %s", problem)
            return False
        new, definitions = outcome
        if new.resolve_path(new.state.path) != self.config.resolve_path(self.config.state.path) \
                and self.state_path == self.config.resolve_path(self.config.state.path):
            log.warning("state.path changed: takes effect at the next restart, not on reload")
        if new.state.url != self.config.state.url:
            log.warning("state.url changed: takes effect at the next restart, not on reload")
        try:  # reads the new secrets: a missing or malformed one rejects the reload
            source = PrometheusSource.from_config(new.prometheus)
            with unfenced():  # an operator's action: any replica may re-enable a destination
                delivery = build_delivery(new, self.store)
            self._guard_delivery(delivery)
            read_auth_secret(new.http.auth)
        except MonitorError as exc:
            self.metrics.config_reloads.labels("error").inc()
            log.error("config reload rejected, keeping the running config: %s", exc)
            return False
        self._stop_outbox(self.shutdown_timeout_s)
        with self._swap_lock:
            old_source, self.config, self.source, self.definitions = self.source, new, source, definitions
            self.delivery = delivery
        with unfenced():
            enabled = self.delivery.outbox.enable_all_destinations()
        for name in enabled:
            log.info("destination %s re-enabled by the config reload (it had answered 410 Gone)", name)
        old_source.close()
        self._start_outbox()
        if self.scheduler.running:
            self._schedule()
        self.metrics.config_reloads.labels("success").inc()
        log.info("config reloaded from %s", self.config_path)
        return True

    # -- lifecycle --------------------------------------------------------------

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def request_reload(self, *_: object) -> None:
        self._reload_requested.set()

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the exit code."""
        try:
            # First: a second daemon on an SQLite file is refused before it binds or sends anything.
            self.leadership.start(self._on_elected, self._on_deposed)
            try:
                from monitor.ui.app import UiContext, make_ui_app

                read_auth_secret(self.config.http.auth)
                # The UI's clock is the evaluation clock: a silence made in the UI starts at the time
                # the next cycle is evaluated at (the replayed time under --replay-from).
                ui = make_ui_app(UiContext(store=self.store, config=lambda: self.config, listen=self.listen,
                                           clock=self.evaluation_time))
                http = HealthServer(self.listen, self.metrics.registry, self.readiness, app=ui,
                                    where=self._listen_source)
            except BaseException:
                self._leading = False
                self._stop_outbox(self.shutdown_timeout_s)
                self.leadership.stop()
                raise
        except MonitorError:
            self.source.close()
            self.store.close()
            raise
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, self.request_reload)
        http.start()
        self._schedule()
        self.scheduler.start()
        log.info("monitor running: cycle every %ss, state %s, http %s, replica %s",
                 self.config.schedule.evaluate_every.total_seconds(),
                 self.store.path, http.address, self.leadership.replica)
        try:
            while not self._stop.is_set():
                if self._reload_requested.wait(0.2):
                    self._reload_requested.clear()
                    self._begin_reload()
                self._poll_reload()
        finally:
            log.info("stopping: waiting for the running cycle, then in-flight deliveries (up to %.0fs)",
                     self.shutdown_timeout_s)
            self.scheduler.shutdown(wait=True)
            self._leading = False
            if not self._stop_outbox(self.shutdown_timeout_s):
                log.warning("outbox worker still busy after %.0fs; its delivery will be retried after restart",
                            self.shutdown_timeout_s)
            self.leadership.stop()  # hands the lease back: a standby takes over without waiting for it to lapse
            http.stop()
            self.source.close()
            self.store.close()
            log.info("stopped")
        return 0
