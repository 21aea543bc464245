"""What a cycle reads from the config's files, and when."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import timedelta

import yaml

from monitor.alerting.repository import AlertRepository
from monitor.config import load_config
from monitor.pipeline import evaluate_slo_signals, load_definitions, run_cycle
from monitor.store import StateStore


def test_the_config_evaluation_mode_reaches_the_slo_evaluation(prom, fleet_config_path, fleet_end):
    config = load_config(fleet_config_path)
    specs = load_definitions(config).slo_specs
    at = fleet_end - timedelta(hours=2)
    direct = evaluate_slo_signals(prom, config, specs, at)
    # No `monitor slo rules` recording rules are loaded in this Prometheus: recorded
    # mode finds no recorded series, so every value is no data rather than direct's.
    recorded = evaluate_slo_signals(prom, replace(config, slo_evaluation="recorded"), specs, at)
    assert any(s.value is not None for s in direct if s.name == "slo_burn_rate")
    assert all(s.value is None for s in recorded if s.name == "slo_burn_rate")


def test_loaded_definitions_are_used_until_reloaded(prom, fleet_config_path, sim_dir, fleet_end, tmp_path):
    shutil.copytree(sim_dir / "rules", tmp_path / "rules")
    settings = yaml.safe_load(fleet_config_path.read_text())
    settings["rules"] = [str(tmp_path / "rules" / "*.yaml")]
    settings["slos"] = [str(sim_dir / "slos" / "*.yaml")]
    settings["models"] = [m for m in settings["models"] if "log" not in m.get("drift", {})]
    (tmp_path / "monitor.yaml").write_text(yaml.safe_dump(settings))
    config = load_config(tmp_path / "monitor.yaml")
    definitions = load_definitions(config)
    # A rule file half-edited on disk does not reach a running daemon's cycle.
    (tmp_path / "rules" / "slo.yaml").write_text("version: monitor/v1\ngroups: [")
    with StateStore(tmp_path / "state.db") as store:
        report = run_cycle(config, store, prom, fleet_end - timedelta(hours=19, minutes=40),
                           definitions=definitions)
        logged = AlertRepository(store).transitions()
    assert report.ok
    assert any(a.alertname.startswith("SLOErrorBudgetBurn") for a in report.alerts.values())
    # The transitions log reads back exactly what the cycle reported.
    assert [(t.fingerprint, t.alertname, dict(t.labels), t.from_state, t.to_state, t.at) for t in logged] == [
        (t.fingerprint, t.alertname, dict(t.labels), t.from_state, t.to_state, t.at) for t in report.transitions]
    assert logged
