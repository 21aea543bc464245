"""The daemon's /metrics as Prometheus and its users read it: promtool's naming lint, content
negotiation, the standard collectors, the build info, and SLO series whose labels are the
generated rule files' labels.

The daemon here is `monitor run` as a real process, replaying the simulated fleet against
the session's real Prometheus, scraped over HTTP after its first cycle.
"""

from __future__ import annotations

import gzip
import os
import platform
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client import generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

import monitor
from monitor.cli import main
from monitor.daemon import Daemon
from monitor.outputs.metrics import SIGNAL_METRICS, SLO_EXPORTED_LABELS
from monitor.simulate.local_prometheus import free_port
from monitor.slo.rule_file import ID_LABELS
from monitor.timeutil import iso_z

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def promtool_lint(text: str) -> subprocess.CompletedProcess:
    """`promtool check metrics` (Prometheus's own parser and its naming lint) on an exposition."""
    return subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)


def write_fleet_config(directory: Path, sim_dir: Path, prometheus_url: str) -> Path:
    """The simulated fleet's config with a state file, reports and a free port of its own."""
    config = yaml.safe_load((sim_dir / "monitor.yaml").read_text())
    config["prometheus"]["url"] = prometheus_url
    config["state"] = {"path": str(directory / "state.db")}
    config["slos"] = [str(sim_dir / "slos" / "*.yaml")]
    config["rules"] = [str(sim_dir / "rules" / "*.yaml")]
    for model in config["models"]:
        if model.get("drift", {}).get("log"):
            model["drift"]["log"]["path"] = str(sim_dir / model["drift"]["log"]["path"])
    config["reports"] = {"dir": str(directory / "reports")}
    config["http"] = {"listen": f"127.0.0.1:{free_port()}"}
    path = directory / "monitor.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def config_path(sim_dir, prometheus, tmp_path) -> Path:
    return write_fleet_config(tmp_path, sim_dir, prometheus.url)


@pytest.fixture(scope="module")
def running_daemon(sim_dir, prometheus, fleet_end, tmp_path_factory):
    """`monitor run` in a subprocess, ready (its first cycle succeeded): (base URL, config path).

    One for the module: the tests only read what it serves.
    """
    directory = tmp_path_factory.mktemp("daemon")
    config_path = write_fleet_config(directory, sim_dir, prometheus.url)
    listen = yaml.safe_load(config_path.read_text())["http"]["listen"]
    log_path = directory / "daemon.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config_path),
             "--replay-from", iso_z(fleet_end - timedelta(hours=2))],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://{listen}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if requests.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the daemon's first cycle did not finish\n" + log_path.read_text()
            time.sleep(0.5)
        yield url, config_path
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.prometheus
def test_a_running_daemons_metrics_pass_promtools_lint_and_negotiate_openmetrics(running_daemon):
    daemon_url, _ = running_daemon
    # The Prometheus text format (what a scrape without OpenMetrics asks for).
    plain = requests.get(f"{daemon_url}/metrics", headers={"Accept": "text/plain"}, timeout=10)
    assert plain.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    checked = promtool_lint(plain.text)
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stdout + checked.stderr
    families = {f.name: f for f in text_string_to_metric_families(plain.text)}
    # The cycle ran and its signals are exported (a lint of an empty page would prove nothing).
    assert families["monitor_cycles"].type == "counter"
    assert {s.labels["result"]: s.value for s in families["monitor_cycles"].samples}["success"] >= 1
    for name in ("monitor_slo_burn_rate", "monitor_gpu_usage_seconds", "monitor_fleet_gpu_usage_seconds",
                 "monitor_drift_psi", "monitor_cost_per_1k_inferences_usd"):
        assert families[name].samples, name
    # The standard process and Python collectors, on the daemon's own registry.
    for name in ("process_cpu_seconds", "process_resident_memory_bytes", "process_start_time_seconds",
                 "process_open_fds", "python_info", "python_gc_collections"):
        assert families[name].samples, name
    [build] = families["monitor_build_info"].samples
    assert build.value == 1
    assert build.labels == {"version": monitor.__version__, "python_version": platform.python_version()}

    # OpenMetrics when asked (as Prometheus does first), the same families, and # EOF.
    negotiated = requests.get(f"{daemon_url}/metrics", headers={"Accept": OPENMETRICS}, timeout=10)
    assert negotiated.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert negotiated.text.endswith("# EOF\n")
    om = {f.name: f for f in openmetrics_families(negotiated.text)}
    assert om["monitor_cycles"].type == "counter" and om["monitor_build"].type == "info"
    assert set(om) >= {"monitor_slo_burn_rate", "process_cpu_seconds", "monitor_deliveries"}
    # gzip when accepted.
    raw = requests.get(f"{daemon_url}/metrics", headers={"Accept-Encoding": "gzip"}, timeout=10, stream=True).raw
    assert raw.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(raw.read()).decode().startswith("# HELP")


@pytest.mark.parametrize("exposition, complaint", [
    ("# HELP monitor_gpu_hours GPU-hours\n# TYPE monitor_gpu_hours gauge\nmonitor_gpu_hours 1\n",
     "use base unit"),
    ("# HELP monitor_expired_total Expired\n# TYPE monitor_expired_total gauge\nmonitor_expired_total 1\n",
     "non-counter metrics should not have \"_total\" suffix"),
    ("# HELP monitor_deliveries Deliveries\n# TYPE monitor_deliveries counter\nmonitor_deliveries 1\n",
     "counter metrics should have \"_total\" suffix"),
], ids=["hours instead of seconds is flagged", "_total on a gauge is flagged", "a counter without _total is flagged"])
def test_promtools_lint_flags_the_names_the_daemon_no_longer_uses(exposition, complaint):
    """The lint above is not vacuous: promtool reports exactly the mistakes the renames fixed."""
    checked = promtool_lint(exposition)
    assert checked.returncode != 0 and complaint in checked.stdout + checked.stderr, checked.stdout + checked.stderr


def test_no_exported_signal_is_named_in_a_non_base_unit_or_as_a_counter():
    for signal_name, (metric, _help) in SIGNAL_METRICS.items():
        # Signals are gauges of a value now (or over a trailing window), never counts since start.
        assert not metric.endswith("_total"), metric
        for unit in ("hours", "minutes", "days", "milliseconds", "percent"):
            assert f"_{unit}" not in metric, (signal_name, metric)


@pytest.mark.prometheus
def test_slo_series_on_metrics_and_in_the_generated_rule_file_use_the_same_labels(running_daemon, capsys):
    daemon_url, config_path = running_daemon
    text = requests.get(f"{daemon_url}/metrics", timeout=10).text
    exported = {f.name: f for f in text_string_to_metric_families(text) if f.name.startswith("monitor_slo_")}
    assert main(["slo", "rules", "--config", str(config_path)]) == 0
    rules = [r for g in yaml.safe_load(capsys.readouterr().out)["groups"] for r in g["rules"] if "record" in r]

    # Sloth's names on both sides: the generator's ids, and the window label it records per window.
    assert set(SLO_EXPORTED_LABELS.values()) == {*ID_LABELS, "sloth_window"}
    windowed = [r for r in rules if r["record"].startswith("slo:sli_error:ratio_rate")]
    recorded_windows = {(r["labels"]["sloth_id"], r["labels"]["sloth_window"]) for r in windowed}
    recorded_ids = {tuple(r["labels"][k] for k in ID_LABELS) for r in windowed}
    for name in ("monitor_slo_error_ratio", "monitor_slo_burn_rate"):
        samples = exported[name].samples
        assert samples, name
        for sample in samples:
            assert set(sample.labels) == {*ID_LABELS, "sloth_window"}, (name, sample.labels)
        # Every exported (SLO, window) is a series the rule file records under the same label values.
        assert {(s.labels["sloth_id"], s.labels["sloth_window"]) for s in samples} <= recorded_windows
    for name in ("monitor_slo_error_budget_remaining_ratio", "monitor_slo_page_alert", "monitor_slo_ticket_alert"):
        samples = exported[name].samples
        assert samples and all(set(s.labels) == set(ID_LABELS) for s in samples), name
        # A condition that cannot be decided (a quiet service) is absent, so a subset; never other ids.
        assert {tuple(s.labels[k] for k in ID_LABELS) for s in samples} <= recorded_ids, name
    budgets = exported["monitor_slo_error_budget_remaining_ratio"].samples
    assert {tuple(s.labels[k] for k in ID_LABELS) for s in budgets} == recorded_ids


@pytest.mark.prometheus
def test_a_rollback_request_is_counted_for_the_dashboards_annotation(fleet, config_path):
    """The drifting canary of the simulated fleet: the cycle that requests its rollback counts it."""
    incident = fleet.incident("drift")
    deployed = datetime.fromisoformat(incident["start"].replace("Z", "+00:00"))
    config = yaml.safe_load(config_path.read_text())
    config["alerting"] = {"last_known_good_after": "1h"}  # v1 becomes last-known-good before the canary
    config["rules"] = [str(Path(monitor.__file__).parent / "default_rules" / "*.yaml")]  # drift's rollback action
    config_path.write_text(yaml.safe_dump(config))
    counted = []
    # Inactive, pending, then firing: ModelPredictionDrift's `for` is 15m, and each daemon's replay
    # clock starts a few microseconds after its instant, so the third step is well past it.
    for offset_h in (-1.0, 0.25, 0.75):
        daemon = Daemon(str(config_path), replay_from=deployed + timedelta(hours=offset_h))
        try:
            report = daemon.run_one_cycle()
            assert report is not None and report.ok
            requested = [q for q in report.notifications if q.notification.kind.value == "rollback.requested"]
            families = {f.name: f for f in text_string_to_metric_families(
                generate_latest(daemon.metrics.registry).decode())}
            counted.append(({(s.labels["model"], s.labels["type"]): s.value
                             for s in families["monitor_rollback_events"].samples}, len(requested)))
        finally:
            daemon.store.close()
            daemon.source.close()
    assert counted[:2] == [({}, 0), ({}, 0)]
    assert counted[2] == ({(incident["model"], "rollback.requested"): 1.0}, 1)
