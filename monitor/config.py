"""The daemon's typed config (`monitor.yaml`), validated once at load.

The top-level keys and their meaning are a contract with users and other tools:
add beside them, never rename. Paths and globs in the file are relative to the
file's own directory, so a config works wherever the daemon is started from.
Secrets are never inline: each is named by `*_env` (an environment variable) or
`*_file` (a file holding it), and read only when used (`monitor.secrets`).
"""

from __future__ import annotations

import glob as globlib
import ipaddress
import math
import os
import re
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Literal

import yaml

from monitor.addresses import http_url_problem, parse_listen
from monitor.errors import ConfigError, Problem
from monitor.promql_selectors import SelectorSyntaxError, is_label_name, parse_series_selector
from monitor.typed_yaml import YamlFile, mapping_get, node_line

DEFAULT_CONFIG_PATH = "monitor.yaml"
CONFIG_ENV_VAR = "MONITOR_CONFIG"


Problems = list[tuple[str | None, str]]


def _non_negative(obj, *keys: str) -> Problems:
    """Each numeric field must be a finite number >= 0 (NaN and infinity are never a price or threshold)."""
    return [(key, f"must be a finite number >= 0, got {getattr(obj, key)!r}") for key in keys
            if not (math.isfinite(getattr(obj, key)) and getattr(obj, key) >= 0)]


def _positive_durations(obj, *keys: str) -> Problems:
    """Each duration field must be longer than zero (a zero timeout or period means nothing)."""
    return [(key, "must be longer than 0s") for key in keys
            if getattr(obj, key) is not None and getattr(obj, key) <= timedelta(0)]


def _url_problems(obj, *keys: str) -> Problems:
    problems: Problems = []
    for key in keys:
        url = getattr(obj, key)
        problem = http_url_problem(url) if url is not None else None
        if problem:
            problems.append((key, problem))
    return problems


def postgres_url_problem(url: str) -> str | None:
    """Why `url` is not a usable PostgreSQL URL (`postgresql://user@host:port/database`), or None.
    A password inside it is refused: secrets come from *_env / *_file, never inline."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("postgresql", "postgres"):
        return f"must start with postgresql:// (got scheme {parts.scheme or 'none'!r})"
    if parts.password is not None:
        return ("must not contain a password (user:password@): give it in state.password_env or "
                "state.password_file")
    if not parts.hostname:
        return "names no host (e.g. postgresql://db:5432/monitor, with the user before an @)"
    if port == 0:
        return "port must be 1-65535"
    if not parts.path.strip("/"):
        return "names no database (e.g. postgresql://db:5432/monitor, with the user before an @)"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "must not contain control characters"
    return None


def _name_problem(key: str, value: str) -> Problems:
    """A name people read and we key on: not empty, no control characters."""
    if not value.strip():
        return [(key, "must not be empty")]
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return [(key, f"must not contain control characters, got {value!r}")]
    return []


def _label_name_problems(key: str, names) -> Problems:
    return [(key, f"{name!r} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)")
            for name in names if not is_label_name(name)]


def _selector_problem(key: str, selector: str | None, *, metric_required: bool) -> Problems:
    """A PromQL series selector we paste into queries: `metric{label="value"}` or `{label="value"}`."""
    if selector is None:
        return []
    try:
        parsed = parse_series_selector(selector)
    except SelectorSyntaxError as exc:
        return [(key, f"{selector!r} is not a PromQL series selector: {exc}")]
    if metric_required and parsed.metric is None and not any(m.name == "__name__" for m in parsed.matchers):
        return [(key, f"{selector!r} names no metric (expected metric{{label=\"value\"}})")]
    return []


def _secret_pair_check(prefix: str, env: str | None, file: str | None, required: bool) -> Problems:
    if env and file:
        return [(f"{prefix}_file", f"give either {prefix}_env or {prefix}_file, not both")]
    if required and not (env or file):
        return [(None, f"needs {prefix}_env (an environment variable) or {prefix}_file")]
    return []


@dataclass(frozen=True)
class PrometheusConfig:
    url: str = "http://127.0.0.1:9090"
    timeout: timedelta = timedelta(seconds=30)
    # Bound on concurrent queries one cycle may have in flight against the server.
    max_concurrency: int = 8
    # Extra non-secret headers (e.g. X-Scope-OrgID for Mimir/Cortex tenants).
    headers: dict[str, str] = field(default_factory=dict)
    bearer_token_env: str | None = None
    bearer_token_file: str | None = None

    def yaml_check(self) -> Problems:
        problems = _secret_pair_check("bearer_token", self.bearer_token_env, self.bearer_token_file, required=False)
        problems += _url_problems(self, "url")
        if self.max_concurrency < 1:
            problems.append(("max_concurrency", "must be at least 1"))
        problems += _positive_durations(self, "timeout")
        for name, value in self.headers.items():
            if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
                problems.append(("headers", f"{name!r} is not a valid HTTP header name"))
            if any(ord(ch) < 32 and ch != "\t" or ord(ch) == 127 for ch in value):
                problems.append(("headers", f"the value of {name!r} must not contain control characters"))
        return problems


# The weekly report reads its week and four weeks of trend before it from the state
# file's history, so the default keeps five weeks.
DEFAULT_STATE_RETENTION = timedelta(days=35)


DEFAULT_STATE_PATH = "monitor-state.db"


@dataclass(frozen=True)
class StateConfig:
    """Where the state lives: an SQLite file (`path`, one daemon) or a PostgreSQL database
    (`url`, shared by replicas behind a leader lease; its password from password_env/_file)."""

    path: str = DEFAULT_STATE_PATH
    url: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    # How long finished history (cycles, alert transitions, notifications, deliveries)
    # is kept; a firing or pending alert's history and undelivered work are always kept.
    retention: timedelta = DEFAULT_STATE_RETENTION
    # Replicas sharing a PostgreSQL state (monitor.ha): the leader's lease lapses this long after
    # its last renewal (it renews every third of it); `replica` names this process in the lease
    # and the logs (empty: <hostname>-<pid>).
    lease_ttl: timedelta = timedelta(seconds=30)
    replica: str = ""

    def yaml_check(self) -> Problems:
        problems: Problems = [("path", "must not be empty")] if not self.path.strip() else []
        problems += _secret_pair_check("password", self.password_env, self.password_file, required=False)
        if self.url is not None:
            problem = postgres_url_problem(self.url)
            if problem:
                problems.append(("url", problem))
            if self.path != DEFAULT_STATE_PATH:
                problems.append(("url", "give either state.path (an SQLite file) or state.url (PostgreSQL), "
                                        "not both"))
        elif self.password_env or self.password_file:
            problems.append(("password_env" if self.password_env else "password_file",
                             "is for state.url (PostgreSQL); an SQLite state.path has no password"))
        if self.retention < timedelta(days=1):
            problems.append(("retention", "must be at least 1d (the weekly report's 4-week trend reads 35d)"))
        if not timedelta(seconds=2) <= self.lease_ttl <= timedelta(hours=1):
            problems.append(("lease_ttl", "must be between 2s and 1h"))
        if self.replica and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}", self.replica):
            problems.append(("replica", "must be 1-200 letters, digits or . _ : @ -, starting with a letter "
                                        "or digit"))
        return problems


@dataclass(frozen=True)
class DriftThresholds:
    """When a column counts as drifted (defaults: Evidently's)."""

    psi: float = 0.2
    wasserstein_norm: float = 0.1
    js: float = 0.1

    def yaml_check(self) -> Problems:
        return _non_negative(self, "psi", "wasserstein_norm", "js")


@dataclass(frozen=True)
class PredictionLogConfig:
    """A Parquet prediction log for feature drift: one row per prediction."""

    path: str
    timestamp_column: str = "timestamp"
    columns: list[str] | None = None

    def yaml_check(self) -> Problems:
        return _name_problem("path", self.path) + _name_problem("timestamp_column", self.timestamp_column)


@dataclass(frozen=True)
class DriftConfig:
    reference: timedelta = timedelta(days=7)
    current: timedelta = timedelta(hours=1)
    # Below this many observations in a window the statistics are "no data":
    # p-values on a handful of points are noise.
    min_samples: int = 100
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)
    columns: dict[str, DriftThresholds] = field(default_factory=dict)
    dataset_drift_share: float = 0.5
    log: PredictionLogConfig | None = None

    def yaml_check(self) -> Problems:
        problems = _positive_durations(self, "reference", "current")
        if not problems and self.current >= self.reference:
            problems.append(("current", "the current window must be shorter than the reference window"))
        if self.min_samples < 1:
            problems.append(("min_samples", f"must be at least 1, got {self.min_samples}"))
        if not 0 < self.dataset_drift_share <= 1:
            problems.append(("dataset_drift_share", "must be in (0, 1]"))
        return problems


def _objective_problem(key: str, value: float | None) -> Problems:
    if value is not None and not (math.isfinite(value) and 0 < value < 1):
        hint = " (a percentage? objectives here are ratios such as 0.999)" if 1 < value < 100 else ""
        return [(key, f"must be a ratio above 0 and below 1 (e.g. 0.999), got {value!r}{hint}")]
    return []


@dataclass(frozen=True)
class DefaultLatencySlo:
    """`objective` of requests faster than `threshold`, read from the preset's latency histogram."""

    threshold: timedelta
    objective: float = 0.99

    def yaml_check(self) -> Problems:
        problems = _objective_problem("objective", self.objective)
        if self.threshold <= timedelta(0):
            problems.append(("threshold", "must be positive"))
        return problems


@dataclass(frozen=True)
class DefaultSlosConfig:
    """A preset model's default SLOs (monitor.slo.preset_slos): on unless `enabled: false`.

    `availability` is the objective for successful requests, where the preset counts
    failures (Triton, Seldon); None means the default, 0.999. `latency` adds a latency SLO
    where the preset exports a histogram (vLLM, KServe, Seldon); no threshold suits every
    model, so there is none until one is given.
    """

    enabled: bool = True
    availability: float | None = None
    latency: DefaultLatencySlo | None = None

    def yaml_check(self) -> Problems:
        return _objective_problem("availability", self.availability)


# kube-state-metrics exports a pod label `a.b/c` on kube_pod_labels as `label_a_b_c`
# (every character outside [a-zA-Z0-9_] becomes `_`; kube-state-metrics' sanitizeLabelName).
_KSM_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def kube_pod_label_name(pod_label: str) -> str:
    """The label that carries Kubernetes pod label `pod_label` on kube-state-metrics' kube_pod_labels."""
    return "label_" + _KSM_INVALID.sub("_", pod_label)


@dataclass(frozen=True)
class PlacementConfig:
    """Which version each of a model's pods serves, so each version is charged its own pods' GPUs.

    One of: `pod_label`, a Kubernetes pod label (e.g. `app.kubernetes.io/version`) read from
    kube-state-metrics' `kube_pod_labels` (which must export it: `--metric-labels-allowlist`),
    joined to the GPU series on namespace and pod; or `pod_pattern`, a regular expression
    on the pod name with a group named `version` (e.g. `^chat-(?P<version>v[0-9]+)-`).
    """

    pod_label: str | None = None
    pod_pattern: str | None = None

    def yaml_check(self) -> Problems:
        if (self.pod_label is None) == (self.pod_pattern is None):
            return [(None, "needs exactly one of 'pod_label' (a pod label from kube_pod_labels) or "
                           "'pod_pattern' (a regular expression on the pod name with a (?P<version>...) group)")]
        if self.pod_label is not None:
            if not self.pod_label.strip() or any(ord(ch) < 32 for ch in self.pod_label):
                return [("pod_label", f"must be a Kubernetes label name, got {self.pod_label!r}")]
            return []
        try:
            pattern = re.compile(self.pod_pattern or "")
        except re.error as exc:
            return [("pod_pattern", f"{self.pod_pattern!r} is not a regular expression: {exc}")]
        if "version" not in pattern.groupindex:
            return [("pod_pattern", f"{self.pod_pattern!r} needs a group named version, e.g. "
                                    f"'^chat-(?P<version>[^-]+)-'")]
        return []


@dataclass(frozen=True)
class TokensConfig:
    """An LLM's token counters (monitor.cost.tokens): cumulative counters of prompt
    (input) and generated (output) tokens, e.g. `my_prompt_tokens_total{model="chat"}`.
    The vLLM preset supplies vLLM's own; these replace them."""

    prompt: str | None = None
    generation: str | None = None

    def yaml_check(self) -> Problems:
        problems = _selector_problem("prompt", self.prompt, metric_required=True)
        problems += _selector_problem("generation", self.generation, metric_required=True)
        if self.prompt is None and self.generation is None:
            problems.append((None, "give 'prompt' and/or 'generation' (token counter selectors)"))
        return problems


@dataclass(frozen=True)
class ModelConfig:
    name: str
    # An inference-server preset fills in the metric names (monitor.cost.presets).
    preset: Literal["triton", "vllm", "kserve", "seldon", "seldon-v2"] | None = None
    inferences: str | None = None
    version_label: str = "version"
    gpus: str | None = None
    cpu: str | None = None
    memory: str | None = None
    # Where `cpu`/`memory` given as `{matchers}` are read from: cAdvisor's measured usage,
    # or kube-state-metrics' resource requests (what the pods reserve, used or not).
    resource_source: Literal["usage", "requests"] = "usage"
    tokens: TokensConfig | None = None
    predictions: str | None = None
    drift: DriftConfig | None = None
    default_slos: DefaultSlosConfig = field(default_factory=DefaultSlosConfig)
    # Per-version GPU placement: which pods serve which version (cost per version from their own GPUs).
    placement: PlacementConfig | None = None

    def yaml_check(self) -> Problems:
        problems = _name_problem("name", self.name)
        if self.placement is not None and self.gpus is None:
            problems.append(("placement", "needs 'gpus' (placement charges each version the GPUs its pods held)"))
        if self.preset is None and self.inferences is None:
            problems.append((None, "needs 'inferences' (a counter of inferences served) or a 'preset'"))
        # Built into `sum by (<version_label>)`: anything but a label name would rewrite the query.
        if self.version_label and not is_label_name(self.version_label):
            problems.append(("version_label", f"{self.version_label!r} is not a valid label name "
                                              f"([a-zA-Z_][a-zA-Z0-9_]*)"))
        problems += _selector_problem("inferences", self.inferences, metric_required=True)
        problems += _selector_problem("predictions", self.predictions, metric_required=True)
        problems += _selector_problem("gpus", self.gpus, metric_required=False)
        # cpu and memory are either `{matchers}` (cAdvisor's series) or a PromQL expression of their own.
        for key in ("cpu", "memory"):
            value = getattr(self, key)
            if value is not None and value.strip().startswith("{"):
                problems += _selector_problem(key, value, metric_required=False)
            elif value is not None and not value.strip():
                problems.append((key, "must not be empty"))
        return problems


@dataclass(frozen=True)
class Pricing:
    """USD per GPU-hour, per core-hour and per GiB-hour (OpenCost's keys)."""

    GPU: float = 0.0
    CPU: float = 0.0
    RAM: float = 0.0
    # Prices per GPU model, keyed by dcgm-exporter's `modelName` label value.
    gpu_models: dict[str, float] = field(default_factory=dict)
    # USD per hour of one MIG instance, keyed by dcgm-exporter's `GPU_I_PROFILE` (e.g. "1g.10gb");
    # without one, a slice costs its share of the GPU's price (monitor.cost.mig).
    mig_profiles: dict[str, float] = field(default_factory=dict)

    def yaml_check(self) -> Problems:
        problems = _non_negative(self, "GPU", "CPU", "RAM")
        for key in ("gpu_models", "mig_profiles"):
            problems += [(key, f"price for {name!r} must be a finite number >= 0, got {price!r}")
                         for name, price in getattr(self, key).items() if not (math.isfinite(price) and price >= 0)]
        return problems


@dataclass(frozen=True)
class CostConfig:
    pricing: Pricing = field(default_factory=Pricing)


@dataclass(frozen=True)
class SlackConfig:
    channel: str | None = None
    token_env: str | None = None
    token_file: str | None = None
    # The Slack Web API base URL (a stand-in in tests, an egress proxy in production).
    base_url: str = "https://slack.com/api/"
    # Alternative to a bot token: an incoming-webhook URL, itself a secret.
    webhook_url_env: str | None = None
    webhook_url_file: str | None = None
    timeout: timedelta = timedelta(seconds=10)
    # Loopback and private addresses (an egress proxy, a stand-in) are refused unless set;
    # cloud metadata and link-local addresses are refused even then.
    allow_private: bool = False
    # A Jinja2 file overriding the message's text (sandboxed, mrkdwn-escaped; a template
    # error falls back to the built-in text).
    template: str | None = None

    def yaml_check(self) -> Problems:
        problems = _secret_pair_check("token", self.token_env, self.token_file, required=False)
        problems += _secret_pair_check("webhook_url", self.webhook_url_env, self.webhook_url_file, required=False)
        has_token = bool(self.token_env or self.token_file)
        has_webhook = bool(self.webhook_url_env or self.webhook_url_file)
        if has_token == has_webhook:
            problems.append((None, "needs exactly one of a bot token (token_env/token_file) "
                                   "or an incoming webhook (webhook_url_env/webhook_url_file)"))
        if has_token and not (self.channel or "").strip():
            problems.append((None, "a bot token needs a 'channel' to post to"))
        return problems + _url_problems(self, "base_url") + _positive_durations(self, "timeout")


WEBHOOK_EVENT_TYPES = ("rollback.requested", "rollback.cancelled", "ping")


@dataclass(frozen=True)
class WebhookConfig:
    name: str
    url: str
    secret_env: str | None = None
    secret_file: str | None = None
    events: list[Literal["rollback.requested", "rollback.cancelled", "ping"]] = field(
        default_factory=lambda: ["rollback.requested", "rollback.cancelled"])
    # Only alerts whose labels match all of these are sent to this subscriber.
    match: dict[str, str] = field(default_factory=dict)
    # Loopback and private addresses are refused unless set; cloud metadata and
    # link-local addresses are refused even then.
    allow_private: bool = False
    timeout: timedelta = timedelta(seconds=15)

    def yaml_check(self) -> Problems:
        problems = _name_problem("name", self.name)
        problems += _secret_pair_check("secret", self.secret_env, self.secret_file, required=True)
        problems += _url_problems(self, "url") + _positive_durations(self, "timeout")
        return problems + _label_name_problems("match", self.match)


@dataclass(frozen=True)
class AlertmanagerConfig:
    url: str
    timeout: timedelta = timedelta(seconds=10)
    # Alertmanager is usually an internal address: set this to send to it.
    allow_private: bool = False

    def yaml_check(self) -> Problems:
        return _url_problems(self, "url") + _positive_durations(self, "timeout")


# -- Receivers and the route tree (Alertmanager's model) -------------------------------
# Each integration config is owned by its integration module in monitor/outputs/; these
# are only the typed, validated YAML shapes. Field names follow Alertmanager's
# receiver configs where a field means the same thing.


@dataclass(frozen=True)
class PagerDutyConfig:
    """PagerDuty Events API v2 (`pagerduty_configs`): trigger/resolve with the alert group's dedup_key."""

    routing_key_env: str | None = None
    routing_key_file: str | None = None
    url: str = "https://events.pagerduty.com/v2/enqueue"
    # Template for `source` (default: the daemon's host name) and `client` shown in PagerDuty.
    source: str | None = None
    client: str = "monitor"
    client_url: str | None = None
    send_resolved: bool = True
    timeout: timedelta = timedelta(seconds=10)
    allow_private: bool = False
    # A Jinja2 file overriding the summary (sandboxed; a template error falls back to the built-in).
    template: str | None = None

    def yaml_check(self) -> Problems:
        problems = _secret_pair_check("routing_key", self.routing_key_env, self.routing_key_file, required=True)
        return problems + _url_problems(self, "url", "client_url") + _positive_durations(self, "timeout")


@dataclass(frozen=True)
class TeamsConfig:
    """Microsoft Teams through a Workflows webhook (`msteams_configs`): an Adaptive Card."""

    webhook_url_env: str | None = None
    webhook_url_file: str | None = None
    send_resolved: bool = True
    timeout: timedelta = timedelta(seconds=10)
    allow_private: bool = False
    template: str | None = None

    def yaml_check(self) -> Problems:
        problems = _secret_pair_check("webhook_url", self.webhook_url_env, self.webhook_url_file, required=True)
        return problems + _positive_durations(self, "timeout")


@dataclass(frozen=True)
class EmailConfig:
    """Email over SMTP (`email_configs`): STARTTLS, optional auth, multipart text + HTML."""

    to: list[str]
    from_: str = field(default="monitor@localhost", metadata={"key": "from"})
    # host:port of the SMTP server, as Alertmanager's `smarthost`.
    smarthost: str = "localhost:25"
    auth_username: str | None = None
    auth_password_env: str | None = None
    auth_password_file: str | None = None
    # STARTTLS is required unless set false (a loopback relay); Alertmanager's `require_tls`.
    require_tls: bool = True
    hello: str = "localhost"
    send_resolved: bool = True
    timeout: timedelta = timedelta(seconds=15)
    allow_private: bool = False
    template: str | None = None
    # A PEM file of CA certificates to verify the server's STARTTLS certificate with
    # (a private CA); default: the system's trust store.
    tls_ca_file: str | None = None

    def yaml_check(self) -> Problems:
        problems = _secret_pair_check("auth_password", self.auth_password_env, self.auth_password_file,
                                      required=False)
        if not self.to:
            problems.append(("to", "needs at least one address"))
        if smarthost_problem(self.smarthost):
            problems.append(("smarthost", smarthost_problem(self.smarthost)))
        if bool(self.auth_password_env or self.auth_password_file) and not self.auth_username:
            problems.append(("auth_username", "a password is configured but no auth_username"))
        return problems + _positive_durations(self, "timeout")


def smarthost_problem(smarthost: str) -> str | None:
    """Why `smarthost` is not host:port (as Alertmanager's), or None."""
    host, sep, port = smarthost.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host.strip() or not port.isdigit() or not 0 < int(port) < 65536:
        return f"expected host:port such as 'smtp.example.com:587', got {smarthost!r}"
    return None


@dataclass(frozen=True)
class AlertmanagerWebhookConfig:
    """A generic webhook whose body is Alertmanager's webhook payload, version 4 (`webhook_configs`)."""

    url: str | None = None
    url_env: str | None = None
    url_file: str | None = None
    send_resolved: bool = True
    # Alertmanager's max_alerts: 0 sends every alert of the group.
    max_alerts: int = 0
    timeout: timedelta = timedelta(seconds=10)
    allow_private: bool = False

    def yaml_check(self) -> Problems:
        problems = _secret_pair_check("url", self.url_env, self.url_file, required=False)
        if bool(self.url) == bool(self.url_env or self.url_file):
            problems.append((None, "needs exactly one of 'url' or url_env/url_file"))
        return problems + _url_problems(self, "url") + _positive_durations(self, "timeout")


@dataclass(frozen=True)
class ReceiverConfig:
    """A named receiver (`outputs.receivers[]`) holding one or more integrations."""

    name: str
    slack_configs: list[SlackConfig] = field(default_factory=list)
    pagerduty_configs: list[PagerDutyConfig] = field(default_factory=list)
    msteams_configs: list[TeamsConfig] = field(default_factory=list)
    email_configs: list[EmailConfig] = field(default_factory=list)
    webhook_configs: list[AlertmanagerWebhookConfig] = field(default_factory=list)

    def yaml_check(self) -> Problems:
        return _name_problem("name", self.name)


@dataclass(frozen=True)
class RouteConfig:
    """One node of the route tree (`outputs.route`), Alertmanager's route: unset fields inherit."""

    receiver: str | None = None
    # `label=value`, `label!=value`, `label=~regex`, `label!~regex` (Alertmanager's matchers).
    matchers: list[str] = field(default_factory=list)
    group_by: list[str] | None = None
    group_wait: timedelta | None = None
    group_interval: timedelta | None = None
    repeat_interval: timedelta | None = None
    continue_: bool = field(default=False, metadata={"key": "continue"})
    routes: list["RouteConfig"] = field(default_factory=list)

    def yaml_check(self) -> Problems:
        # The matcher grammar lives with the route tree that runs it (imported here, at
        # check time, because alerting imports this module).
        from monitor.alerting.routes import parse_matcher

        problems: Problems = []
        if self.receiver is not None:
            problems += _name_problem("receiver", self.receiver)
        for index, text in enumerate(self.matchers):
            try:
                parse_matcher(text)
            except ValueError as exc:
                problems.append((f"matchers[{index}]", str(exc)))
        if self.group_by is not None:
            problems += _label_name_problems("group_by", [n for n in self.group_by if n != "..."])
        if self.group_wait is not None and self.group_wait < timedelta(0):
            problems.append(("group_wait", "must not be negative"))
        return problems + _positive_durations(self, "group_interval", "repeat_interval")




@dataclass(frozen=True)
class OutputsConfig:
    slack: SlackConfig | None = None
    webhooks: list[WebhookConfig] = field(default_factory=list)
    alertmanager: AlertmanagerConfig | None = None
    # Delays before each delivery attempt (the first is the first attempt); after the
    # last one fails the delivery expires. Default: the Standard Webhooks schedule
    # (immediately, 5s, 5m, 30m, 2h, 5h, 10h, 14h, 20h, 24h).
    retry_schedule: list[timedelta] | None = None
    # Give up on a delivery this long after it was queued, even while a receiver keeps
    # answering 429 (default: the schedule's length plus jitter and an hour).
    expire_after: timedelta | None = None
    # Links in notifications: the weekly report, and Prometheus as people reach it
    # (default: prometheus.url) for graphs of an alert's query.
    report_url: str | None = None
    prometheus_url: str | None = None
    # The route tree and its receivers. Without `route`, the legacy `slack` (and
    # `alertmanager`) config is the root route's receiver `default`.
    route: RouteConfig | None = None
    receivers: list[ReceiverConfig] = field(default_factory=list)
    # A dashboard link in every notification: a Jinja2 template over the alert's labels,
    # e.g. "https://grafana.example/d/slo?var-service={{ labels.service }}".
    dashboard_url: str | None = None
    # Where a rule's relative `runbook_url` (the default rules' `#anchor`s) points: where your
    # team reads the README's runbooks (your repository, an internal wiki). Unset, a relative
    # runbook gets no link: a guessed URL would be a dead link at 3 a.m.
    runbook_base_url: str | None = None

    def yaml_check(self) -> Problems:
        names = [w.name for w in self.webhooks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        problems: Problems = [
            ("webhooks", f"duplicate webhook name {n!r}") for n in duplicates]
        if self.retry_schedule is not None:
            if not self.retry_schedule:
                problems.append(("retry_schedule", "needs at least one delay (0s: the first attempt)"))
            elif any(d < timedelta(0) for d in self.retry_schedule):
                problems.append(("retry_schedule", "delays must not be negative"))
        problems += _positive_durations(self, "expire_after")
        if self.dashboard_url is not None:
            from monitor.outputs.links import dashboard_template_problem
            problem = dashboard_template_problem(self.dashboard_url)
            if problem:
                problems.append(("dashboard_url", problem))
        return problems + _url_problems(self, "report_url", "prometheus_url", "runbook_base_url")


@dataclass(frozen=True)
class ReportsConfig:
    dir: str = "reports-out"
    # When the weekly report is written: "<weekday> HH:MM" in local time.
    weekly: str = "mon 08:00"
    # Receivers (names in outputs.receivers) told when a weekly report is written:
    # Slack gets the headline and a link, email gets the report itself.
    announce: list[str] = field(default_factory=list)

    def yaml_check(self) -> Problems:
        problems = _name_problem("dir", self.dir)
        if parse_weekly(self.weekly) is None:
            problems.append(("weekly", f"expected '<weekday> HH:MM' such as 'mon 08:00', got {self.weekly!r}"))
        return problems


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_weekly(spec: str) -> tuple[str, int, int] | None:
    """'mon 08:00' -> ('mon', 8, 0); None when malformed."""
    try:
        day, clock = spec.strip().lower().split()
        hour, minute = (int(part) for part in clock.split(":"))
    except ValueError:
        return None
    if day[:3] not in _WEEKDAYS or not (0 <= hour < 24 and 0 <= minute < 60):
        return None
    return day[:3], hour, minute


@dataclass(frozen=True)
class ScheduleConfig:
    evaluate_every: timedelta = timedelta(minutes=1)

    def yaml_check(self) -> Problems:
        if self.evaluate_every < timedelta(seconds=1):
            return [("evaluate_every", "must be at least 1s")]
        return []


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _network_problem(text: str) -> str | None:
    """Why `text` is not an IP address or CIDR block we would trust, or None."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            suggestion = ipaddress.ip_network(text.strip(), strict=False)
            return f"{text!r} has host bits set (did you mean {str(suggestion)!r}?)"
        return f"{text!r} is not an IP address or CIDR block (e.g. 10.0.0.5 or 10.0.0.0/24)"
    if network.prefixlen == 0:
        return f"{text!r} trusts every address: anyone could then claim to be any user"
    return None


@dataclass(frozen=True)
class HttpAuthConfig:
    """Who may write through the web UI and its API (create and expire silences); reads stay open.

    A caller is authenticated by the bearer token (`Authorization: Bearer ...`), or by the user
    header (`user_header`, default X-Forwarded-User) when, and only when, the connection comes
    from one of `trusted_proxies` (an authenticating reverse proxy, e.g. oauth2-proxy); the
    header from any other peer is ignored."""

    bearer_token_env: str | None = None
    bearer_token_file: str | None = None
    trusted_proxies: list[str] = field(default_factory=list)
    user_header: str = "X-Forwarded-User"

    def yaml_check(self) -> Problems:
        problems = _secret_pair_check("bearer_token", self.bearer_token_env, self.bearer_token_file, required=False)
        if not (self.bearer_token_env or self.bearer_token_file or self.trusted_proxies):
            problems.append((None, "needs bearer_token_env or bearer_token_file (a token for writes), "
                                   "or trusted_proxies (proxies whose user header names the writer)"))
        for index, proxy in enumerate(self.trusted_proxies):
            problem = _network_problem(proxy)
            if problem:
                problems.append((f"trusted_proxies[{index}]", problem))
        if not _HEADER_NAME.fullmatch(self.user_header):
            problems.append(("user_header", f"{self.user_header!r} is not a valid HTTP header name"))
        elif self.user_header.lower() in ("authorization", "cookie", "host"):
            problems.append(("user_header", f"{self.user_header!r} carries something else than a user name"))
        return problems


@dataclass(frozen=True)
class HttpConfig:
    listen: str = "127.0.0.1:9464"
    # Writes (silences) are refused until this is set (see HttpAuthConfig).
    auth: HttpAuthConfig | None = None

    def yaml_check(self) -> Problems:
        try:
            parse_listen(self.listen)
        except ValueError as exc:
            return [("listen", str(exc))]
        return []


@dataclass(frozen=True)
class InhibitRule:
    """While an alert matching `source_match` fires, mute alerts matching `target_match`
    that carry the same values for the `equal` labels (Alertmanager's inhibit_rules)."""

    source_match: dict[str, str]
    target_match: dict[str, str]
    equal: list[str] = field(default_factory=list)

    def yaml_check(self) -> Problems:
        return (_label_name_problems("source_match", self.source_match)
                + _label_name_problems("target_match", self.target_match) + _label_name_problems("equal", self.equal))


def _default_inhibit_rules() -> list[InhibitRule]:
    # A page for an SLO says everything its ticket would: mute the ticket.
    return [InhibitRule(source_match={"severity": "page"}, target_match={"severity": "ticket"},
                        equal=["slo_id"])]


@dataclass(frozen=True)
class AlertingConfig:
    """How firing alerts become notifications (Alertmanager's route and inhibit_rules)."""

    group_by: list[str] = field(default_factory=lambda: ["alertname"])
    # Alerts of one cycle are already evaluated together, so the first notification
    # of a group need not wait for stragglers; raise it to batch across cycles.
    group_wait: timedelta = timedelta(0)
    group_interval: timedelta = timedelta(minutes=5)
    repeat_interval: timedelta = timedelta(hours=4)
    send_resolved: bool = True
    # A version becomes last-known-good after serving traffic this long without a
    # firing rollback alert.
    last_known_good_after: timedelta = timedelta(hours=24)
    inhibit: list[InhibitRule] = field(default_factory=_default_inhibit_rules)

    def yaml_check(self) -> Problems:
        problems: Problems = []
        for key in ("group_wait", "group_interval", "repeat_interval", "last_known_good_after"):
            if getattr(self, key) < timedelta(0):
                problems.append((key, "must not be negative"))
        if self.group_interval <= timedelta(0):
            problems.append(("group_interval", "must be positive"))
        if self.repeat_interval <= timedelta(0):
            problems.append(("repeat_interval", "must be positive"))
        # "..." groups by every label, as in Alertmanager's route.group_by.
        return problems + _label_name_problems("group_by", [n for n in self.group_by if n != "..."])


@dataclass(frozen=True)
class Config:
    prometheus: PrometheusConfig = field(default_factory=PrometheusConfig)
    state: StateConfig = field(default_factory=StateConfig)
    slo_period: timedelta = timedelta(days=30)
    slos: list[str] = field(default_factory=list)
    # Below this many events in a window, that window's SLO ratio is "no data":
    # one failed request on a quiet service must not read as a 100% error ratio.
    slo_min_events: float = 10.0
    # "recorded": read the per-window series that `monitor slo rules` records
    # (load that rule file into Prometheus first); "direct": query the SLIs.
    slo_evaluation: Literal["direct", "recorded"] = "direct"
    models: list[ModelConfig] = field(default_factory=list)
    cost: CostConfig = field(default_factory=CostConfig)
    rules: list[str] = field(default_factory=list)
    outputs: OutputsConfig = field(default_factory=OutputsConfig)
    reports: ReportsConfig = field(default_factory=ReportsConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    alerting: AlertingConfig = field(default_factory=AlertingConfig)
    # Where the config came from; relative paths in it are resolved against base_dir.
    source_path: str = field(default="<defaults>", metadata={"yaml": False})
    slo_files: tuple[str, ...] = field(default=(), metadata={"yaml": False})
    rule_files: tuple[str, ...] = field(default=(), metadata={"yaml": False})

    def yaml_check(self) -> Problems:
        names = [m.name for m in self.models]
        problems: Problems = [
            ("models", f"duplicate model name {n!r}") for n in sorted({n for n in names if names.count(n) > 1})]
        problems += _non_negative(self, "slo_min_events")
        problems += _positive_durations(self, "slo_period")
        return problems

    @property
    def base_dir(self) -> Path:
        return Path(self.source_path).resolve().parent

    def resolve_path(self, path: str) -> Path:
        """A path from the config, relative to the config file's directory."""
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p

    def model(self, name: str) -> ModelConfig:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)


def config_path_from(cli_value: str | None) -> str:
    """`--config` wins, then $MONITOR_CONFIG, then ./monitor.yaml."""
    return cli_value or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH


def load_config(path: str | Path) -> Config:
    """Load and validate a config file; raise ConfigError listing every problem as FILE:LINE."""
    path = str(path)
    if not Path(path).exists():
        raise ConfigError([Problem(path, None, "config file not found")])
    doc = YamlFile(path)
    if not doc.documents:
        raise ConfigError([Problem(path, 1, "config file is empty")])
    root = doc.documents[0]
    config = doc.build(Config, root, "")
    base = Path(path).resolve().parent
    slo_files = _expand_globs(doc, root, "slos", base)
    rule_files = _expand_globs(doc, root, "rules", base)
    doc.raise_if_problems()
    config = replace(config, outputs=_templates_resolved(config.outputs, base))
    return replace(config, source_path=path, slo_files=tuple(slo_files), rule_files=tuple(rule_files))


def _templates_resolved(outputs: OutputsConfig, base: Path) -> OutputsConfig:
    """Message template files relative to the config's directory, as every other path in it,
    not to wherever the daemon happens to be started from."""
    def resolved(integration):
        template = getattr(integration, "template", None)
        if not template or Path(template).is_absolute():
            return integration
        return replace(integration, template=str(base / template))

    receivers = [replace(receiver, **{key: [resolved(c) for c in getattr(receiver, key)]
                                      for key in ("slack_configs", "pagerduty_configs", "msteams_configs",
                                                  "email_configs", "webhook_configs")})
                 for receiver in outputs.receivers]
    return replace(outputs, receivers=receivers, slack=resolved(outputs.slack) if outputs.slack else None)


def _expand_globs(doc: YamlFile, root, key: str, base: Path) -> list[str]:
    """Expand a list of globs; a pattern matching no file is a problem at its line."""
    files: list[str] = []
    list_node = mapping_get(root, key)
    if not isinstance(list_node, yaml.SequenceNode):
        return files  # not a list: building the Config reported it
    for item in list_node.value:
        if not isinstance(item, yaml.ScalarNode):
            continue  # the build reported it: a list of strings is expected
        if not str(item.value).strip():
            doc.error(item, f"{key}: an empty file pattern")
            continue
        pattern = str(item.value)
        full = pattern if Path(pattern).is_absolute() else str(base / pattern)
        matches = sorted(globlib.glob(full))
        if not matches:
            doc.error(item, f"{key}: no file matches {pattern!r}")
        for match in matches:
            if match not in files:
                files.append(match)
    return files


__all__ = ["Config", "ConfigError", "load_config", "config_path_from", "node_line"]


def model_key_lines(config: Config, keys: tuple[str, ...]) -> dict[tuple[int, str | None], int]:
    """Line numbers of each `models[i]` entry (key None) and of its `keys` that are present,
    read back from the config file, for checks that report a model's problem at its line."""
    lines: dict[tuple[int, str | None], int] = {}
    try:
        doc = YamlFile(config.source_path)
    except (ConfigError, OSError):
        return lines
    models = mapping_get(doc.documents[0], "models") if doc.documents else None
    for index, item in enumerate(getattr(models, "value", None) or []):
        lines[(index, None)] = node_line(item)
        for key in keys:
            node = mapping_get(item, key)
            if node is not None:
                lines[(index, key)] = node_line(node)
    return lines
