"""Sloth's Kubernetes CRD, `sloth.slok.dev/v1` `PrometheusServiceLevel`, read as a file.

The CRD's `spec` is Sloth's `prometheus/v1` spec with Kubernetes' camelCase field
names (Sloth's `pkg/kubernetes/api/sloth/v1/types.go`: `errorQuery`, `pageAlert`,
`sloPlugins`...). Each part is read in its own typed shape, so errors name the
fields as the user wrote them, then converted to the `prometheus/v1` model and
checked by the same rules (`yaml_check`), so both forms mean the same SLO.

Sloth's other kind in that group, `AlertWindows` (custom page/ticket windows for
`sloth generate --slo-period-windows-path`), is a generator setting, not an SLO:
it is refused with its own message (see `monitor.slo.loading`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import yaml

from monitor.slo.sloth import (SlothAlert, SlothAlerting, SlothEvents, SlothRaw, SlothSli, SlothSlo, SlothSpec,
                               VERSION, specs_from_sloth)
from monitor.slo.spec import SloSpec
from monitor.typed_yaml import INVALID, YamlFile, mapping_get

API_VERSION = "sloth.slok.dev/v1"
KIND = "PrometheusServiceLevel"
ALERT_WINDOWS_KIND = "AlertWindows"

# prometheus/v1 key -> the CRD's key, to name fields in messages as the user wrote them.
_CAMEL = {"error_query": "errorQuery", "total_query": "totalQuery", "error_ratio_query": "errorRatioQuery"}


def _renamed(problems: list[tuple[str | None, str]]) -> list[tuple[str | None, str]]:
    out = []
    for key, message in problems:
        for snake, camel in _CAMEL.items():
            message = message.replace(snake, camel)
        out.append((_CAMEL.get(key, key) if key else key, message))
    return out


@dataclass(frozen=True)
class CrdEvents:
    errorQuery: str
    totalQuery: str

    def sloth(self) -> SlothEvents:
        return SlothEvents(self.errorQuery, self.totalQuery)

    def yaml_check(self) -> list[tuple[str | None, str]]:
        return _renamed(self.sloth().yaml_check())


@dataclass(frozen=True)
class CrdRaw:
    errorRatioQuery: str

    def sloth(self) -> SlothRaw:
        return SlothRaw(error_ratio_query=self.errorRatioQuery)

    def yaml_check(self) -> list[tuple[str | None, str]]:
        return _renamed(self.sloth().yaml_check())


@dataclass(frozen=True)
class CrdSli:
    events: CrdEvents | None = None
    raw: CrdRaw | None = None
    plugin: Any = None

    def sloth(self) -> SlothSli:
        return SlothSli(events=self.events.sloth() if self.events else None,
                        raw=self.raw.sloth() if self.raw else None, plugin=self.plugin)

    def yaml_check(self) -> list[tuple[str | None, str]]:
        return self.sloth().yaml_check()


@dataclass(frozen=True)
class CrdAlert:
    disable: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def sloth(self) -> SlothAlert:
        return SlothAlert(disable=self.disable, labels=self.labels, annotations=self.annotations)


@dataclass(frozen=True)
class CrdAlerting:
    name: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    pageAlert: CrdAlert = field(default_factory=CrdAlert)
    ticketAlert: CrdAlert = field(default_factory=CrdAlert)

    def sloth(self) -> SlothAlerting:
        return SlothAlerting(name=self.name, labels=self.labels, annotations=self.annotations,
                             page_alert=self.pageAlert.sloth(), ticket_alert=self.ticketAlert.sloth())


@dataclass(frozen=True)
class CrdSlo:
    name: str
    objective: float
    sli: CrdSli
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    alerting: CrdAlerting = field(default_factory=CrdAlerting)
    # SLO plugins change how Sloth generates rules, not what the SLO means (see monitor.slo.sloth).
    plugins: Any = None

    def sloth(self) -> SlothSlo:
        return SlothSlo(name=self.name, objective=self.objective, sli=self.sli.sloth(),
                        description=self.description, labels=self.labels, alerting=self.alerting.sloth())

    def yaml_check(self) -> list[tuple[str | None, str]]:
        return self.sloth().yaml_check()


@dataclass(frozen=True)
class CrdSpec:
    service: str
    slos: list[CrdSlo] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    sloPlugins: Any = None

    def sloth(self) -> SlothSpec:
        return SlothSpec(version=VERSION, service=self.service, slos=[slo.sloth() for slo in self.slos],
                         labels=self.labels)

    def yaml_check(self) -> list[tuple[str | None, str]]:
        return self.sloth().yaml_check()


@dataclass(frozen=True)
class PrometheusServiceLevel:
    apiVersion: str
    kind: str
    spec: CrdSpec
    # Kubernetes object metadata (name, namespace, uid, ...) and the controller's status:
    # neither changes the SLO.
    metadata: Any = None
    status: Any = None


def specs_from_document(doc: YamlFile, node: yaml.Node, default_period: timedelta) -> list[SloSpec]:
    """Build the SloSpecs of one `PrometheusServiceLevel` document; problems are recorded on `doc`."""
    crd = doc.build(PrometheusServiceLevel, node, "")
    if crd is INVALID:
        return []
    spec_node = mapping_get(node, "spec")
    return specs_from_sloth(doc, crd.spec.sloth(), mapping_get(spec_node, "slos"), spec_node, default_period)
