"""The daemon as a real process: outages, slow Prometheus, SIGKILL mid-cycle, SIGHUP, SIGTERM.

Each test starts `monitor run` in replay mode (evaluating the simulated history as if
it were happening now) against the session's real Prometheus, reached through a
loopback proxy that can be made slow, and reads the daemon's own /metrics, /readyz,
logs and state file, as an SRE would.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import yaml

from monitor.alerting.lifecycle import AlertState
from monitor.alerting.repository import AlertRepository
from monitor.outputs.outbox import DeliveryStatus, Outbox
from monitor.simulate.local_prometheus import free_port
from monitor.store import StateStore
from standins.alertmanager import LocalAlertmanager
from standins.slack_api import SlackStandIn
from standins.slow_proxy import SlowProxy

INTERVAL_S = 2


def wait_for(condition, timeout: float, what: str, poll: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class DaemonProcess:
    """`monitor run` in a subprocess, with helpers to read what it exposes."""

    def __init__(self, config_path: Path, replay_from: str, log_path: Path, listen: str):
        self.config_path, self.replay_from, self.log_path, self.listen = config_path, replay_from, log_path, listen
        self.process: subprocess.Popen | None = None

    def start(self) -> "DaemonProcess":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(self.config_path), "--log-format", "json",
             "--log-level", "INFO", "--replay-from", self.replay_from],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()
        return self

    @property
    def url(self) -> str:
        return f"http://{self.listen}"

    def metrics(self) -> dict[str, float]:
        """/metrics as {'name{labels}': value}."""
        text = requests.get(f"{self.url}/metrics", timeout=5).text
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                out[key] = float(value)
        return out

    def metric(self, key: str) -> float:
        try:
            return self.metrics().get(key, 0.0)
        except requests.RequestException:
            return 0.0

    def ready(self) -> int | None:
        try:
            return requests.get(f"{self.url}/readyz", timeout=5).status_code
        except requests.RequestException:
            return None

    def logs(self) -> list[dict]:
        entries = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                entries.append({"msg": line})
        return entries

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process is None:
            return 0
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            self.process = None

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)
        self.process = None


def successful_cycles(daemon: DaemonProcess) -> float:
    return daemon.metric('monitor_cycles_total{result="success"}')


def failed_cycles(daemon: DaemonProcess) -> float:
    return daemon.metric('monitor_cycles_total{result="error"}')


def alert_states(state_path: Path) -> dict[str, tuple]:
    """Each alert's state and its times, read from the state file as the daemon left it."""
    with StateStore(state_path) as store:
        return {fp: (a.alertname, a.state, a.active_since, a.fired_at, a.resolved_at)
                for fp, a in AlertRepository(store).alerts().items()}


@pytest.fixture
def proxy(prometheus):
    proxy = SlowProxy(prometheus.port)
    yield proxy
    proxy.close()


@pytest.fixture
def alertmanager():
    server = LocalAlertmanager().start()
    yield server
    server.stop()


@pytest.fixture
def daemon_config(sim_dir, proxy, tmp_path, alertmanager) -> Path:
    config = yaml.safe_load((sim_dir / "monitor.yaml").read_text())
    config["prometheus"] = {"url": proxy.url, "timeout": "2s"}
    config["state"] = {"path": str(tmp_path / "state.db")}
    config["slos"] = [str(sim_dir / "slos" / "*.yaml")]
    config["rules"] = [str(sim_dir / "rules" / "*.yaml")]
    for model in config["models"]:
        log = model.get("drift", {}).get("log")
        if log:
            log["path"] = str(sim_dir / log["path"])
    config["schedule"] = {"evaluate_every": f"{INTERVAL_S}s"}
    config["http"] = {"listen": f"127.0.0.1:{free_port()}"}
    config["reports"] = {"dir": str(tmp_path / "reports")}
    config["outputs"] = {"alertmanager": {"url": alertmanager.url, "allow_private": True}}
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def daemon(daemon_config, fleet_end, tmp_path, prometheus):
    # Replay from inside recommender's error spike (end-20h .. end-19h20m), so the
    # SLO page alert is active while the faults below happen.
    replay_from = (fleet_end - timedelta(hours=19, minutes=40)).isoformat()
    listen = yaml.safe_load(daemon_config.read_text())["http"]["listen"]
    process = DaemonProcess(daemon_config, replay_from, tmp_path / "daemon.log", listen).start()
    yield process
    if process.process is not None:
        process.stop(signal.SIGKILL)
    if not prometheus.running:
        prometheus.start()


def state_path_of(config: Path) -> Path:
    return Path(yaml.safe_load(config.read_text())["state"]["path"])


def firing_in_alertmanager(alertmanager) -> set[str]:
    return {a["labels"]["alertname"] for a in alertmanager.alerts() if a["status"]["state"] == "active"}


def test_a_prometheus_outage_changes_no_alert_and_readiness_follows_it(daemon, daemon_config, prometheus,
                                                                      alertmanager):
    wait_for(lambda: successful_cycles(daemon) >= 2, 120, "two successful cycles")
    assert daemon.ready() == 200
    before = alert_states(state_path_of(daemon_config))
    firing = {name for name, state, *_ in before.values() if state is AlertState.FIRING}
    assert firing, before
    # Firing alerts are re-pushed to Alertmanager every cycle, as Prometheus does.
    wait_for(lambda: firing <= firing_in_alertmanager(alertmanager), 30, "firing alerts in Alertmanager")

    prometheus.stop()
    try:
        failed_before = failed_cycles(daemon)
        wait_for(lambda: failed_cycles(daemon) >= failed_before + 3, 90, "three failed cycles")
        wait_for(lambda: daemon.ready() == 503, 3 * INTERVAL_S + 30, "/readyz to go unready")
        assert daemon.metric("monitor_query_errors_total") > 0
        during = alert_states(state_path_of(daemon_config))
        # No alert fired, resolved or went to no-data while Prometheus was down.
        assert {fp: s[:5] for fp, s in during.items()} == {fp: s[:5] for fp, s in before.items()}
        # ...and still firing in Alertmanager: failed cycles keep re-pushing the stored state.
        assert firing <= firing_in_alertmanager(alertmanager)
    finally:
        prometheus.start()
    successes = successful_cycles(daemon)
    wait_for(lambda: successful_cycles(daemon) > successes, 90, "a successful cycle after the outage")
    wait_for(lambda: daemon.ready() == 200, 30, "/readyz to recover")
    assert any("alert states unchanged" in e.get("msg", "") for e in daemon.logs())
    assert daemon.stop() == 0


def test_a_prometheus_slower_than_the_timeout_fails_cycles_without_changing_state(daemon, daemon_config, proxy):
    wait_for(lambda: successful_cycles(daemon) >= 1, 120, "a successful cycle")
    before = alert_states(state_path_of(daemon_config))
    proxy.delay_s = 3.0  # the config's timeout is 2s
    try:
        failed_before = failed_cycles(daemon)
        wait_for(lambda: failed_cycles(daemon) >= failed_before + 2, 120, "two timed-out cycles")
        assert alert_states(state_path_of(daemon_config)) == before
        messages = " ".join(e.get("msg", "") for e in daemon.logs())
        assert "no answer within 2s" in messages
    finally:
        proxy.delay_s = 0.0
    successes = successful_cycles(daemon)
    wait_for(lambda: successful_cycles(daemon) > successes, 120, "recovery once Prometheus is fast again")
    assert daemon.stop() == 0


def test_sigkill_mid_cycle_loses_and_duplicates_nothing(daemon, daemon_config, proxy):
    state_path = state_path_of(daemon_config)
    wait_for(lambda: successful_cycles(daemon) >= 2, 120, "two successful cycles")
    # Slow every query so the next cycle is certainly in flight when the kill lands.
    proxy.delay_s = 0.3
    started = sum(1 for e in daemon.logs() if e.get("msg", "").startswith("cycle started"))
    wait_for(lambda: sum(1 for e in daemon.logs() if e.get("msg", "").startswith("cycle started")) > started,
             60, "a new cycle to start")
    time.sleep(0.5)
    daemon.kill()
    proxy.delay_s = 0.0

    connection = sqlite3.connect(state_path)
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    connection.close()
    before = alert_states(state_path)

    daemon.start()
    wait_for(lambda: successful_cycles(daemon) >= 1, 120, "a successful cycle after the restart")
    after = alert_states(state_path)
    for fingerprint, (name, state, active_since, fired_at, _) in before.items():
        if state is AlertState.FIRING:
            assert after[fingerprint][1] is AlertState.FIRING and after[fingerprint][3] == fired_at, name
        if state is AlertState.PENDING:
            assert after[fingerprint][2] == active_since, name  # pending-since restored, not restarted
    with StateStore(state_path) as store:
        keys = [n.notification.idempotency_key for n in AlertRepository(store).notifications()]
    assert len(keys) == len(set(keys)), "a notification was queued twice"
    assert daemon.stop() == 0


def test_sighup_with_a_broken_config_keeps_the_old_one_running(daemon, daemon_config):
    wait_for(lambda: successful_cycles(daemon) >= 1, 120, "a successful cycle")
    good = daemon_config.read_text()
    daemon_config.write_text(good.replace("schedule:", "schedule:\n  evaluate_evry: 5s"))
    daemon.process.send_signal(signal.SIGHUP)
    wait_for(lambda: daemon.metric('monitor_config_reloads_total{result="error"}') == 1, 30, "the reload to be rejected")
    rejected = [e["msg"] for e in daemon.logs() if "config reload rejected" in e.get("msg", "")]
    assert rejected and f"{daemon_config}:" in rejected[0] and "evaluate_evry" in rejected[0]
    successes = successful_cycles(daemon)
    wait_for(lambda: successful_cycles(daemon) > successes, 60, "cycles to continue on the old config")

    daemon_config.write_text(good)
    daemon.process.send_signal(signal.SIGHUP)
    wait_for(lambda: daemon.metric('monitor_config_reloads_total{result="success"}') == 1, 30, "a good reload")
    assert daemon.ready() == 200
    assert daemon.stop(signal.SIGTERM) == 0


def test_sigterm_lets_the_in_flight_delivery_finish_then_exits_0(daemon_config, fleet_end, tmp_path, monkeypatch):
    """SIGTERM while a Slack post is in flight: the post completes, is recorded delivered, exit 0."""
    monkeypatch.setenv("MONITOR_TEST_SLACK_TOKEN", "xoxb-test-token")
    with SlackStandIn(token="xoxb-test-token") as slack:
        slow_slack = SlowProxy(slack.server.port, delay_s=2.0)
        try:
            config = yaml.safe_load(daemon_config.read_text())
            config["outputs"]["slack"] = {"channel": "#ml-alerts", "token_env": "MONITOR_TEST_SLACK_TOKEN",
                                          "base_url": f"{slow_slack.url}/api/", "allow_private": True}
            daemon_config.write_text(yaml.safe_dump(config, sort_keys=False))
            listen = config["http"]["listen"]
            # Inside recommender's error spike: its page fires and is posted to Slack.
            replay_from = (fleet_end - timedelta(hours=19, minutes=40)).isoformat()
            daemon = DaemonProcess(daemon_config, replay_from, tmp_path / "daemon-term.log", listen).start()
            try:
                wait_for(lambda: slow_slack.requests_seen > 0, 120, "a Slack post in flight")
                daemon.process.send_signal(signal.SIGTERM)
                assert daemon.process.wait(60) == 0
                daemon.process = None
            finally:
                if daemon.process is not None:
                    daemon.kill()
        finally:
            slow_slack.close()
        posted = slack.accepted("chat.postMessage")
    assert posted, "the in-flight post was cut off"
    with StateStore(state_path_of(daemon_config)) as store:
        deliveries = Outbox(store).deliveries(destination="slack")
    delivered = [d for d in deliveries if d.status is DeliveryStatus.DELIVERED]
    assert len(delivered) == len(posted) >= 1
    assert any("stopping" in e.get("msg", "") for e in daemon.logs())
