"""Write a simulated fleet to disk: OpenMetrics, truth.json, monitor.yaml, SLO specs, Parquet logs."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from monitor.progress import progress
from monitor.timeutil import iso_z
from monitor.simulate.fleet import (CONFIG_GPU_PRICE, DRIFTED_SCORE_BETA, FLEET, MIG_PROFILE_PRICES,
                                    PLACEMENT_FLEET, SELDON_V1_MODEL, SELDON_V1_NAMESPACE, SELDON_V2_MODEL,
                                    SELDON_V2_NAMESPACE, VLLM_MODEL, Fleet, placement_model_configs)
from monitor.sources.prometheus import escape_label_value

# promtool re-reads the whole input once per 2h block it writes, so only the tail
# that short windows (5m, 30m) need keeps one sample a minute; older history is
# written every 5 minutes, which 1h-and-longer windows resolve fine.
FINE_TAIL = timedelta(hours=48)
COARSE_STEP_MINUTES = 5




def write_openmetrics(fleet: Fleet, path: Path, fine_tail: timedelta = FINE_TAIL) -> int:
    """Write every series as OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`.

    Returns the number of samples written.
    """
    fine_from = (fleet.end - fine_tail).timestamp()
    minute_index = np.arange(len(fleet.timestamps))
    keep = (fleet.timestamps >= fine_from) | (minute_index % COARSE_STEP_MINUTES == 0)
    timestamps = fleet.timestamps[keep].astype(np.int64)
    written = 0
    by_name: dict[str, list] = {}
    for series in fleet.series:
        by_name.setdefault(series.name, []).append(series)
    with open(path, "w", encoding="utf-8") as out:
        for name, family in progress(by_name.items(), desc="writing metrics", total=len(by_name),
                                     unit="family"):
            # No TYPE line: each metric name is its own family of type unknown, which
            # keeps Triton's unsuffixed counters (nv_inference_count) valid OpenMetrics.
            for series in family:
                label_text = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in sorted(series.labels.items()))
                prefix = f"{name}{{{label_text}}} "
                values = series.values[keep]
                present = ~np.isnan(values)
                lines = [f"{prefix}{v!r} {t}\n" for v, t in zip(values[present].tolist(), timestamps[present].tolist())]
                out.writelines(lines)
                written += len(lines)
        out.write("# EOF\n")
    return written


def write_truth(fleet: Fleet, path: Path) -> dict:
    truth = {
        "start": iso_z(fleet.start),
        "end": iso_z(fleet.end),
        "seed": fleet.seed,
        "fine_resolution_from": iso_z(fleet.end - FINE_TAIL),
        "incidents": fleet.incidents,
        "models": [{"name": m.name, "batch_size": m.batch_size,
                    "gpus": [{"host": h, "gpu": g, "modelName": n} for h, g, n in m.gpus],
                    "gpu_namespace": m.gpu_namespace} for m in FLEET],
        # The placement scenarios' models (PLACEMENT_FLEET): their pods, versions and GPU units.
        "placement_models": [{"name": m.name, "namespace": m.namespace, "versions": sorted(m.requests_per_minute),
                              "pods": [{"pod": p.name, "version": p.version,
                                        "units": [{"host": h, "gpu": g, "GPU_I_PROFILE": prof, "GPU_I_ID": gi}
                                                  for h, g, prof, gi in p.units]} for p in m.pods]}
                             for m in PLACEMENT_FLEET],
        "drifted_score_beta": list(DRIFTED_SCORE_BETA),
        "config_gpu_price": CONFIG_GPU_PRICE,
    }
    path.write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return truth


def _availability_slo(service: str) -> dict:
    selector = f'service="{service}"'
    return {
        "name": "requests-availability",
        "objective": 99.9,
        "description": f"99.9% of {service} requests succeed (no 5xx).",
        "sli": {"events": {
            "error_query": f'sum(rate(http_requests_total{{{selector},code=~"5.."}}[{{{{.window}}}}]))',
            "total_query": f"sum(rate(http_requests_total{{{selector}}}[{{{{.window}}}}]))",
        }},
        "alerting": {"name": f"{service.title().replace('-', '')}Availability",
                     "labels": {"category": "availability"},
                     "annotations": {"runbook": f"https://runbooks.example.com/{service}/availability"},
                     "page_alert": {"labels": {"severity": "page"}},
                     "ticket_alert": {"labels": {"severity": "ticket"}}},
    }


def _latency_slo(service: str, threshold: str) -> dict:
    selector = f'service="{service}"'
    return {
        "name": "requests-latency",
        "objective": 99.0,
        "description": f"99% of {service} requests answer within {threshold}s.",
        "sli": {"events": {
            "error_query": (f"sum(rate(http_request_duration_seconds_count{{{selector}}}[{{{{.window}}}}]))"
                            f" - sum(rate(http_request_duration_seconds_bucket{{{selector},le=\"{threshold}\"}}"
                            f"[{{{{.window}}}}]))"),
            "total_query": f"sum(rate(http_request_duration_seconds_count{{{selector}}}[{{{{.window}}}}]))",
        }},
        "alerting": {"name": f"{service.title().replace('-', '')}Latency",
                     "labels": {"category": "latency"},
                     "page_alert": {"labels": {"severity": "page"}},
                     "ticket_alert": {"labels": {"severity": "ticket"}}},
    }


def write_slo_specs(directory: Path) -> list[Path]:
    """Sloth prometheus/v1 specs for most services, and one OpenSLO v1 spec with a 28d window."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for spec in FLEET:
        if spec.name == "churn-scorer":
            continue
        slos = [_availability_slo(spec.name)]
        if spec.name == "search-embedder":
            slos.append(_latency_slo(spec.name, "0.25"))
        doc = {"version": "prometheus/v1", "service": spec.name, "labels": {"team": "ml-platform"}, "slos": slos}
        path = directory / f"{spec.name}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        paths.append(path)
    service = "churn-scorer"
    openslo = {
        "apiVersion": "openslo/v1",
        "kind": "SLO",
        "metadata": {"name": "requests-availability", "displayName": "churn-scorer availability"},
        "spec": {
            "description": "99.9% of churn-scorer requests succeed over 28 days.",
            "service": service,
            "indicator": {"metadata": {"name": "churn-scorer-availability"}, "spec": {"ratioMetric": {
                "counter": True,
                "good": {"metricSource": {"type": "Prometheus", "spec": {
                    "query": f'sum(rate(http_requests_total{{service="{service}",code!~"5.."}}[{{{{.window}}}}]))'}}},
                "total": {"metricSource": {"type": "Prometheus", "spec": {
                    "query": f'sum(rate(http_requests_total{{service="{service}"}}[{{{{.window}}}}]))'}}},
            }}},
            "timeWindow": [{"duration": "28d", "isRolling": True}],
            "budgetingMethod": "Occurrences",
            "objectives": [{"displayName": "availability", "target": 0.999}],
        },
    }
    path = directory / f"{service}.openslo.yaml"
    path.write_text(yaml.safe_dump(openslo, sort_keys=False), encoding="utf-8")
    paths.append(path)
    return paths


def fleet_config(prometheus_url: str) -> dict:
    """The fleet's monitor.yaml as a dict (the same keys a user writes)."""
    models = []
    for spec in FLEET:
        model: dict = {"name": spec.name}
        if spec.name in ("ranker", "recommender"):
            model["inferences"] = f'nv_inference_count{{model="{spec.name}"}}'
            model["version_label"] = "version"
        else:
            model["preset"] = "triton"
            # The fleet's spec files already hold these services' SLOs (slos/); the preset's
            # default SLOs would measure the same requests twice.
            model["default_slos"] = {"enabled": False}
        model["gpus"] = f'{{namespace="{spec.gpu_namespace}"}}'
        model["predictions"] = f'model_prediction_score_bucket{{model="{spec.name}"}}'
        model["drift"] = {"reference": "3d", "current": "1h"}
        if spec.name == "ranker":
            model["drift"]["log"] = {"path": "predictions/ranker.parquet", "timestamp_column": "timestamp"}
        models.append(model)
    models += other_server_models()
    models += placement_model_configs()
    return {
        "prometheus": {"url": prometheus_url, "timeout": "30s"},
        "state": {"path": "monitor-state.db"},
        "slo_period": "30d",
        "slos": ["slos/*.yaml"],
        "rules": ["rules/*.yaml"],
        "models": models,
        "cost": {"pricing": {"GPU": CONFIG_GPU_PRICE, "CPU": 0.031611, "RAM": 0.004237,
                             "mig_profiles": dict(MIG_PROFILE_PRICES)}},
        "reports": {"dir": "reports-out"},
        "schedule": {"evaluate_every": "1m"},
    }


def other_server_models() -> list[dict]:
    """The models served by vLLM and Seldon Core (fleet.py's `_add_*_model`), as a user configures them.

    Their presets' default SLOs are off, so the fleet's alerts stay the Triton models' own.
    """
    off = {"enabled": False}
    return [
        {"name": VLLM_MODEL.name, "preset": "vllm", "gpus": f'{{namespace="{VLLM_MODEL.namespace}"}}',
         "default_slos": off},
        {"name": SELDON_V2_MODEL, "preset": "seldon-v2", "cpu": f'{{namespace="{SELDON_V2_NAMESPACE}"}}',
         "memory": f'{{namespace="{SELDON_V2_NAMESPACE}"}}', "default_slos": off},
        {"name": SELDON_V1_MODEL, "preset": "seldon", "cpu": f'{{namespace="{SELDON_V1_NAMESPACE}"}}',
         "memory": f'{{namespace="{SELDON_V1_NAMESPACE}"}}', "resource_source": "requests", "default_slos": off},
    ]


def write_prediction_log(fleet: Fleet, path: Path, rows_per_minute: int = 20) -> int:
    """ranker's prediction log: a timestamp, its version, features and the score.

    20 rows a minute gives v2's 30% canary ~360 rows in a 1h current window: enough
    that sampling noise alone stays well under the drift thresholds for stable columns.

    From v2's deploy on, an upstream change raises `items_viewed` for all traffic
    (feature drift), and v2's scores follow the drifted distribution.
    """
    rng = np.random.default_rng(fleet.seed + 1000)
    drift = fleet.incident("drift")
    deploy = datetime.fromisoformat(drift["start"].replace("Z", "+00:00")).timestamp()
    minutes = fleet.timestamps
    ts = np.repeat(minutes, rows_per_minute) + rng.uniform(0, 60, len(minutes) * rows_per_minute)
    n = len(ts)
    after = ts >= deploy
    is_v2 = after & (rng.uniform(size=n) < 0.3)
    ranker = next(m for m in FLEET if m.name == "ranker")
    score = np.where(is_v2, rng.beta(*DRIFTED_SCORE_BETA, n), rng.beta(*ranker.score_beta, n))
    frame = pd.DataFrame({
        "timestamp": pd.to_datetime(ts, unit="s", utc=True),
        "version": np.where(is_v2, "v2", "v1"),
        "user_age": rng.normal(38, 11, n).round().clip(16, 90),
        "session_length_s": rng.lognormal(4.5, 0.8, n).round(1),
        "items_viewed": rng.poisson(np.where(after, 8.0, 5.0)),
        "country": rng.choice(["US", "DE", "GB", "FR", "IN", "BR"], n, p=[0.35, 0.15, 0.15, 0.1, 0.15, 0.1]),
        "device": rng.choice(["ios", "android", "web"], n, p=[0.4, 0.35, 0.25]),
        "score": score,
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return n


def write_default_rules(directory: Path) -> list[Path]:
    """Copy the default alert rules shipped in the package (monitor/default_rules) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for rule_file in sorted(resources.files("monitor.default_rules").iterdir(), key=lambda f: f.name):
        if rule_file.name.endswith(".yaml"):
            path = directory / rule_file.name
            path.write_text(rule_file.read_text(encoding="utf-8"), encoding="utf-8")
            paths.append(path)
    return paths


def fleet_paths(out: Path) -> dict[str, Path]:
    """What `write_fleet` writes into `out`, by role."""
    return {"metrics": out / "metrics.om", "truth": out / "truth.json", "config": out / "monitor.yaml",
            "slos": out / "slos", "predictions": out / "predictions" / "ranker.parquet",
            "rules": out / "rules"}


def write_fleet(fleet: Fleet, out: Path, prometheus_url: str = "http://127.0.0.1:9090") -> dict[str, Path]:
    """Write everything `monitor simulate` produces into `out`; return the paths by role."""
    out.mkdir(parents=True, exist_ok=True)
    paths = fleet_paths(out)
    write_openmetrics(fleet, paths["metrics"])
    write_truth(fleet, paths["truth"])
    write_slo_specs(paths["slos"])
    write_prediction_log(fleet, paths["predictions"])
    write_default_rules(paths["rules"])
    paths["config"].write_text(yaml.safe_dump(fleet_config(prometheus_url), sort_keys=False), encoding="utf-8")
    return paths
