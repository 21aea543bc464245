"""The daemon's typed config (`monitor.yaml`), validated once at load.

The top-level keys and their meaning are a contract with users and other tools:
add beside them, never rename. Paths and globs in the file are relative to the
file's own directory, so a config works wherever the daemon is started from.
Secrets are never inline: each is named by `*_env` (an environment variable) or
`*_file` (a file holding it), and read only when used (`monitor.secrets`).
"""

from __future__ import annotations

import glob as globlib
import os
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Literal

from monitor.errors import ConfigError, Problem
from monitor.typed_yaml import YamlFile, mapping_get, node_line

DEFAULT_CONFIG_PATH = "monitor.yaml"
CONFIG_ENV_VAR = "MONITOR_CONFIG"


def _secret_pair_check(prefix: str, env: str | None, file: str | None, required: bool) -> list[tuple[str | None, str]]:
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

    def yaml_check(self) -> list[tuple[str | None, str]]:
        problems = _secret_pair_check("bearer_token", self.bearer_token_env, self.bearer_token_file, required=False)
        if not self.url.startswith(("http://", "https://")):
            problems.append(("url", f"must be an http:// or https:// URL, got {self.url!r}"))
        if self.max_concurrency < 1:
            problems.append(("max_concurrency", "must be at least 1"))
        if self.timeout <= timedelta(0):
            problems.append(("timeout", "must be positive"))
        return problems


# The weekly report reads its week and four weeks of trend before it from the state
# file's history, so the default keeps five weeks.
DEFAULT_STATE_RETENTION = timedelta(days=35)


@dataclass(frozen=True)
class StateConfig:
    path: str = "monitor-state.db"
    # How long finished history (cycles, alert transitions, notifications, deliveries)
    # is kept; a firing or pending alert's history and undelivered work are always kept.
    retention: timedelta = DEFAULT_STATE_RETENTION

    def yaml_check(self) -> list[tuple[str | None, str]]:
        if self.retention < timedelta(days=1):
            return [("retention", "must be at least 1d (the weekly report needs 35d)")]
        return []


@dataclass(frozen=True)
class DriftThresholds:
    """When a column counts as drifted (defaults: Evidently's)."""

    psi: float = 0.2
    wasserstein_norm: float = 0.1
    js: float = 0.1


@dataclass(frozen=True)
class PredictionLogConfig:
    """A Parquet prediction log for feature drift: one row per prediction."""

    path: str
    timestamp_column: str = "timestamp"
    columns: list[str] | None = None


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

    def yaml_check(self) -> list[tuple[str | None, str]]:
        problems: list[tuple[str | None, str]] = []
        if self.current >= self.reference:
            problems.append(("current", "the current window must be shorter than the reference window"))
        if not 0 < self.dataset_drift_share <= 1:
            problems.append(("dataset_drift_share", "must be in (0, 1]"))
        return problems


@dataclass(frozen=True)
class ModelConfig:
    name: str
    # An inference-server preset fills in the metric names (monitor.cost.presets).
    preset: Literal["triton", "vllm", "kserve", "seldon"] | None = None
    inferences: str | None = None
    version_label: str = "version"
    gpus: str | None = None
    cpu: str | None = None
    memory: str | None = None
    predictions: str | None = None
    drift: DriftConfig | None = None

    def yaml_check(self) -> list[tuple[str | None, str]]:
        if self.preset is None and self.inferences is None:
            return [(None, "needs 'inferences' (a counter of inferences served) or a 'preset'")]
        return []


@dataclass(frozen=True)
class Pricing:
    """USD per GPU-hour, per core-hour and per GiB-hour (OpenCost's keys)."""

    GPU: float = 0.0
    CPU: float = 0.0
    RAM: float = 0.0
    # Prices per GPU model, keyed by dcgm-exporter's `modelName` label value.
    gpu_models: dict[str, float] = field(default_factory=dict)

    def yaml_check(self) -> list[tuple[str | None, str]]:
        problems: list[tuple[str | None, str]] = [
            (key, "must not be negative") for key in ("GPU", "CPU", "RAM") if getattr(self, key) < 0
        ]
        problems += [("gpu_models", f"price for {name!r} must not be negative")
                     for name, price in self.gpu_models.items() if price < 0]
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

    def yaml_check(self) -> list[tuple[str | None, str]]:
        problems = _secret_pair_check("token", self.token_env, self.token_file, required=False)
        problems += _secret_pair_check("webhook_url", self.webhook_url_env, self.webhook_url_file, required=False)
        has_token = bool(self.token_env or self.token_file)
        has_webhook = bool(self.webhook_url_env or self.webhook_url_file)
        if has_token == has_webhook:
            problems.append((None, "needs exactly one of a bot token (token_env/token_file) "
                                   "or an incoming webhook (webhook_url_env/webhook_url_file)"))
        if has_token and not self.channel:
            problems.append((None, "a bot token needs a 'channel' to post to"))
        return problems


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

    def yaml_check(self) -> list[tuple[str | None, str]]:
        problems = _secret_pair_check("secret", self.secret_env, self.secret_file, required=True)
        if not self.url.startswith(("http://", "https://")):
            problems.append(("url", f"must be an http:// or https:// URL, got {self.url!r}"))
        return problems


@dataclass(frozen=True)
class AlertmanagerConfig:
    url: str
    timeout: timedelta = timedelta(seconds=10)
    # Alertmanager is usually an internal address: set this to send to it.
    allow_private: bool = False

    def yaml_check(self) -> list[tuple[str | None, str]]:
        if not self.url.startswith(("http://", "https://")):
            return [("url", f"must be an http:// or https:// URL, got {self.url!r}")]
        return []


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

    def yaml_check(self) -> list[tuple[str | None, str]]:
        names = [w.name for w in self.webhooks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        problems: list[tuple[str | None, str]] = [
            ("webhooks", f"duplicate webhook name {n!r}") for n in duplicates]
        if self.retry_schedule is not None:
            if not self.retry_schedule:
                problems.append(("retry_schedule", "needs at least one delay (0s: the first attempt)"))
            elif any(d < timedelta(0) for d in self.retry_schedule):
                problems.append(("retry_schedule", "delays must not be negative"))
        if self.expire_after is not None and self.expire_after <= timedelta(0):
            problems.append(("expire_after", "must be positive"))
        for key in ("report_url", "prometheus_url"):
            url = getattr(self, key)
            if url is not None and not url.startswith(("http://", "https://")):
                problems.append((key, f"must be an http:// or https:// URL, got {url!r}"))
        return problems


@dataclass(frozen=True)
class ReportsConfig:
    dir: str = "reports-out"
    # When the weekly report is written: "<weekday> HH:MM" in local time.
    weekly: str = "mon 08:00"

    def yaml_check(self) -> list[tuple[str | None, str]]:
        if parse_weekly(self.weekly) is None:
            return [("weekly", f"expected '<weekday> HH:MM' such as 'mon 08:00', got {self.weekly!r}")]
        return []


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

    def yaml_check(self) -> list[tuple[str | None, str]]:
        if self.evaluate_every < timedelta(seconds=1):
            return [("evaluate_every", "must be at least 1s")]
        return []


@dataclass(frozen=True)
class HttpConfig:
    listen: str = "127.0.0.1:9464"


@dataclass(frozen=True)
class InhibitRule:
    """While an alert matching `source_match` fires, mute alerts matching `target_match`
    that carry the same values for the `equal` labels (Alertmanager's inhibit_rules)."""

    source_match: dict[str, str]
    target_match: dict[str, str]
    equal: list[str] = field(default_factory=list)


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

    def yaml_check(self) -> list[tuple[str | None, str]]:
        problems: list[tuple[str | None, str]] = []
        for key in ("group_wait", "group_interval", "repeat_interval", "last_known_good_after"):
            if getattr(self, key) < timedelta(0):
                problems.append((key, "must not be negative"))
        if self.group_interval <= timedelta(0):
            problems.append(("group_interval", "must be positive"))
        if self.repeat_interval <= timedelta(0):
            problems.append(("repeat_interval", "must be positive"))
        return problems


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

    def yaml_check(self) -> list[tuple[str | None, str]]:
        names = [m.name for m in self.models]
        problems: list[tuple[str | None, str]] = [
            ("models", f"duplicate model name {n!r}") for n in sorted({n for n in names if names.count(n) > 1})]
        if self.slo_min_events < 0:
            problems.append(("slo_min_events", "must not be negative"))
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
    return replace(config, source_path=path, slo_files=tuple(slo_files), rule_files=tuple(rule_files))


def _expand_globs(doc: YamlFile, root, key: str, base: Path) -> list[str]:
    """Expand a list of globs; a pattern matching no file is a problem at its line."""
    files: list[str] = []
    list_node = mapping_get(root, key)
    if list_node is None:
        return files
    for item in list_node.value:
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
