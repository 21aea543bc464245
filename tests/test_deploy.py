"""deploy/ files, each checked by the linter that exists for it."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import promql_parser
import pytest
import yaml

from monitor.config import StateConfig

from monitor.outputs.metrics import SIGNAL_METRICS, DaemonMetrics
from monitor.simulate.writers import fleet_config

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
VENV_BIN = Path(sys.executable).parent


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)


def exported_metric_names() -> set[str]:
    """Every metric name the daemon's /metrics can serve."""
    metrics = DaemonMetrics()
    names = {m for name, (m, _) in SIGNAL_METRICS.items()}
    for family in metrics.registry.collect():
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"),
                    "info": ("_info",)}.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


def test_the_self_alerts_pass_promtool_and_match_the_prometheusrule(tmp_path):
    rules_file = DEPLOY / "prometheus" / "monitor-alerts.rules.yml"
    assert run(["promtool", "check", "rules", str(rules_file)]).returncode == 0
    operator = yaml.safe_load((DEPLOY / "kubernetes" / "base" / "prometheusrule.yaml").read_text())
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
    [job] = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
    assert job["honor_labels"] is True


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


# --- Kubernetes: two variants over a shared base, each a kustomization of plain resources ---

K8S = DEPLOY / "kubernetes"
VARIANTS = ("single-sqlite", "ha-postgresql")
# The PostgreSQL backend's config keys (state.url, state.password_file) come with the
# state-store branch; until they are known, the HA config cannot pass `monitor check`.
STATE_URL_KNOWN = "url" in {f.name for f in dataclasses.fields(StateConfig)}
ha_needs_state_url = pytest.mark.xfail(not STATE_URL_KNOWN, strict=True,
                                       reason="state.url (PostgreSQL) is not a config key on this branch yet")


def kustomize_files(directory: Path) -> list[Path]:
    """The manifest files a kustomization lists, following directories (`../base`) as kustomize does.

    Our kustomizations list resources and nothing else (no patches, generators or
    name prefixes), so the objects they apply are exactly these files' documents.
    """
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(kustomization) <= {"apiVersion", "kind", "resources"}, f"{directory}: more than resources"
    files = []
    for entry in kustomization["resources"]:
        path = (directory / entry).resolve()
        files += kustomize_files(path) if path.is_dir() else [path]
    return files


def variant_objects(variant: str) -> list[dict]:
    """What `kubectl apply -k` applies for the variant, plus the example Secrets created out of band."""
    files = kustomize_files(K8S / variant)
    files += sorted((K8S / "base").glob("*.example.yaml")) + sorted((K8S / variant).glob("*.example.yaml"))
    return [doc for f in files for doc in yaml.safe_load_all(f.read_text()) if doc]


def find(objects: list[dict], kind: str, name: str | None = None) -> dict:
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(matches) == 1, (kind, name, len(matches))
    return matches[0]


def _source_files(objects: list[dict], source: dict) -> dict[str, str]:
    """A configMap or secret volume source -> {relative path: content}, honouring `items`."""
    if "configMap" in source:
        data = find(objects, "ConfigMap", source["configMap"]["name"])["data"]
        items = source["configMap"].get("items")
    else:
        secret = find(objects, "Secret", source["secret"].get("secretName") or source["secret"]["name"])
        data = {**{k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()},
                **secret.get("stringData", {})}
        items = source["secret"].get("items")
    if items is None:
        return dict(data)
    return {item["path"]: data[item["key"]] for item in items}


def render_pod_filesystem(objects: list[dict], root: Path) -> dict:
    """Write the monitor container's volumes under `root` exactly where its volumeMounts put them.

    Returns the container. Everything comes from the manifests (mount paths, volume
    kinds, projected sources and their items); nothing about the layout is assumed here.
    """
    pod = find(objects, "Deployment", "monitor")["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "monitor")
    volumes = {v["name"]: v for v in pod["volumes"]}
    # Outer mounts first, so a nested mount (secrets inside the config dir) lands inside.
    for mount in sorted(container["volumeMounts"], key=lambda m: m["mountPath"].count("/")):
        volume = volumes[mount["name"]]
        target = root / mount["mountPath"].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        if "projected" in volume:
            sources = volume["projected"]["sources"]
        elif "configMap" in volume or "secret" in volume:
            sources = [volume]
        else:
            assert set(volume) & {"emptyDir", "persistentVolumeClaim"}, volume
            sources = []
        for source in sources:
            for relative, content in _source_files(objects, source).items():
                path = target / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)
    return container


def config_path_in(container: dict, root: Path) -> Path:
    args = container["args"]
    return root / args[args.index("--config") + 1].lstrip("/")


def file_references(node, key: str = "") -> list[str]:
    """Every `*_file` value in a config document."""
    if isinstance(node, dict):
        return [v for k, child in node.items() for v in file_references(child, k)]
    if isinstance(node, list):
        return [v for child in node for v in file_references(child, key)]
    return [node] if key.endswith("_file") and isinstance(node, str) else []


def monitor_check(config: Path) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "monitor", "check", "--config", str(config)], cwd=config.parent)


@pytest.mark.parametrize("variant", [VARIANTS[0], pytest.param(VARIANTS[1], marks=ha_needs_state_url)])
def test_monitor_check_passes_on_the_config_laid_out_as_the_pod_mounts_it(variant, tmp_path):
    objects = variant_objects(variant)
    container = render_pod_filesystem(objects, tmp_path)
    config = config_path_in(container, tmp_path)
    result = monitor_check(config)
    assert result.returncode == 0, result.stdout + result.stderr
    slo_files = len(find(objects, "ConfigMap", "monitor-slos")["data"])
    rule_files = len(find(objects, "ConfigMap", "monitor-rules")["data"])
    assert f"{slo_files} SLO files, {rule_files} rule files" in result.stdout, result.stdout
    # `check` reads secrets only when used: every *_file the config names must be mounted.
    document = yaml.safe_load(config.read_text())
    references = file_references(document)
    assert references and all((tmp_path / ref.lstrip("/")).is_file() for ref in references), references
    # With a read-only root file system, what the daemon writes must be on a writable volume.
    writable = [m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")]
    written = [document["reports"]["dir"]] + ([document["state"]["path"]] if "path" in document["state"] else [])
    for path in written:
        assert any(path.startswith(mount + "/") for mount in writable), (path, writable)


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_config_mounted_flat_fails_the_check_as_the_old_manifests_did(variant, tmp_path):
    """The layout matters: one ConfigMap mounted flat at /etc/monitor (the old manifests) has no slos/."""
    objects = variant_objects(variant)
    pod = find(objects, "Deployment", "monitor")["spec"]["template"]["spec"]
    config_volume = next(v for v in pod["volumes"] if v["name"] == "config")
    config_volume.pop("projected")
    config_volume["configMap"] = {"name": "monitor-config"}
    config = config_path_in(render_pod_filesystem(objects, tmp_path), tmp_path)
    result = monitor_check(config)
    assert result.returncode == 1 and "no file matches 'slos/*.yaml'" in result.stderr, result.stderr


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_spec_and_rule_key_reaches_the_pod(variant):
    """A key added to a ConfigMap without an item in the projected volume would never be seen."""
    objects = variant_objects(variant)
    pod = find(objects, "Deployment", "monitor")["spec"]["template"]["spec"]
    sources = [s["configMap"] for v in pod["volumes"] if "projected" in v for s in v["projected"]["sources"]
               if "configMap" in s]
    for name in ("monitor-config", "monitor-slos", "monitor-rules"):
        keys = set(find(objects, "ConfigMap", name)["data"])
        projected = {item["key"] for s in sources if s["name"] == name for item in s.get("items", [])}
        assert keys == projected, (name, keys ^ projected)


def test_the_rule_files_in_the_configmap_are_the_shipped_defaults():
    data = find(variant_objects("single-sqlite"), "ConfigMap", "monitor-rules")["data"]
    assert {"slo.yaml", "drift.yaml", "cost.yaml", "monitor.yaml"} <= set(data)
    for key, text in data.items():
        assert text == (DEPLOY.parent / "rules" / key).read_text(), key


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_kubernetes_manifests_match_the_api_schemas(variant, tmp_path):
    validator = str(VENV_BIN / "kubernetes-validate")
    files = kustomize_files(K8S / variant) + sorted(K8S.glob("*/*.example.yaml"))
    result = run([validator, "--strict", *map(str, files)])
    assert result.returncode == 0, result.stdout + result.stderr
    # Kubernetes has no schema for the operator's kinds: the PrometheusRule is checked
    # against the operator's CRD; the ServiceMonitor's fields are asserted below.
    crd = yaml.safe_load((Path(__file__).parent / "fixtures" / "prometheus-operator" /
                          "monitoring.coreos.com_prometheusrules.yaml").read_text())
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]
    # OpenAPI v3 schemas are JSON Schema draft 4 plus extensions.
    jsonschema.Draft4Validator(schema).validate(find(variant_objects(variant), "PrometheusRule"))
    broken = tmp_path / "deployment.yaml"
    broken.write_text((K8S / variant / "deployment.yaml").read_text().replace("replicas: ", "replicas: one #"))
    assert run([validator, str(broken)]).returncode != 0


def _deployment(variant: str) -> tuple[dict, dict, dict]:
    """The variant's Deployment, its pod spec and the monitor container."""
    deployment = find(variant_objects(variant), "Deployment", "monitor")
    pod = deployment["spec"]["template"]["spec"]
    return deployment, pod, next(c for c in pod["containers"] if c["name"] == "monitor")


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_runs_hardened_pods_with_probes_and_secrets_from_files(variant):
    objects = variant_objects(variant)
    deployment, pod, container = _deployment(variant)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "monitor-secrets" in [v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v]
    # The ConfigMap holds no secret values, only references to the mounted files.
    config = find(objects, "ConfigMap", "monitor-config")["data"]["monitor.yaml"]
    assert "token_file:" in config and "xoxb" not in config and "whsec_" not in config
    assert "REPLACE-ME" not in config and "password:" not in config
    service, monitor = find(objects, "Service"), find(objects, "ServiceMonitor")
    assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    # The daemon's series carry `model`/`service` labels of their own: kept, not renamed exported_*.
    assert endpoint["honorLabels"] is True


def test_the_sqlite_variant_is_one_replica_recreated():
    deployment, pod, _ = _deployment("single-sqlite")
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claims == [find(variant_objects("single-sqlite"), "PersistentVolumeClaim")["metadata"]["name"]]


def test_the_postgresql_variant_rolls_two_replicas_under_a_disruption_budget():
    objects = variant_objects("ha-postgresql")
    deployment, pod, container = _deployment("ha-postgresql")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    budget = find(objects, "PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    assert 1 <= budget["spec"]["minAvailable"] < spec["replicas"]  # one may be evicted, never both
    assert not [v for v in pod["volumes"] if "persistentVolumeClaim" in v]  # the state is in PostgreSQL
    assert any(c["topologyKey"] == "kubernetes.io/hostname" for c in pod["topologySpreadConstraints"])
    # The database password comes from a Secret, mounted where state.password_file says; not in the URL.
    state = yaml.safe_load(find(objects, "ConfigMap", "monitor-config")["data"]["monitor.yaml"])["state"]
    user_info = state["url"].split("//", 1)[1].split("@", 1)[0]
    assert state["url"].startswith("postgresql://") and ":" not in user_info
    mount = max((m for m in container["volumeMounts"] if state["password_file"].startswith(m["mountPath"] + "/")),
                key=lambda m: len(m["mountPath"]))  # the innermost mount holds the file
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "monitor-postgres"


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


COMPOSE = DEPLOY / "compose"


def compose_services() -> dict:
    return yaml.safe_load((COMPOSE / "compose.yaml").read_text())["services"]


def test_the_compose_file_runs_two_replicas_on_postgresql_beside_prometheus_and_the_fleet():
    services = compose_services()
    assert set(services) == {"simulate", "backfill", "prometheus", "postgres", "monitor-1", "monitor-2"}
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
    assert "--storage.tsdb.retention.time=3650d" in services["prometheus"]["command"]
    replicas = [services["monitor-1"], services["monitor-2"]]
    # The same daemon twice (one anchor), on different host ports, after its dependencies are healthy.
    assert {k: v for k, v in replicas[0].items() if k != "ports"} == {k: v for k, v in replicas[1].items()
                                                                     if k != "ports"}
    assert replicas[0]["ports"] != replicas[1]["ports"]
    assert replicas[0]["depends_on"] == {"prometheus": {"condition": "service_healthy"},
                                         "postgres": {"condition": "service_healthy"}}
    # The password reaches both the database and the daemon only as a secret file.
    assert "postgres-password" in services["postgres"]["secrets"] and "postgres-password" in replicas[0]["secrets"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres-password"
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE / source).exists(), source


def test_the_compose_replicas_config_is_the_simulators_but_for_the_shared_state():
    services = compose_services()
    command = services["monitor-1"]["command"]
    config_in_container = command[command.index("--config") + 1]
    [mount] = [v for v in services["monitor-1"]["volumes"] if v.split(":")[1] == config_in_container]
    config = yaml.safe_load((COMPOSE / mount.split(":")[0]).read_text())
    expected = fleet_config("http://prometheus:9090")
    assert {k: v for k, v in config.items() if k != "state"} == {k: v for k, v in expected.items() if k != "state"}
    user, host = config["state"]["url"].removeprefix("postgresql://").split("@")
    assert ":" not in user and host.startswith("postgres:5432/")  # no password in the URL; the service's name
    assert config["state"]["password_file"] == "/run/secrets/postgres-password"
    environment = services["postgres"]["environment"]
    assert user == environment["POSTGRES_USER"] and host.endswith("/" + environment["POSTGRES_DB"])


@ha_needs_state_url
def test_monitor_check_passes_on_the_compose_replicas_config_beside_the_simulated_fleet(sim_dir, tmp_path):
    """As the container sees it: the simulator's output in /sim, the replicas' config mounted into it."""
    for entry in sim_dir.iterdir():
        (tmp_path / entry.name).symlink_to(entry)
    shutil.copy(COMPOSE / "monitor-ha.yaml", tmp_path / "monitor-ha.yaml")
    (tmp_path / "postgres-password").write_text("not-used-by-check\n")
    config = tmp_path / "monitor-ha.yaml"
    config.write_text(config.read_text().replace("/run/secrets/postgres-password", str(tmp_path / "postgres-password")))
    result = monitor_check(config)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_prometheus_scrapes_both_replicas_and_passes_promtool(tmp_path):
    services = compose_services()
    scrape = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    [job] = scrape["scrape_configs"]
    # Each replica at its container port, on the Compose network.
    replicas = {name: services[name]["ports"][0].rsplit(":", 1)[1] for name in ("monitor-1", "monitor-2")}
    assert sorted(job["static_configs"][0]["targets"]) == sorted(f"{n}:{port}" for n, port in replicas.items())
    assert job["honor_labels"] is True
    # promtool checks the rule files it names: lay them out as the container mounts them.
    for volume in services["prometheus"]["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith(".") and target.startswith("/etc/prometheus/"):
            shutil.copy(COMPOSE / source, tmp_path / Path(target).name)
    scrape["rule_files"] = [str(tmp_path / Path(f).name) for f in scrape["rule_files"]]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(scrape))
    result = run(["promtool", "check", "config", str(tmp_path / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


DASHBOARD = DEPLOY / "grafana" / "monitor-dashboard.json"
# Grafana's built-in range variables, as concrete durations for parsing (the linter does the same).
RATE_INTERVAL, RANGE = "8869ms", "86400s"


def concrete(expr: str) -> str:
    """A dashboard query with its variables filled in, as PromQL Prometheus would receive."""
    return expr.replace("$__rate_interval", RATE_INTERVAL).replace("$__range", RANGE).replace(
        "$job", ".+").replace("$instance", ".+")


def dashboard_queries(dashboard: dict) -> list[str]:
    """Every panel target's and annotation's PromQL."""
    return ([t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
            + [a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a])


def test_the_grafana_dashboard_queries_parse_and_use_exported_metrics(tmp_path):
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = dashboard_queries(dashboard)
    assert len(exprs) >= 10
    names = exported_metric_names()
    variables = [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    for expr in exprs + variables:
        used = set(re.findall(r"\bmonitor_[a-z0-9_]+", expr))
        assert used and used <= names, (expr, used - names)
    # promtool parses every query when they are written as recording rules.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": concrete(e)} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    result = run(["promtool", "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


# --- grafana/dashboard-linter's rules (lint/rule_*.go), over the JSON ---
# The linter is a Go binary we cannot fetch offline; these are its checks, by its rule names.

TEMPLATED_DATASOURCES = {"$datasource", "${datasource}"}
# The units the dashboard uses, all in panel-units-rule's list of Grafana's valid units.
VALID_UNITS = {"none", "short", "percent", "percentunit", "s", "ms", "ops", "reqps", "currencyUSD", "bytes", "h"}
QUERY_PANELS = {"stat", "singlestat", "graph", "table", "timeseries", "gauge"}


def _walk(node, parents=()):
    """(node, parents) for every node of a promql_parser expression, depth first."""
    yield node, parents
    for attribute in ("lhs", "rhs", "expr", "param", "vector_selector"):
        child = getattr(node, attribute, None)
        if child is not None and not isinstance(child, (str, int, float)):
            yield from _walk(child, (*parents, node))
    for child in getattr(node, "args", None) or []:
        yield from _walk(child, (*parents, node))


def _template_problems(dashboard: dict) -> list[str]:
    problems = []
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    datasources = [v for v in variables.values() if v["type"] == "datasource"]
    if len(datasources) != 1 or datasources[0]["name"] != "datasource" or datasources[0]["query"] != "prometheus":
        problems.append("template-datasource-rule: one Prometheus datasource variable named 'datasource'")
    elif datasources[0].get("label") != "Data source":
        problems.append("template-datasource-rule: the datasource variable is labelled 'Data source'")
    for name in ("job", "instance"):
        rule = f"template-{name}-rule"
        variable = variables.get(name)
        if variable is None:
            problems.append(f"{rule}: missing the {name} variable")
            continue
        if variable.get("datasource", {}).get("uid") not in TEMPLATED_DATASOURCES:
            problems.append(f"{rule}: {name} must query the templated datasource")
        if variable["type"] != "query" or variable.get("label") != name.title():
            problems.append(f"{rule}: {name} must be a query variable labelled {name.title()!r}")
        if variable.get("multi") is not True or variable.get("allValue") != ".+":
            problems.append(f"{rule}: {name} must be multi-select with allValue '.+'")
    for variable in variables.values():
        if variable["type"] != "query":
            continue
        if variable.get("refresh") != 2:
            problems.append(f"template-on-time-change-reload: {variable['name']} must refresh on time range change")
        query = variable["query"] if isinstance(variable["query"], str) else variable["query"]["query"]
        match = re.fullmatch(r"label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)", query)
        try:
            assert match
            promql_parser.parse(concrete(match.group(1)))
        except Exception:  # noqa: BLE001 - any parse failure is the finding
            problems.append(f"template-label-promql-rule: {variable['name']}: {query!r}")
    return problems


def _query_problems(where: str, expr: str) -> list[str]:
    try:
        parsed = promql_parser.parse(concrete(expr))
    except Exception as exc:  # noqa: BLE001 - any parse failure is the finding
        return [f"target-promql-rule: {where}: {exc}"]
    problems = []
    for node, parents in _walk(parsed):
        if isinstance(node, promql_parser.VectorSelector):
            matchers = {(m.name, str(m.op).rsplit(".", 1)[-1], m.value) for m in node.matchers.matchers}
            for label in ("job", "instance"):
                if (label, "Re", ".+") not in matchers:
                    problems.append(f"target-{label}-rule: {where}: {node.name} has no {label}=~\"${label}\"")
            if node.name and node.name.endswith("_total"):
                call = parents[-2] if len(parents) >= 2 else None
                if not (isinstance(parents[-1] if parents else None, promql_parser.MatrixSelector)
                        and isinstance(call, promql_parser.Call)
                        and call.func.name in ("rate", "irate", "increase")):
                    problems.append(f"target-counter-agg-rule: {where}: {node.name} outside rate/irate/increase")
        if isinstance(node, promql_parser.MatrixSelector) and parents and isinstance(parents[-1], promql_parser.Call):
            function, window = parents[-1].func.name, node.range
            allowed = {RATE_INTERVAL} if function in ("rate", "irate") else {RATE_INTERVAL, RANGE}
            if function in ("rate", "irate", "increase") and window not in {_duration(d) for d in allowed}:
                problems.append(f"target-rate-interval-rule: {where}: {function} over {window}, "
                                f"not $__rate_interval")
    return problems


def _duration(text: str):
    return promql_parser.parse(f"x[{text}]").range


def dashboard_lint(dashboard: dict) -> list[str]:
    """dashboard-linter's rules (and ours: uid, no hard-coded datasource), as '<rule>: <finding>' lines."""
    problems = _template_problems(dashboard)
    if not dashboard.get("uid"):
        problems.append("uid: the dashboard needs a fixed uid (links and provisioning use it)")
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        where = f"panel {panel.get('title')!r}"
        if not panel.get("title") or not panel.get("description"):
            problems.append(f"panel-title-description-rule: {where} needs a title and a description")
        if panel.get("datasource", {}).get("uid") not in TEMPLATED_DATASOURCES:
            problems.append(f"panel-datasource-rule: {where} uses {panel.get('datasource')}")
        if panel["type"] in QUERY_PANELS and panel.get("fieldConfig", {}).get("defaults", {}).get(
                "unit") not in VALID_UNITS:
            problems.append(f"panel-units-rule: {where} has no or an invalid unit")
        if not panel.get("targets"):
            problems.append(f"panel-no-targets-rule: {where} has no targets")
        for target in panel.get("targets", []):
            if "datasource" in target and target["datasource"].get("uid") not in TEMPLATED_DATASOURCES:
                problems.append(f"panel-datasource-rule: {where} target {target['refId']} is hard-coded")
            problems += _query_problems(f"{where} target {target['refId']}", target["expr"])
    for annotation in dashboard["annotations"]["list"]:
        where = f"annotation {annotation['name']!r}"
        if annotation.get("datasource", {}).get("uid") not in TEMPLATED_DATASOURCES:
            problems.append(f"panel-datasource-rule: {where} uses {annotation.get('datasource')}")
        problems += _query_problems(where, annotation["expr"])
    return problems


def test_the_grafana_dashboard_passes_the_dashboard_linters_rules():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard_lint(dashboard) == []
    assert dashboard["uid"] == "monitor-overview"
    # Deploys and rollbacks are drawn from the daemon's own series.
    annotations = {a["name"]: a["expr"] for a in dashboard["annotations"]["list"]}
    assert "monitor_model_inferences_per_second" in annotations["Deploys"]
    assert "monitor_rollback_events_total" in annotations["Rollbacks"]


def _broken(change) -> dict:
    dashboard = json.loads(DASHBOARD.read_text())
    change(dashboard)
    return dashboard


def _first_target(dashboard: dict) -> dict:
    return next(t for p in dashboard["panels"] for t in p.get("targets", []) if "rate(" in t["expr"])


@pytest.mark.parametrize("change, rule", [
    (lambda d: d["templating"]["list"].pop(1), "template-job-rule"),
    (lambda d: d["templating"]["list"][0].update(name="ds"), "template-datasource-rule"),
    (lambda d: d["templating"]["list"][2].update(refresh=1), "template-on-time-change-reload"),
    (lambda d: d["templating"]["list"][2].update(query="label_values(up{, instance)"), "template-label-promql-rule"),
    (lambda d: d["panels"][1].pop("description"), "panel-title-description-rule"),
    (lambda d: d["panels"][1].update(datasource={"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}),
     "panel-datasource-rule"),
    (lambda d: d["panels"][1]["fieldConfig"]["defaults"].update(unit="GPU-hours"), "panel-units-rule"),
    (lambda d: _first_target(d).update(expr=_first_target(d)["expr"].replace("$__rate_interval", "5m")),
     "target-rate-interval-rule"),
    (lambda d: _first_target(d).update(expr=_first_target(d)["expr"].replace('job=~"$job",', "")),
     "target-job-rule"),
    (lambda d: _first_target(d).update(expr="sum(monitor_cycles_total{job=~\"$job\",instance=~\"$instance\"})"),
     "target-counter-agg-rule"),
    (lambda d: _first_target(d).update(expr="sum(rate(monitor_cycles_total[$__rate_interval]"), "target-promql-rule"),
    (lambda d: d.pop("uid"), "uid"),
], ids=["a dashboard without a job variable fails", "a datasource variable named otherwise fails",
        "a variable that does not reload with the time range fails", "a variable query that does not parse fails",
        "a panel without a description fails", "a hard-coded datasource fails", "an unknown unit fails",
        "a rate over a fixed window fails", "a query without the job matcher fails",
        "a counter summed without rate fails", "a query that does not parse fails", "a dashboard without a uid fails"])
def test_the_dashboard_lint_finds_each_rules_violation(change, rule):
    problems = dashboard_lint(_broken(change))
    assert any(p.startswith(rule + ":") for p in problems), problems
