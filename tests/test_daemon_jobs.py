"""The daemon's jobs and plumbing, in process: the weekly report job, readiness, logs, /metrics."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta

import pytest
import requests
import yaml
from prometheus_client.utils import floatToGoString

from monitor.daemon import Daemon, weekly_trigger
from monitor.http_endpoints import HealthServer, parse_listen
from monitor.log_format import configure_logging, current_cycle_id
from monitor.secrets import read_secret
from monitor.simulate.local_prometheus import free_port


@pytest.fixture
def config_path(sim_dir, prometheus, tmp_path):
    config = yaml.safe_load((sim_dir / "monitor.yaml").read_text())
    config["prometheus"]["url"] = prometheus.url
    config["state"] = {"path": str(tmp_path / "state.db")}
    config["slos"] = [str(sim_dir / "slos" / "*.yaml")]
    config["rules"] = [str(sim_dir / "rules" / "*.yaml")]
    for model in config["models"]:
        if model.get("drift", {}).get("log"):
            model["drift"]["log"]["path"] = str(sim_dir / model["drift"]["log"]["path"])
    config["reports"] = {"dir": str(tmp_path / "reports"), "weekly": "mon 08:00"}
    config["http"] = {"listen": f"127.0.0.1:{free_port()}"}
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_weekly_job_writes_the_last_complete_weeks_report(config_path, fleet_end, tmp_path):
    # Monday 08:00 after the simulated week: the job reports on ISO week 2026-W47.
    daemon = Daemon(str(config_path), replay_from=fleet_end + timedelta(hours=8))
    try:
        report = daemon.run_one_cycle()
        assert report.ok
        daemon.write_weekly_report()
    finally:
        daemon.store.close()
    written = sorted((tmp_path / "reports").glob("*/report.json"))
    assert [p.parent.name for p in written] == ["2026-W47"]
    assert (tmp_path / "reports" / "index.html").exists()


def test_readiness_needs_a_recent_successful_cycle(config_path, fleet_end):
    daemon = Daemon(str(config_path), replay_from=fleet_end - timedelta(hours=2))
    try:
        assert daemon.readiness() == (False, "no successful cycle yet")
        assert daemon.run_one_cycle().ok
        ready, reason = daemon.readiness()
        assert ready, reason
        # The cycle's signals are what /metrics exports.
        server = HealthServer(f"127.0.0.1:{free_port()}", daemon.metrics.registry, daemon.readiness).start()
        try:
            text = requests.get(f"http://{server.address}/metrics", timeout=5).text
            assert requests.get(f"http://{server.address}/readyz", timeout=5).status_code == 200
            assert requests.get(f"http://{server.address}/healthz", timeout=5).text == "ok\n"
        finally:
            server.stop()
        assert 'monitor_cycles_total{result="success"} 1.0' in text
        assert "monitor_slo_burn_rate{" in text and "monitor_cost_per_1k_inferences_usd{" in text
        assert "monitor_gpu_utilization_ratio{" in text and "monitor_drift_psi{" in text
        # The load the cycle put on Prometheus, as the server's query stats counted it.
        # As the exposition writes floats (Go's formatting: 1.221326e+06 from a million on).
        assert f"monitor_prometheus_samples_total {floatToGoString(daemon.source.stats.samples)}" in text
        assert daemon.source.stats.samples > 0
    finally:
        daemon.store.close()


def test_json_logs_carry_the_cycle_id_and_never_a_secret(monkeypatch):
    monkeypatch.setenv("MONITOR_TEST_TOKEN", "xoxb-very-secret-value")
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    secret = read_secret("MONITOR_TEST_TOKEN", None, "token")
    token = current_cycle_id.set("c0ffee12")
    try:
        logging.getLogger("monitor.test").info("a library echoed %s by mistake", secret)
    finally:
        current_cycle_id.reset(token)
    entry = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert entry["cycle_id"] == "c0ffee12" and entry["level"] == "info"
    assert secret not in stream.getvalue() and "[redacted]" in entry["msg"]
    configure_logging("WARNING", "plain")


@pytest.mark.parametrize("spec, expected", [("mon 08:00", ("mon", "8", "0")), ("Fri 17:30", ("fri", "17", "30"))])
def test_the_weekly_schedule_is_a_cron_in_local_time(spec, expected):
    trigger = weekly_trigger(spec)
    fields = {f.name: str(f) for f in trigger.fields}
    assert (fields["day_of_week"], fields["hour"], fields["minute"]) == expected


@pytest.mark.parametrize("address, expected", [("127.0.0.1:9464", ("127.0.0.1", 9464)),
                                               ("[::1]:9464", ("::1", 9464)), (":9464", ("0.0.0.0", 9464))])
def test_listen_addresses(address, expected):
    assert parse_listen(address) == expected
