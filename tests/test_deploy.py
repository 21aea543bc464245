"""deploy/ files, each checked by the linter that exists for it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from monitor.outputs.metrics import SIGNAL_METRICS, DaemonMetrics

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
VENV_BIN = Path(sys.executable).parent
K8S_CORE = ["namespace.yaml", "configmap.yaml", "secret.example.yaml", "persistentvolumeclaim.yaml",
            "deployment.yaml", "service.yaml"]


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)


def exported_metric_names() -> set[str]:
    """Every metric name the daemon's /metrics can serve."""
    metrics = DaemonMetrics()
    names = {m for name, (m, _) in SIGNAL_METRICS.items()}
    for family in metrics.registry.collect():
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


def test_the_self_alerts_pass_promtool_and_match_the_prometheusrule(tmp_path):
    rules_file = DEPLOY / "prometheus" / "monitor-alerts.rules.yml"
    assert run(["promtool", "check", "rules", str(rules_file)]).returncode == 0
    operator = yaml.safe_load((DEPLOY / "kubernetes" / "prometheusrule.yaml").read_text())
    assert operator["kind"] == "PrometheusRule"
    assert operator["spec"] == yaml.safe_load(rules_file.read_text())
    extracted = tmp_path / "operator-rules.yml"
    extracted.write_text(yaml.safe_dump(operator["spec"]))
    result = run(["promtool", "check", "rules", str(extracted)])
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = {r["alert"] for g in operator["spec"]["groups"] for r in g["rules"]}
    assert {"MonitorCyclesFailing", "MonitorOutboxBacklog", "MonitorNoSuccessfulCycle"} <= alerts


def test_the_self_alerts_only_use_metrics_the_daemon_exports():
    rules = yaml.safe_load((DEPLOY / "prometheus" / "monitor-alerts.rules.yml").read_text())
    names = exported_metric_names()
    for group in rules["groups"]:
        for rule in group["rules"]:
            used = set(re.findall(r"\bmonitor_[a-z0-9_]+", rule["expr"]))
            assert used <= names, (rule["alert"], used - names)
            # Every alert names its runbook, which the README must have.
            anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
            assert f"### {rule['alert']}" in (DEPLOY.parent / "README.md").read_text(), anchor


def test_the_prometheus_scrape_config_passes_promtool():
    result = run(["promtool", "check", "config", "prometheus.yml"], cwd=DEPLOY / "prometheus")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_the_systemd_unit_verifies(tmp_path):
    unit = (DEPLOY / "systemd" / "monitor.service").read_text()
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit and "NoNewPrivileges=yes" in unit
    # verify checks that ExecStart's binary exists: point it at this checkout's install.
    local = tmp_path / "monitor.service"
    local.write_text(unit.replace("/usr/local/bin/monitor", str(VENV_BIN / "monitor")))
    result = run(["systemd-analyze", "verify", str(local)])
    assert result.returncode == 0 and str(local) not in result.stderr, result.stderr
    # The same check fails on a broken unit, so the pass above means something.
    broken = tmp_path / "broken.service"
    broken.write_text(local.read_text().replace("Type=exec", "Type=bogus"))
    assert str(broken) in run(["systemd-analyze", "verify", str(broken)]).stderr


def test_the_kubernetes_manifests_match_the_api_schemas(tmp_path):
    validator = str(VENV_BIN / "kubernetes-validate")
    result = run([validator, *(str(DEPLOY / "kubernetes" / f) for f in K8S_CORE)])
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "deployment.yaml"
    broken.write_text((DEPLOY / "kubernetes" / "deployment.yaml").read_text().replace("replicas: 1", "replicas: one"))
    assert run([validator, str(broken)]).returncode != 0


def test_the_deployment_runs_one_hardened_replica_with_probes():
    deployment = yaml.safe_load((DEPLOY / "kubernetes" / "deployment.yaml").read_text())
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    secrets = [v for v in pod["volumes"] if "secret" in v]
    assert secrets and secrets[0]["secret"]["secretName"] == "monitor-secrets"
    # The ConfigMap holds no secret values, only references to the mounted files.
    config = yaml.safe_load((DEPLOY / "kubernetes" / "configmap.yaml").read_text())["data"]["monitor.yaml"]
    assert "token_file:" in config and "xoxb" not in config and "whsec_" not in config
    monitor = yaml.safe_load((DEPLOY / "kubernetes" / "servicemonitor.yaml").read_text())
    service = yaml.safe_load((DEPLOY / "kubernetes" / "service.yaml").read_text())
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]


def test_the_container_image_passes_hadolint_and_runs_as_non_root():
    dockerfile = DEPLOY / "container" / "Dockerfile"
    result = run([str(VENV_BIN / "hadolint"), str(dockerfile)])
    assert result.returncode == 0, result.stdout + result.stderr
    text = dockerfile.read_text()
    assert re.search(r"^USER 10001", text, re.M)
    assert "monitor warm-cache" in text


def test_the_images_warm_cache_step_compiles_the_kernels_into_the_cache_dir(tmp_path):
    """What the Dockerfile's `monitor warm-cache` leaves behind: numba's cache files, in NUMBA_CACHE_DIR."""
    cache = tmp_path / "numba-cache"
    result = run([str(VENV_BIN / "monitor"), "warm-cache"], env={**os.environ, "NUMBA_CACHE_DIR": str(cache)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "drift kernels ready" in result.stdout
    assert list(cache.rglob("*.nbi")) and list(cache.rglob("*.nbc"))


def test_the_compose_file_matches_the_compose_specification(tmp_path):
    checker = str(VENV_BIN / "check-jsonschema")
    compose_file = DEPLOY / "compose" / "compose.yaml"
    result = run([checker, "--builtin-schema", "vendor.compose-spec", str(compose_file)])
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "compose.yaml"
    broken.write_text(compose_file.read_text().replace("service_healthy", "service_happy"))
    assert run([checker, "--builtin-schema", "vendor.compose-spec", str(broken)]).returncode != 0


def test_the_compose_file_wires_prometheus_the_fleet_and_the_daemon():
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"simulate", "backfill", "prometheus", "monitor"}
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
    assert "--storage.tsdb.retention.time=3650d" in services["prometheus"]["command"]
    assert services["monitor"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    for volume in services["prometheus"]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("."):
            assert (DEPLOY / "compose" / source).exists(), source


def test_the_grafana_dashboard_queries_parse_and_use_exported_metrics(tmp_path):
    dashboard = json.loads((DEPLOY / "grafana" / "monitor-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 10
    names = exported_metric_names()
    for expr in exprs:
        used = set(re.findall(r"\bmonitor_[a-z0-9_]+", expr))
        assert used and used <= names, (expr, used - names)
    # promtool parses every query when they are written as recording rules.
    concrete = [e.replace("$instance", ".*") for e in exprs]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": e} for i, e in enumerate(concrete)]}]}
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    result = run(["promtool", "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
