"""A synthetic but realistic ML fleet: services, Triton models, GPUs, and incidents.

Everything is generated at one-minute resolution from a seeded generator, so a
given (days, seed, end) always yields the same series. Counters are integer
cumulative counts; histograms are multinomial draws over the bucket
probabilities of a known distribution, so tests can compute the truth exactly.

Incidents (times are relative to `end`; all lie in the fine-resolution tail so
short SLO windows have one-minute samples):
- fast error spike on `recommender` (pages), 6% 5xx for 40 minutes;
- slow burn on `fraud-detector` (tickets), 0.4% 5xx for 36 hours;
- latency regression on `search-embedder`, latency x6 for 3 hours;
- `ranker` version v2 deployed as a 30% canary whose prediction scores drift;
- GPU idle period on `churn-scorer`'s GPU, utilisation ~2% for 8 hours;
- `recommender`'s GPUs are scraped the way the dcgm-exporter Helm chart's default
  (`honorLabels: false`) stores them: the workload's labels as `exported_*`, the
  exporter's own pod in `namespace`/`pod`/`container`; `churn-scorer`'s GPU is scraped
  both ways (two scrape jobs), so its series exist twice for one GPU;
- `ranker`'s second GPU runs in MIG mode as one full-size instance (7g.80gb): dcgm-exporter
  exports no DCGM_FI_DEV_GPU_UTIL for it, only DCGM_FI_PROF_GR_ENGINE_ACTIVE (0..1);
- `legacy-tagger` stops receiving traffic for the last 5 hours;
- the `user-features` pipeline stops succeeding for 5 hours (freshness);
- `inference-gateway`'s `/v1/recommend` endpoint fails 5% of requests for 40 minutes,
  6 hours before the end, while its four other endpoints stay healthy (grouped SLOs).

The gateway's per-endpoint series are drawn from their own generator (seeded from
the fleet's seed), so adding them left every other series exactly as it was. So are
the models served by other servers (`_add_vllm_model`, `_add_seldon_v2_model`,
`_add_seldon_v1_model`), each from its own generator:
- `llama-chat`: an LLM served by vLLM (two data-parallel engines, `engine` "0" and "1")
  on its own two GPUs, with vLLM's request, token and latency series;
- `iris`: a CPU-only model on Seldon Core v2 (MLServer, two replicas on two CPU nodes),
  with cAdvisor's CPU and memory series, kube-state-metrics' `kube_pod_info`, and
  OpenCost's CPU and RAM prices for one of the two nodes only;
- `income-classifier`: a CPU-only model on Seldon Core v1 (a `default` predictor,
  version v1, and a 10% `canary`, version v2) priced from kube-state-metrics'
  resource requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from scipy import stats

from monitor.progress import progress
from monitor.timeutil import iso_z, utc, utc_now

MINUTE = 60
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# dcgm-exporter's own pod, as the GPU Operator deploys it: the target labels that take
# `namespace`/`pod`/`container` when the workload's labels are stored as `exported_*`.
DCGM_EXPORTER_TARGET = {"namespace": "gpu-operator", "container": "nvidia-dcgm-exporter"}
# GPUs in MIG mode, (host, gpu index) -> (GPU_I_PROFILE, GPU_I_ID): one instance the size of the GPU.
MIG_GPUS = {("gpu-node-1", "1"): ("7g.80gb", "0")}
# Triton's failure reasons (core src/metric_model_reporter.cc), each its own series.
TRITON_FAILURE_REASONS = ("REJECTED", "CANCELED", "BACKEND", "OTHER")
GPU_FRAMEBUFFER_MIB = {"NVIDIA A100-SXM4-80GB": 81920, "NVIDIA H100 80GB HBM3": 81559, "NVIDIA L4": 23034}
BASELINE_ERROR_RATIO = 0.0002


@dataclass(frozen=True)
class ModelSpec:
    name: str
    requests_per_minute: float
    batch_size: int                 # inferences per request (Triton's nv_inference_count counts items)
    latency_median_s: float
    gpus: tuple[tuple[str, str, str], ...]  # (host, gpu index, modelName)
    gpu_namespace: str
    hostname_label: str = "Hostname"        # older dcgm-exporter; newer ones use "hostname"
    gpu_scrapes: tuple[str, ...] = ("plain",)  # how Prometheus stored its GPU series: plain and/or exported
    score_beta: tuple[float, float] = (2.0, 5.0)


FLEET = (
    ModelSpec("ranker", 1200, 4, 0.040, (("gpu-node-1", "0", "NVIDIA A100-SXM4-80GB"),
                                          ("gpu-node-1", "1", "NVIDIA A100-SXM4-80GB")), "ranker"),
    ModelSpec("recommender", 900, 1, 0.060, (("gpu-node-2", "0", "NVIDIA H100 80GB HBM3"),
                                              ("gpu-node-2", "1", "NVIDIA H100 80GB HBM3")), "recommender",
              gpu_scrapes=("exported",), score_beta=(3.0, 3.0)),
    ModelSpec("fraud-detector", 600, 1, 0.030, (("gpu-node-3", "0", "NVIDIA L4"),), "shared-inference",
              score_beta=(1.2, 8.0)),
    ModelSpec("search-embedder", 700, 2, 0.050, (("gpu-node-3", "1", "NVIDIA L4"),), "search-embedder",
              score_beta=(5.0, 2.0)),
    ModelSpec("churn-scorer", 300, 1, 0.020, (("gpu-node-4", "0", "NVIDIA A100-SXM4-80GB"),), "churn-scorer",
              hostname_label="hostname", gpu_scrapes=("plain", "exported"), score_beta=(2.0, 2.0)),
    ModelSpec("legacy-tagger", 200, 1, 0.080, (("gpu-node-3", "0", "NVIDIA L4"),), "shared-inference",
              score_beta=(4.0, 4.0)),
)
# OpenCost's per-node GPU price, present for one node only: it must win over the config's price.
NODE_GPU_HOURLY_COST = {"gpu-node-2": 3.10}
CONFIG_GPU_PRICE = 2.50
DRIFTED_SCORE_BETA = (4.0, 3.0)
CANARY_SHARE = 0.3
# The gateway in front of the models: requests per minute per (endpoint, method).
GATEWAY_SERVICE = "inference-gateway"
GATEWAY_ENDPOINTS = {"/v1/search": ("POST", 600.0), "/v1/recommend": ("POST", 400.0),
                     "/v1/embed": ("POST", 300.0), "/v1/score": ("POST", 200.0), "/healthz": ("GET", 60.0)}
GATEWAY_BURNING_ENDPOINT = "/v1/recommend"
GATEWAY_BURN_ERROR_RATIO = 0.05




@dataclass(frozen=True)
class PlacedPod:
    """One pod of a placement model and the GPU units it holds: (host, gpu index, MIG profile, MIG id)."""

    name: str
    version: str
    units: tuple[tuple[str, str, str, str], ...]
    sm_share: float | None = None   # its processes' SM share of a time-sliced GPU (None: not exported)


@dataclass(frozen=True)
class PlacedModelSpec:
    """A model whose GPU cost depends on which pods hold which GPUs (placement, MIG, time-slicing)."""

    name: str
    namespace: str
    model_name: str                                  # dcgm-exporter modelName of its GPUs
    requests_per_minute: dict[str, float]            # by version
    pods: tuple[PlacedPod, ...]
    placement: dict[str, str] | None = None          # the model's `placement` config
    gpu_scrape: str = "plain"                        # plain or exported (honorLabels: false)
    pod_selector: str | None = None                  # a pod regex in its `gpus` selector (a shared namespace)


A100, H100 = "NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3"
# Placement scenarios, each on GPUs of its own (gpu-node-5 .. gpu-node-8):
# - `chat`: a canary on its own GPUs: v1 on 4 GPUs serves 90%, v2 on 2 GPUs serves 10%
#   (versions read from the pod names);
# - `summarizer`: stable and canary pods with a version pod label (kube_pod_labels), its
#   GPUs scraped with `honorLabels: false` (the workload's labels as exported_*);
# - `embed-a` and `embed-b`: a shared pool, two models' pods time-slicing the same two
#   GPUs; on gpu 0 a node agent exports each pod's processes' SM share
#   (monitor_gpu_process_sm_utilization_ratio with pod labels), on gpu 1 nothing does;
# - `ocr` and `moderation`: one A100 80GB in MIG mode, sliced 3g.40gb + 2g.20gb + 1g.10gb +
#   1g.10gb (mig-parted's "all-balanced" layout for the A100 80GB), the slices held by
#   the two models' pods.
PLACEMENT_FLEET = (
    PlacedModelSpec("chat", "chat", H100, {"v1": 810.0, "v2": 90.0}, (
        *(PlacedPod(f"chat-v1-6c9d7b5f4-{s}", "v1", (("gpu-node-5", str(i), "", ""),)) for i, s in
          enumerate(("k2x7q", "m4p9z", "r8t3w", "w5n1c"))),
        *(PlacedPod(f"chat-v2-5f8e9c7d2-{s}", "v2", (("gpu-node-5", str(4 + i), "", ""),)) for i, s in
          enumerate(("b7h2d", "q3v8f")))),
        placement={"pod_pattern": "^chat-(?P<version>v[0-9]+)-"}),
    PlacedModelSpec("summarizer", "summarize", A100, {"stable": 300.0, "canary": 100.0}, (
        PlacedPod("summarizer-7c4f9d8b6-x1lqp", "stable", (("gpu-node-6", "0", "", ""),)),
        PlacedPod("summarizer-7c4f9d8b6-h9zrm", "stable", (("gpu-node-6", "1", "", ""),)),
        PlacedPod("summarizer-canary-5b2e1c-y7tds", "canary", (("gpu-node-6", "2", "", ""), ("gpu-node-6", "3", "", "")))),
        placement={"pod_label": "app.kubernetes.io/version"}, gpu_scrape="exported"),
    PlacedModelSpec("embed-a", "pool", A100, {"1": 500.0}, (
        PlacedPod("pool-embed-a-6d5c4b-9fj2k", "1", (("gpu-node-7", "0", "", ""), ("gpu-node-7", "1", "", "")),
                  sm_share=0.45),), pod_selector="pool-embed-a-.*"),
    PlacedModelSpec("embed-b", "pool", A100, {"1": 200.0}, (
        PlacedPod("pool-embed-b-8e7f6a-2kd9s", "1", (("gpu-node-7", "0", "", ""), ("gpu-node-7", "1", "", "")),
                  sm_share=0.15),), pod_selector="pool-embed-b-.*"),
    PlacedModelSpec("ocr", "ocr", A100, {"1": 240.0}, (
        PlacedPod("ocr-59c7d-4xk2p", "1", (("gpu-node-8", "0", "3g.40gb", "2"),)),
        PlacedPod("ocr-59c7d-8hq3n", "1", (("gpu-node-8", "0", "1g.10gb", "9"),)))),
    PlacedModelSpec("moderation", "moderation", A100, {"1": 180.0}, (
        PlacedPod("moderation-6f8b2-t5r7v", "1", (("gpu-node-8", "0", "2g.20gb", "3"),)),
        PlacedPod("moderation-6f8b2-c2m9w", "1", (("gpu-node-8", "0", "1g.10gb", "10"),)))),
)
# Where a node agent maps each process to its pod: the time-sliced GPU with per-pod SM shares.
PROCESS_LABELLED_GPUS = {("gpu-node-7", "0")}
# A price per MIG instance for one profile (the others cost their share of the GPU's price).
MIG_PROFILE_PRICES = {"1g.10gb": 0.40}


@dataclass
class SimSeries:
    name: str
    labels: dict[str, str]
    values: np.ndarray      # one value per minute of the fleet's timeline
    kind: str = "counter"   # counter or gauge: coarse resampling keeps the last value either way


@dataclass
class Fleet:
    start: datetime
    end: datetime
    seed: int
    timestamps: np.ndarray  # unix seconds, one per minute, start..end inclusive
    series: list[SimSeries] = field(default_factory=list)
    incidents: list[dict] = field(default_factory=list)
    models: tuple[ModelSpec, ...] = FLEET

    def find(self, name: str, **labels: str) -> list[SimSeries]:
        """Series named `name` whose labels include `labels`."""
        return [s for s in self.series if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]

    def value_at(self, series: SimSeries, at: datetime) -> float:
        """The series' value at a minute of the timeline."""
        index = int((at - self.start).total_seconds() // MINUTE)
        return float(series.values[index])

    def incident(self, kind: str) -> dict:
        return next(i for i in self.incidents if i["kind"] == kind)


def _floor_minute(at: datetime) -> datetime:
    return utc(at).replace(second=0, microsecond=0)


def generate_fleet(days: int = 7, seed: int = 1, end: datetime | None = None) -> Fleet:
    """Generate the fleet's series over `days` days ending at `end` (default: now, floored to the minute)."""
    end = _floor_minute(end or utc_now())
    start = end - timedelta(days=days)
    minutes = days * 24 * 60 + 1
    timestamps = start.timestamp() + np.arange(minutes) * MINUTE
    rng = np.random.default_rng(seed)
    fleet = Fleet(start, end, seed, timestamps)

    def window(hours_before_start: float, hours_before_end: float | None) -> tuple[datetime, datetime | None]:
        s = end - timedelta(hours=hours_before_start)
        e = end - timedelta(hours=hours_before_end) if hours_before_end is not None else None
        return s, e

    def mask(s: datetime, e: datetime | None) -> np.ndarray:
        t = timestamps
        upper = e.timestamp() if e is not None else np.inf
        return (t >= s.timestamp()) & (t < upper)

    incidents = {
        "error_spike": ("recommender", *window(20, 19 + 20 / 60)),
        "slow_burn": ("fraud-detector", *window(44, 8)),
        "latency_regression": ("search-embedder", *window(10, 7)),
        "drift": ("ranker", *window(30, None)),
        "gpu_idle": ("churn-scorer", *window(16, 8)),
        "traffic_stopped": ("legacy-tagger", *window(5, None)),
        "pipeline_stale": ("user-features", *window(14, 9)),
        "endpoint_errors": (GATEWAY_SERVICE, *window(6, 5 + 20 / 60)),
    }
    for kind, (subject, s, e) in incidents.items():
        record = {"id": f"{kind}-{subject}", "kind": kind, "start": iso_z(s),
                  "end": iso_z(e) if e else None}
        record["model" if kind in ("drift", "gpu_idle", "traffic_stopped") else
               "pipeline" if kind == "pipeline_stale" else "service"] = subject
        if kind == "endpoint_errors":
            record["endpoint"] = GATEWAY_BURNING_ENDPOINT
        if kind == "drift":
            record["version"] = "v2"
            record["last_known_good_version"] = "v1"
        fleet.incidents.append(record)

    # Diurnal load: peaks mid-afternoon UTC, with minute-to-minute noise.
    hour_of_day = (timestamps % 86400) / 3600
    diurnal = 1.0 + 0.4 * np.sin(2 * np.pi * (hour_of_day - 9) / 24)

    for spec in progress(FLEET, desc="simulating services", unit="service"):
        load = diurnal * rng.normal(1.0, 0.03, minutes).clip(0.8, 1.2)
        requests = rng.poisson(spec.requests_per_minute * load).astype(np.float64)
        error_ratio = np.full(minutes, BASELINE_ERROR_RATIO)
        latency_factor = np.ones(minutes)
        if spec.name == "recommender":
            error_ratio[mask(*incidents["error_spike"][1:])] = 0.06
        if spec.name == "fraud-detector":
            error_ratio[mask(*incidents["slow_burn"][1:])] = 0.004
        if spec.name == "search-embedder":
            latency_factor[mask(*incidents["latency_regression"][1:])] = 6.0
        if spec.name == "churn-scorer":
            requests[mask(*incidents["gpu_idle"][1:])] = rng.poisson(spec.requests_per_minute * 0.02,
                                                                      mask(*incidents["gpu_idle"][1:]).sum())
        if spec.name == "legacy-tagger":
            requests[mask(*incidents["traffic_stopped"][1:])] = 0
        errors = rng.binomial(requests.astype(np.int64), error_ratio).astype(np.float64)
        client_errors = rng.binomial((requests - errors).astype(np.int64), 0.01).astype(np.float64)
        ok = requests - errors - client_errors

        service = {"service": spec.name}
        for code, counts in (("200", ok), ("404", client_errors), ("500", errors)):
            fleet.series.append(SimSeries("http_requests_total", {**service, "code": code}, np.cumsum(counts)))
        _add_histogram(fleet, "http_request_duration_seconds", service, requests, LATENCY_BUCKETS,
                       lambda edges, factor: stats.lognorm.cdf(edges, s=0.6, scale=spec.latency_median_s * factor),
                       latency_factor, rng, mean_fn=lambda f: spec.latency_median_s * f * np.exp(0.18))

        # Triton counters per version. ranker's v2 takes a 30% canary from its deploy on.
        versions = {"v1": (requests, errors, spec.score_beta)}
        if spec.name == "ranker":
            deployed = mask(*incidents["drift"][1:])
            canary_requests = np.where(deployed, rng.binomial(requests.astype(np.int64), CANARY_SHARE), 0)
            canary_errors = np.where(deployed, rng.binomial(errors.astype(np.int64), CANARY_SHARE), 0)
            versions = {"v1": (requests - canary_requests, errors - canary_errors, spec.score_beta),
                        "v2": (canary_requests.astype(np.float64), canary_errors.astype(np.float64),
                               DRIFTED_SCORE_BETA)}
        for version, (v_requests, v_errors, beta) in versions.items():
            labels = {"model": spec.name, "version": version}
            # Triton's own labels plus the scrape's `namespace` (the Triton pod's).
            triton = {**labels, "namespace": spec.gpu_namespace}
            first = 0 if version == "v1" else int(np.argmax(v_requests > 0) if (v_requests > 0).any() else 0)
            inferences = v_requests * spec.batch_size
            for name, counts in (("nv_inference_count", inferences),
                                 ("nv_inference_request_success", v_requests - v_errors),
                                 ("nv_inference_request_duration_us",
                                  v_requests * spec.latency_median_s * 1e6 * latency_factor)):
                fleet.series.append(SimSeries(name, triton, _starting_at(np.cumsum(counts), first)))
            # Failures by `reason`, every reason exported from the start (backend errors here).
            for reason in TRITON_FAILURE_REASONS:
                counts = v_errors if reason == "BACKEND" else np.zeros(minutes)
                fleet.series.append(SimSeries("nv_inference_request_failure", {**triton, "reason": reason},
                                              _starting_at(np.cumsum(counts), first)))
            _add_histogram(fleet, "model_prediction_score", labels, inferences, SCORE_BUCKETS,
                           lambda edges, _f, a=beta[0], b=beta[1]: stats.beta.cdf(edges, a, b),
                           np.ones(minutes), rng, mean_fn=lambda _f, a=beta[0], b=beta[1]: a / (a + b),
                           first=first)

    _add_gpus(fleet, incidents, diurnal, rng)
    _label_triton_gpus(fleet)
    for node, price in NODE_GPU_HOURLY_COST.items():
        fleet.series.append(SimSeries("node_gpu_hourly_cost", {"node": node, "instance": f"{node}:9003"},
                                      np.full(minutes, price), kind="gauge"))
    # The feature pipeline writes a success timestamp every 30 minutes, except while stale.
    stale = mask(*incidents["pipeline_stale"][1:])
    runs = (timestamps % 1800 == 0) & ~stale
    last_success = np.maximum.accumulate(np.where(runs, timestamps, timestamps[0]))
    fleet.series.append(SimSeries("feature_pipeline_last_success_timestamp_seconds",
                                  {"pipeline": "user-features"}, last_success, kind="gauge"))
    # Its own generator: the draws above, and so every earlier series, are unchanged.
    _add_gateway(fleet, diurnal, mask(*incidents["endpoint_errors"][1:]), np.random.default_rng([seed, 14]))
    _add_vllm_model(fleet, diurnal, np.random.default_rng([seed, 15, 1]))
    _add_seldon_v2_model(fleet, diurnal, np.random.default_rng([seed, 15, 2]))
    _add_seldon_v1_model(fleet, diurnal, np.random.default_rng([seed, 15, 3]))
    # Its own generator too, for the same reason.
    _add_placement_fleet(fleet, diurnal, np.random.default_rng([seed, 15]))
    return fleet


def _add_gateway(fleet: Fleet, diurnal: np.ndarray, burning: np.ndarray, rng: np.random.Generator) -> None:
    """Per-endpoint request counters of one service, as an HTTP server library exports them.

    Every (endpoint, method, code) counter exists from the start (client libraries
    initialise them), so a healthy endpoint's 5xx counter is 0, not absent.
    """
    minutes = len(fleet.timestamps)
    for endpoint, (method, per_minute) in GATEWAY_ENDPOINTS.items():
        requests = rng.poisson(per_minute * diurnal * rng.normal(1.0, 0.03, minutes).clip(0.8, 1.2))
        error_ratio = np.full(minutes, BASELINE_ERROR_RATIO)
        if endpoint == GATEWAY_BURNING_ENDPOINT:
            error_ratio[burning] = GATEWAY_BURN_ERROR_RATIO
        errors = rng.binomial(requests, error_ratio)
        throttled = rng.binomial(requests - errors, 0.002)
        labels = {"service": GATEWAY_SERVICE, "endpoint": endpoint, "method": method}
        for code, counts in (("200", requests - errors - throttled), ("429", throttled), ("500", errors)):
            fleet.series.append(SimSeries("gateway_requests_total", {**labels, "code": code},
                                          np.cumsum(counts.astype(np.float64))))


def _label_triton_gpus(fleet: Fleet) -> None:
    """`gpu_uuid` on a single-GPU model's Triton series, as Triton labels a model instance's GPU.

    Only where the model has one GPU: Triton exports one series per GPU instance, and a
    model on two would have its counts split across two series.
    """
    uuids = {(s.labels.get("Hostname") or s.labels.get("hostname"), s.labels["gpu"]): s.labels["UUID"]
             for s in fleet.series if s.name == "DCGM_FI_DEV_FB_USED"}
    single = {spec.name: uuids[spec.gpus[0][:2]] for spec in FLEET if len(spec.gpus) == 1}
    for series in fleet.series:
        if series.name.startswith("nv_inference_") and series.labels.get("model") in single:
            series.labels = {**series.labels, "gpu_uuid": single[series.labels["model"]]}


def _starting_at(values: np.ndarray, first: int) -> np.ndarray:
    """A series that only exists from minute `first` on (NaN before: not exported)."""
    if first <= 0:
        return values
    out = values.copy()
    out[:first] = np.nan
    return out


def _add_histogram(fleet: Fleet, name: str, labels: dict[str, str], observations: np.ndarray,
                   buckets: tuple[float, ...], cdf, factor: np.ndarray, rng: np.random.Generator,
                   mean_fn, first: int = 0) -> None:
    """Per-minute multinomial draws over the bucket probabilities, exported cumulatively."""
    edges = np.array(buckets)
    n = observations.astype(np.int64)
    per_bucket = np.zeros((len(n), len(edges) + 1))
    # Group minutes by their distortion factor so the CDF is computed once per factor.
    for f in np.unique(factor):
        rows = factor == f
        cumulative = np.append(cdf(edges, f), 1.0)
        probs = np.diff(np.concatenate([[0.0], cumulative])).clip(0)
        probs /= probs.sum()
        per_bucket[rows] = rng.multinomial(n[rows], probs)
    cumulative_le = np.cumsum(per_bucket, axis=1)  # counts with value <= edge, per minute
    for i, edge in enumerate([*map(_format_le, buckets), "+Inf"]):
        fleet.series.append(SimSeries(f"{name}_bucket", {**labels, "le": edge},
                                      _starting_at(np.cumsum(cumulative_le[:, i]), first)))
    fleet.series.append(SimSeries(f"{name}_count", labels, _starting_at(np.cumsum(n.astype(np.float64)), first)))
    fleet.series.append(SimSeries(f"{name}_sum", labels,
                                  _starting_at(np.cumsum(n * mean_fn(factor)), first)))


def _format_le(edge: float) -> str:
    # Prometheus client libraries format le as Go's float formatting: 0.1, 1.0 -> "1".
    return f"{edge:g}" if edge != int(edge) else f"{edge:.1f}"


def _add_gpus(fleet: Fleet, incidents: dict, diurnal: np.ndarray, rng: np.random.Generator) -> None:
    seen: set[tuple[str, str]] = set()
    minutes = len(fleet.timestamps)
    idle = (fleet.timestamps >= incidents["gpu_idle"][1].timestamp()) & (
        fleet.timestamps < incidents["gpu_idle"][2].timestamp())
    for spec in FLEET:
        for host, index, model_name in spec.gpus:
            if (host, index) in seen:
                continue  # a GPU shared by several models is exported once
            seen.add((host, index))
            uuid = "GPU-" + "".join(rng.choice(list("0123456789abcdef"), 8)) + "-5b0e-11ee-9c1d-" + \
                   "".join(rng.choice(list("0123456789abcdef"), 12))
            # dcgm-exporter's label set (internal/pkg/transformation/const.go and the
            # exporter's gpu/UUID/device/modelName/Hostname|hostname labels).
            labels = {"gpu": index, "UUID": uuid, "device": f"nvidia{index}", "modelName": model_name,
                      spec.hostname_label: host}
            workload = {"namespace": spec.gpu_namespace, "pod": f"{spec.gpu_namespace}-7d9f8b6c5-{index}x{host[-1]}",
                        "container": "triton"}
            scrapes = [_gpu_labels(labels, workload, host, scrape) for scrape in spec.gpu_scrapes]
            util = (35 + 40 * (diurnal - 0.6) + rng.normal(0, 4, minutes)).clip(1, 100).round()
            if spec.name == "churn-scorer":
                util[idle] = rng.integers(1, 4, idle.sum())
            framebuffer = GPU_FRAMEBUFFER_MIB[model_name]
            used = (framebuffer * 0.55 + rng.normal(0, 200, minutes)).clip(0, framebuffer).round()
            power = (60 + 3.2 * util + rng.normal(0, 2, minutes)).round(3)
            # A MIG instance has no GPU_UTIL: its engine activity ratio carries the same utilisation.
            mig = MIG_GPUS.get((host, index))
            utilization = ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", util / 100.0) if mig else ("DCGM_FI_DEV_GPU_UTIL", util)
            for scraped in scrapes:
                if mig:
                    scraped = {**scraped, "GPU_I_PROFILE": mig[0], "GPU_I_ID": mig[1]}
                for name, values in (utilization, ("DCGM_FI_DEV_FB_USED", used),
                                     ("DCGM_FI_DEV_FB_FREE", framebuffer - used), ("DCGM_FI_DEV_POWER_USAGE", power)):
                    fleet.series.append(SimSeries(name, dict(scraped), values, kind="gauge"))


def _gpu_labels(gpu: dict[str, str], workload: dict[str, str], host: str, scrape: str) -> dict[str, str]:
    """One GPU's labels as Prometheus stored them: the workload's labels plain, or as `exported_*`
    beside the dcgm-exporter pod's own (a scrape with `honorLabels: false`)."""
    if scrape == "plain":
        return {**gpu, **workload}
    exporter = {**DCGM_EXPORTER_TARGET, "pod": f"nvidia-dcgm-exporter-{host[-1]}q7zk"}
    return {**gpu, **exporter, **{f"exported_{k}": v for k, v in workload.items()}}


# -- models on other inference servers, each drawn from its own generator ------------------

@dataclass(frozen=True)
class VllmModelSpec:
    """An LLM served by vLLM: `name` is its served model name (vLLM's `model_name` label)."""

    name: str
    namespace: str
    requests_per_minute: float          # over all engines
    prompt_tokens_per_request: float
    generation_tokens_per_request: float
    # One data-parallel engine per GPU: (host, gpu index, modelName), engine i on GPU i.
    gpus: tuple[tuple[str, str, str], ...]


VLLM_MODEL = VllmModelSpec("llama-chat", "llm", 240.0, 900.0, 260.0,
                           (("llm-node-1", "0", "NVIDIA H100 80GB HBM3"), ("llm-node-1", "1", "NVIDIA H100 80GB HBM3")))
# vLLM's finish reasons (vllm/v1/engine/__init__.py FINISH_REASON_STRINGS) and their shares here.
VLLM_FINISHED_REASONS = {"stop": 0.86, "length": 0.12, "abort": 0.015, "error": 0.005}
# vLLM's e2e latency histogram buckets (vllm/v1/metrics/loggers.py, request_latency_buckets).
VLLM_LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
                        120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)


def _add_vllm_model(fleet: Fleet, diurnal: np.ndarray, rng: np.random.Generator) -> None:
    """vLLM's own series for one model, per engine, and dcgm-exporter's series for its GPUs.

    vLLM (vllm/v1/metrics/loggers.py) labels every series `model_name` and `engine`;
    `vllm:request_success_total` adds `finished_reason`. Prompt tokens are counted for
    every request that was scheduled, generation tokens for what was generated.
    """
    spec = VLLM_MODEL
    minutes = len(fleet.timestamps)
    reasons = list(VLLM_FINISHED_REASONS)
    for engine, (host, index, model_name) in enumerate(spec.gpus):
        labels = {"model_name": spec.name, "engine": str(engine)}
        load = diurnal * rng.normal(1.0, 0.03, minutes).clip(0.8, 1.2)
        requests = rng.poisson(spec.requests_per_minute / len(spec.gpus) * load)
        by_reason = rng.multinomial(requests, list(VLLM_FINISHED_REASONS.values()))
        for i, reason in enumerate(reasons):
            fleet.series.append(SimSeries("vllm:request_success_total", {**labels, "finished_reason": reason},
                                          np.cumsum(by_reason[:, i].astype(np.float64))))
        generating = requests - by_reason[:, reasons.index("error")]
        prompt = rng.poisson(spec.prompt_tokens_per_request * requests).astype(np.float64)
        generated = rng.poisson(spec.generation_tokens_per_request * generating).astype(np.float64)
        fleet.series.append(SimSeries("vllm:prompt_tokens_total", dict(labels), np.cumsum(prompt)))
        fleet.series.append(SimSeries("vllm:generation_tokens_total", dict(labels), np.cumsum(generated)))
        _add_histogram(fleet, "vllm:e2e_request_latency_seconds", labels, requests.astype(np.float64),
                       VLLM_LATENCY_BUCKETS, lambda edges, _f: stats.lognorm.cdf(edges, s=0.7, scale=4.0),
                       np.ones(minutes), rng, mean_fn=lambda _f: 4.0 * np.exp(0.245))
        # Its GPU, as dcgm-exporter labels it (plain scrape, newer `hostname` label).
        uuid = "GPU-" + "".join(rng.choice(list("0123456789abcdef"), 8)) + "-9a41-11ef-8c2e-" + \
               "".join(rng.choice(list("0123456789abcdef"), 12))
        gpu = {"gpu": index, "UUID": uuid, "device": f"nvidia{index}", "modelName": model_name, "hostname": host,
               "namespace": spec.namespace, "pod": f"{spec.name}-vllm-{engine}", "container": "vllm"}
        util = (50 + 0.08 * requests + rng.normal(0, 3, minutes)).clip(1, 100).round()
        framebuffer = GPU_FRAMEBUFFER_MIB[model_name]
        used = (framebuffer * 0.9 + rng.normal(0, 100, minutes)).clip(0, framebuffer).round()
        for name, values in (("DCGM_FI_DEV_GPU_UTIL", util), ("DCGM_FI_DEV_FB_USED", used),
                             ("DCGM_FI_DEV_FB_FREE", framebuffer - used),
                             ("DCGM_FI_DEV_POWER_USAGE", (90 + 5.5 * util + rng.normal(0, 2, minutes)).round(3))):
            fleet.series.append(SimSeries(name, dict(gpu), values, kind="gauge"))


@dataclass(frozen=True)
class CpuPod:
    """A pod of a CPU-only model: its node and, per container, mean cores and memory (GiB)."""

    name: str
    node: str
    containers: dict[str, tuple[float, float]]
    uid: str


SELDON_V2_MODEL = "iris"
SELDON_V2_NAMESPACE = "seldon-mesh"
SELDON_V2_PODS = (
    CpuPod("mlserver-0", "cpu-node-1", {"mlserver": (0.80, 1.6), "agent": (0.10, 0.25)},
           "5f0c1d2e-8a3b-4c5d-9e6f-0a1b2c3d4e5f"),
    CpuPod("mlserver-1", "cpu-node-2", {"mlserver": (0.70, 1.5), "agent": (0.10, 0.25)},
           "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"),
)
# OpenCost's prices for cpu-node-1 only (USD per core-hour, per GiB-hour): cpu-node-2 takes the config's.
NODE_CPU_HOURLY_COST = {"cpu-node-1": 0.0425}
NODE_RAM_HOURLY_COST = {"cpu-node-1": 0.0057}
CADVISOR_IMAGES = {"mlserver": "docker.io/seldonio/mlserver:1.6.1", "agent": "docker.io/seldonio/seldon-agent:2.8.2",
                   "classifier": "docker.io/seldonio/income-classifier:1.0",
                   "seldon-container-engine": "docker.io/seldonio/seldon-core-executor:1.18.1"}


def _add_cadvisor(fleet: Fleet, namespace: str, pod: CpuPod, load: np.ndarray, rng: np.random.Generator) -> None:
    """cAdvisor's CPU and memory series for one pod, as the kubelet exports them.

    Per container: `container_cpu_usage_seconds_total` (cumulative core-seconds) and
    `container_memory_working_set_bytes`, labelled namespace, pod, container, image,
    name, id. The kubelet also exports the pod's own cgroup (`container=""`, the sum of
    its containers) and the pause container (`container="POD"`): counting either with
    the containers counts the pod twice.
    """
    scrape = {"job": "kubelet", "metrics_path": "/metrics/cadvisor", "instance": pod.node}
    pod_cgroup = f"/kubepods/burstable/pod{pod.uid}"
    total_cpu = np.zeros(len(fleet.timestamps))
    total_memory = np.zeros(len(fleet.timestamps))
    containers = {**pod.containers, "POD": (0.0005, 0.0004)}
    for container, (cores, gib) in containers.items():
        container_id = "".join(rng.choice(list("0123456789abcdef"), 64))
        labels = {**scrape, "namespace": namespace, "pod": pod.name, "container": container,
                  "image": CADVISOR_IMAGES.get(container, "registry.k8s.io/pause:3.9"),
                  "name": container_id, "id": f"{pod_cgroup}/{container_id}"}
        used = (cores * load * rng.normal(1.0, 0.05, len(load))).clip(0) * MINUTE
        memory = (gib * 2**30 * (0.9 + 0.1 * load) + rng.normal(0, 2**24, len(load))).clip(0).round()
        total_cpu += used
        total_memory += memory
        fleet.series.append(SimSeries("container_cpu_usage_seconds_total", labels, np.cumsum(used)))
        fleet.series.append(SimSeries("container_memory_working_set_bytes", dict(labels), memory, kind="gauge"))
    # The pod's cgroup: its containers plus the pod's own overhead.
    labels = {**scrape, "namespace": namespace, "pod": pod.name, "container": "", "image": "", "name": "",
              "id": pod_cgroup}
    fleet.series.append(SimSeries("container_cpu_usage_seconds_total", labels, np.cumsum(total_cpu * 1.01)))
    fleet.series.append(SimSeries("container_memory_working_set_bytes", dict(labels), total_memory + 2**22,
                                  kind="gauge"))
    # kube-state-metrics: which node runs the pod.
    fleet.series.append(SimSeries("kube_pod_info", {
        "job": "kube-state-metrics", "namespace": namespace, "pod": pod.name, "node": pod.node, "uid": pod.uid,
        "host_ip": f"10.0.{pod.node[-1]}.10", "pod_ip": f"10.244.{pod.node[-1]}.{len(pod.name)}",
        "created_by_kind": "StatefulSet", "created_by_name": pod.name.rsplit("-", 1)[0], "priority_class": "",
        "host_network": "false"}, np.ones(len(load)), kind="gauge"))


def _add_opencost_cpu_prices(fleet: Fleet) -> None:
    """OpenCost's per-node CPU and RAM prices (its /metrics: node, instance, instance_type, region, ...)."""
    minutes = len(fleet.timestamps)
    for metric, prices in (("node_cpu_hourly_cost", NODE_CPU_HOURLY_COST),
                           ("node_ram_hourly_cost", NODE_RAM_HOURLY_COST)):
        for node, price in prices.items():
            labels = {"node": node, "instance": node, "instance_type": "m6i.2xlarge", "region": "us-east-1",
                      "provider_id": f"aws:///us-east-1a/i-0{node[-1]}4f2c9d8e7b6a5"}
            fleet.series.append(SimSeries(metric, labels, np.full(minutes, price), kind="gauge"))


def _add_seldon_v2_model(fleet: Fleet, diurnal: np.ndarray, rng: np.random.Generator) -> None:
    """A Seldon Core v2 model on MLServer: the agent's counters (scheduler/pkg/metrics/agent.go)
    `seldon_model_infer_total` and `seldon_model_infer_seconds_total`, labelled server,
    server_replica, model, model_internal (the model and its version), method_type and code
    (the HTTP status over REST, the gRPC code name over gRPC), and the pods' cAdvisor series."""
    minutes = len(fleet.timestamps)
    for replica, pod in enumerate(SELDON_V2_PODS):
        load = diurnal * rng.normal(1.0, 0.03, minutes).clip(0.8, 1.2)
        scrape = {"namespace": SELDON_V2_NAMESPACE, "pod": pod.name}
        base = {**scrape, "server": "mlserver", "server_replica": str(replica), "model": SELDON_V2_MODEL,
                "model_internal": f"{SELDON_V2_MODEL}_1"}
        for method_type, per_minute, codes in (("rest", 300.0, ("200", "500")), ("grpc", 150.0, ("OK", "Unavailable"))):
            requests = rng.poisson(per_minute * load)
            failed = rng.binomial(requests, BASELINE_ERROR_RATIO * 5)
            for code, counts in ((codes[0], requests - failed), (codes[1], failed)):
                labels = {**base, "method_type": method_type, "code": code}
                counts = counts.astype(np.float64)
                fleet.series.append(SimSeries("seldon_model_infer_total", labels, np.cumsum(counts)))
                fleet.series.append(SimSeries("seldon_model_infer_seconds_total", dict(labels),
                                              np.cumsum(counts * 0.012)))
        _add_cadvisor(fleet, SELDON_V2_NAMESPACE, pod, load, rng)
    _add_opencost_cpu_prices(fleet)


SELDON_V1_MODEL = "income-classifier"
SELDON_V1_NAMESPACE = "seldon"
SELDON_V1_NODE = "cpu-node-2"
# predictor -> (predictor_version, share of traffic); the canary is a version of its own.
SELDON_V1_PREDICTORS = {"default": ("v1", 0.9), "canary": ("v2", 0.1)}
# kube-state-metrics' resource requests per container of each predictor's pod (cores, bytes).
SELDON_V1_REQUESTS = {"classifier": (0.5, 1.0 * 2**30), "seldon-container-engine": (0.1, 0.25 * 2**30)}
SELDON_V1_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _add_seldon_v1_model(fleet: Fleet, diurnal: np.ndarray, rng: np.random.Generator) -> None:
    """A Seldon Core v1 deployment: the executor's histogram
    `seldon_api_executor_server_requests_seconds` (executor/api/metric/server.go), labelled
    deployment_name, predictor_name, predictor_version, service, method and code, for
    predictions over REST (service "predictions", HTTP codes) and gRPC (service the full
    method, gRPC codes), plus health and feedback calls that are not inferences; and
    kube-state-metrics' resource requests of the predictors' pods."""
    minutes = len(fleet.timestamps)
    load = diurnal * rng.normal(1.0, 0.03, minutes).clip(0.8, 1.2)
    for predictor, (version, share) in SELDON_V1_PREDICTORS.items():
        base = {"namespace": SELDON_V1_NAMESPACE, "deployment_name": SELDON_V1_MODEL, "predictor_name": predictor,
                "predictor_version": version}
        calls = (("predictions", "POST", 200.0 * share, ("200", "500")),
                 ("/seldon.protos.Seldon/Predict", "unary", 100.0 * share, ("OK", "Unavailable")),
                 ("feedback", "POST", 20.0 * share, ("200", "500")),
                 ("status", "GET", 12.0, ("200", "500")))
        for service, method, per_minute, codes in calls:
            requests = rng.poisson(per_minute * load)
            failed = rng.binomial(requests, BASELINE_ERROR_RATIO * 5)
            for code, counts in ((codes[0], requests - failed), (codes[1], failed)):
                _add_histogram(fleet, "seldon_api_executor_server_requests_seconds",
                               {**base, "service": service, "method": method, "code": code},
                               counts.astype(np.float64), SELDON_V1_BUCKETS,
                               lambda edges, _f: stats.lognorm.cdf(edges, s=0.5, scale=0.03), np.ones(minutes),
                               rng, mean_fn=lambda _f: 0.03 * np.exp(0.125))
        pod = f"{SELDON_V1_MODEL}-{predictor}-0-classifier-6c9d7f5b8-x2k4p"
        for container, (cores, memory) in SELDON_V1_REQUESTS.items():
            labels = {"job": "kube-state-metrics", "namespace": SELDON_V1_NAMESPACE, "pod": pod,
                      "container": container, "node": SELDON_V1_NODE}
            fleet.series.append(SimSeries("kube_pod_container_resource_requests",
                                          {**labels, "resource": "cpu", "unit": "core"},
                                          np.full(minutes, cores), kind="gauge"))
            fleet.series.append(SimSeries("kube_pod_container_resource_requests",
                                          {**labels, "resource": "memory", "unit": "byte"},
                                          np.full(minutes, memory), kind="gauge"))


def _add_placement_fleet(fleet: Fleet, diurnal: np.ndarray, rng: np.random.Generator) -> None:
    """The placement scenarios (PLACEMENT_FLEET): Triton counters per version, dcgm-exporter series
    per (GPU unit, pod) as its Kubernetes mapping exports them, kube_pod_labels, per-process SM shares."""
    minutes = len(fleet.timestamps)
    uuids: dict[tuple[str, str], str] = {}
    utilization: dict[tuple[str, str, str, str], np.ndarray] = {}
    for spec in PLACEMENT_FLEET:
        load = diurnal * rng.normal(1.0, 0.03, minutes).clip(0.8, 1.2)
        for version, per_minute in spec.requests_per_minute.items():
            requests = rng.poisson(per_minute * load).astype(np.float64)
            fleet.series.append(SimSeries("nv_inference_count", {"model": spec.name, "version": version,
                                                                 "namespace": spec.namespace}, np.cumsum(requests)))
        for pod in spec.pods:
            if spec.placement and "pod_label" in spec.placement:
                # kube-state-metrics: the pod label app.kubernetes.io/version as label_app_kubernetes_io_version.
                fleet.series.append(SimSeries("kube_pod_labels", {
                    "namespace": spec.namespace, "pod": pod.name, "uid": f"uid-{pod.name}",
                    "label_app_kubernetes_io_version": pod.version, "label_app": spec.name,
                    "job": "kube-state-metrics"}, np.ones(minutes), kind="gauge"))
            for host, index, profile, instance in pod.units:
                uuid = uuids.setdefault((host, index), "GPU-" + "".join(rng.choice(list("0123456789abcdef"), 8)) +
                                        "-7a1c-11ef-8e2b-" + "".join(rng.choice(list("0123456789abcdef"), 12)))
                unit = (host, index, profile, instance)
                if unit not in utilization:
                    # Time-sliced pods see one reading of their GPU: drawn once per unit.
                    utilization[unit] = (30 + 35 * (diurnal - 0.6) + rng.normal(0, 4, minutes)).clip(1, 100).round()
                labels = {"gpu": index, "UUID": uuid, "device": f"nvidia{index}", "modelName": spec.model_name,
                          "hostname": host}
                workload = {"namespace": spec.namespace, "pod": pod.name, "container": "triton"}
                scraped = _gpu_labels(labels, workload, host, spec.gpu_scrape)
                util = utilization[unit]
                if profile:
                    scraped = {**scraped, "GPU_I_PROFILE": profile, "GPU_I_ID": instance}
                    fleet.series.append(SimSeries("DCGM_FI_PROF_GR_ENGINE_ACTIVE", scraped, util / 100.0, kind="gauge"))
                else:
                    fleet.series.append(SimSeries("DCGM_FI_DEV_GPU_UTIL", scraped, util, kind="gauge"))
                if pod.sm_share is not None and (host, index) in PROCESS_LABELLED_GPUS:
                    share = (pod.sm_share * (0.8 + 0.4 * rng.random(minutes))).round(4)
                    fleet.series.append(SimSeries("monitor_gpu_process_sm_utilization_ratio",
                                                  {**labels, "pid": str(4000 + int(index) * 10 + len(pod.name)),
                                                   **workload}, share, kind="gauge"))


def placement_model_configs() -> list[dict]:
    """The placement scenarios' `models` entries in monitor.yaml."""
    out = []
    for spec in PLACEMENT_FLEET:
        selector = f'namespace="{spec.namespace}"' + (f',pod=~"{spec.pod_selector}"' if spec.pod_selector else "")
        model: dict = {"name": spec.name, "inferences": f'nv_inference_count{{model="{spec.name}"}}',
                       "version_label": "version", "gpus": f"{{{selector}}}"}
        if spec.placement:
            model["placement"] = dict(spec.placement)
        out.append(model)
    return out
