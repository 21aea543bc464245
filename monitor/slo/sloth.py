"""Sloth's `prometheus/v1` spec format, as Sloth reads it, converted to `SloSpec`.

Field names follow Sloth's `pkg/prometheus/api/v1` so users' files load unchanged.
Sloth's plugin blocks (`slo_plugins`, an SLO's `plugins`) change how Sloth
*generates rules*; they do not change what the SLO means, so they are accepted and
ignored. An SLI `plugin` is Go code that builds the query: we cannot run it, so it
is a clear error rather than a silently missing SLO.

`group_by` and `max_groups` on an SLO are monitor's extension (monitor.slo.groups).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import yaml

from monitor.durations import format_duration
from monitor.slo.groups import group_by_problem
from monitor.slo.spec import WINDOW_PLACEHOLDER, AlertSettings, EventsSli, RawSli, SloSpec
from monitor.typed_yaml import INVALID, YamlFile, mapping_get, node_line

VERSION = "prometheus/v1"


@dataclass(frozen=True)
class SlothEvents:
    error_query: str
    total_query: str

    def yaml_check(self) -> list[tuple[str | None, str]]:
        return [(key, "must use the {{.window}} template variable")
                for key in ("error_query", "total_query") if not WINDOW_PLACEHOLDER.search(getattr(self, key))]


@dataclass(frozen=True)
class SlothRaw:
    error_ratio_query: str | None = None
    # Older Sloth examples spell it in camelCase; Sloth accepted both.
    errorRatioQuery: str | None = None

    @property
    def query(self) -> str:
        return self.error_ratio_query or self.errorRatioQuery or ""

    def yaml_check(self) -> list[tuple[str | None, str]]:
        if bool(self.error_ratio_query) == bool(self.errorRatioQuery):
            return [(None, "needs error_ratio_query")]
        if not WINDOW_PLACEHOLDER.search(self.query):
            key = "error_ratio_query" if self.error_ratio_query else "errorRatioQuery"
            return [(key, "must use the {{.window}} template variable")]
        return []


@dataclass(frozen=True)
class SlothSli:
    events: SlothEvents | None = None
    raw: SlothRaw | None = None
    plugin: Any = None

    def yaml_check(self) -> list[tuple[str | None, str]]:
        if self.plugin is not None:
            return [("plugin", "SLI plugins are Go code run by Sloth and cannot be evaluated here; "
                               "write the SLI as 'events' or 'raw'")]
        if (self.events is None) == (self.raw is None):
            return [(None, "needs exactly one of 'events' or 'raw'")]
        return []


@dataclass(frozen=True)
class SlothAlert:
    disable: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    # Newer Sloth (its alert_for plugin) reads a `for` duration on each alert.
    for_: timedelta | None = field(default=None, metadata={"key": "for"})


@dataclass(frozen=True)
class SlothAlerting:
    name: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    page_alert: SlothAlert = field(default_factory=SlothAlert)
    ticket_alert: SlothAlert = field(default_factory=SlothAlert)


@dataclass(frozen=True)
class SlothSlo:
    name: str
    objective: float
    sli: SlothSli
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    infoLabels: dict[str, str] = field(default_factory=dict)
    alerting: SlothAlerting = field(default_factory=SlothAlerting)
    interval: Any = None
    plugins: Any = None
    slo_plugins: Any = None
    # Monitor extensions (Sloth has no grouped SLOs): one SLO instance per value set
    # of these labels in the SLI, at most `max_groups` of them.
    group_by: list[str] = field(default_factory=list)
    max_groups: int = 100

    def yaml_check(self) -> list[tuple[str | None, str]]:
        if not self.name.strip():
            return [("name", "must not be empty")]
        if problem := group_by_problem(self.group_by):
            return [("group_by", problem)]
        if self.max_groups < 1:
            return [("max_groups", f"must be at least 1, got {self.max_groups}")]
        # Sloth's objective is a percentage. Below 1 it is almost surely a ratio written
        # the OpenSLO way (0.999 would allow 99.001% errors), so we refuse it loudly.
        if not 1 <= self.objective < 100:
            return [("objective", f"must be a percentage below 100 (e.g. 99.9), got {self.objective:g}"
                                  + (" (a ratio? Sloth objectives are percentages)" if 0 < self.objective < 1 else ""))]
        return []


@dataclass(frozen=True)
class SlothSpec:
    version: str
    service: str
    slos: list[SlothSlo] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    slo_plugins: Any = None

    def yaml_check(self) -> list[tuple[str | None, str]]:
        if self.version != VERSION:
            return [("version", f"must be {VERSION!r}, got {self.version!r}")]
        if not self.service.strip():
            return [("service", "must not be empty")]
        return []


def specs_from_document(doc: YamlFile, node: yaml.Node, default_period: timedelta) -> list[SloSpec]:
    """Build the SloSpecs of one Sloth document; problems are recorded on `doc`."""
    spec = doc.build(SlothSpec, node, "")
    if spec is INVALID:
        return []
    return specs_from_sloth(doc, spec, mapping_get(node, "slos"), node, default_period)


def specs_from_sloth(doc: YamlFile, spec: SlothSpec, slo_nodes: yaml.Node | None, node: yaml.Node,
                     default_period: timedelta) -> list[SloSpec]:
    """SloSpecs from a validated Sloth spec (read from `prometheus/v1` or from the Kubernetes CRD)."""
    out = []
    for index, slo in enumerate(spec.slos):
        line = node_line(slo_nodes.value[index]) if slo_nodes is not None else node_line(node)
        sli = (EventsSli(slo.sli.events.error_query.strip(), slo.sli.events.total_query.strip())
               if slo.sli.events is not None else RawSli(slo.sli.raw.query.strip()))
        alerting = slo.alerting
        out.append(SloSpec(
            service=spec.service, name=slo.name, objective=round(slo.objective / 100.0, 12), sli=sli,
            period=default_period, description=slo.description,
            labels={**spec.labels, **slo.labels},
            alert_name=alerting.name, alert_labels=dict(alerting.labels),
            alert_annotations=dict(alerting.annotations),
            page_alert=_alert(alerting.page_alert), ticket_alert=_alert(alerting.ticket_alert),
            group_by=tuple(slo.group_by), max_groups=slo.max_groups,
            spec_format=VERSION, source=f"{doc.path}:{line}"))
    return out


def _alert(alert: SlothAlert) -> AlertSettings:
    return AlertSettings(disabled=alert.disable, labels=dict(alert.labels), annotations=dict(alert.annotations),
                         for_=format_duration(alert.for_) if alert.for_ is not None else None)
