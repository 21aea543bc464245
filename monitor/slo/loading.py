"""Find the SLOs in spec files, whatever their format, and validate them for `monitor check`.

A file may hold several YAML documents (`---`), and a document may be one object, a
YAML list of objects (the layout of OpenSLO's own examples, which its SDK decodes) or a
Kubernetes list (`kind: List`, `items: [...]`, what `kubectl get -o yaml` prints).
Each object is a Sloth `prometheus/v1` spec, Sloth's Kubernetes `PrometheusServiceLevel`,
an OpenSLO document or a Pyrra `ServiceLevelObjective`; the format is told by
`version` / `apiVersion` and `kind`, as those tools do. Every problem in every file is
collected before raising, with FILE:LINE.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Iterable

import yaml

from monitor.config import Config
from monitor.errors import ConfigError, Problem
from monitor.slo import openslo, pyrra, sloth, sloth_kubernetes
from monitor.slo.preset_slos import preset_slo_specs
from monitor.slo.spec import SloSpec
from monitor.typed_yaml import YamlFile, mapping_get, node_line

DEFAULT_PERIOD = timedelta(days=30)


def load_slo_specs(config: Config) -> list[SloSpec]:
    """Every SLO in the config's `slos` files, then the preset models' default SLOs
    (monitor.slo.preset_slos); the period defaults to `slo_period` (else 30d)."""
    period = config.slo_period or DEFAULT_PERIOD
    problems: list[Problem] = []
    try:
        specs = load_spec_files(config.slo_files, default_period=period)
    except ConfigError as exc:
        specs, problems = [], list(exc.problems)
    defaults, default_problems = preset_slo_specs(config, period)
    problems += default_problems
    taken = {spec.id: spec for spec in specs}
    for spec in defaults:
        if spec.id in taken:
            file, _, line = spec.source.rpartition(":")
            problems.append(Problem(file, int(line) if line.isdigit() else None,
                                    f"default SLO id {spec.id!r} is also defined at {taken[spec.id].source}: "
                                    f"rename one, or set default_slos: {{enabled: false}} on the model"))
    if problems:
        raise ConfigError(problems)
    return specs + defaults


def load_spec_files(paths: Iterable[str | Path], default_period: timedelta = DEFAULT_PERIOD) -> list[SloSpec]:
    """Load Sloth, OpenSLO and Pyrra spec files; raise ConfigError listing every problem as FILE:LINE."""
    files: list[YamlFile] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            files.append(YamlFile(path, multi_document=True))
        except ConfigError as exc:
            problems.extend(exc.problems)
    # OpenSLO SLOs may name an SLI defined in another document or file: collect those first.
    indicators: dict[str, openslo.Indicator] = {}
    for doc in files:
        for node in _objects(doc):
            api_version, kind = _scalar(node, "apiVersion"), _scalar(node, "kind")
            if api_version == openslo.V1 and kind == "SLI":
                found = openslo.sli_from_document(doc, node)
                if found is not None:
                    indicators[found[0]] = found[1]
    specs: list[SloSpec] = []
    for doc in files:
        if not doc.documents:
            doc.error(None, "SLO spec file is empty")
        for node in _objects(doc):
            specs.extend(_document_specs(doc, node, default_period, indicators))
        problems.extend(doc.problems)
    first_seen: dict[str, SloSpec] = {}
    for spec in specs:
        if spec.id in first_seen:
            file, _, line = spec.source.rpartition(":")
            problems.append(Problem(file, int(line) if line.isdigit() else None,
                                    f"duplicate SLO id {spec.id!r} (first defined at {first_seen[spec.id].source})"))
        first_seen.setdefault(spec.id, spec)
    if problems:
        raise ConfigError(problems)
    return specs


def _objects(doc: YamlFile) -> list[yaml.Node]:
    """The file's objects: each document, each item of a document that is a list, and each
    item of a Kubernetes list (`kind: List` or `...List` with `items`, as `kubectl get -o yaml` writes)."""
    out: list[yaml.Node] = []
    for node in doc.documents:
        items = mapping_get(node, "items")
        kind = _scalar(node, "kind") or ""
        if isinstance(node, yaml.SequenceNode):
            out.extend(node.value)
        elif kind.endswith("List") and isinstance(items, yaml.SequenceNode) and _scalar(node, "version") is None:
            out.extend(items.value)
        else:
            out.append(node)
    return out


def _document_specs(doc: YamlFile, node: yaml.Node, default_period: timedelta,
                    indicators: dict[str, openslo.Indicator]) -> list[SloSpec]:
    if not isinstance(node, yaml.MappingNode):
        kind = "list" if isinstance(node, yaml.SequenceNode) else "scalar"
        doc.error(node, f"not an SLO spec: expected a mapping (an object with version or apiVersion), got a {kind}")
        return []
    version, api_version, kind = _scalar(node, "version"), _scalar(node, "apiVersion"), _scalar(node, "kind")
    if version == sloth.VERSION:
        return sloth.specs_from_document(doc, node, default_period)
    if api_version in (openslo.V1ALPHA, openslo.V1):
        if kind == "SLO":
            return openslo.specs_from_document(doc, node, api_version, default_period, indicators)
        return []  # Service, SLI (collected above), DataSource, AlertPolicy...: nothing to evaluate
    if api_version == sloth_kubernetes.API_VERSION:
        if kind == sloth_kubernetes.KIND:
            return sloth_kubernetes.specs_from_document(doc, node, default_period)
        if kind == sloth_kubernetes.ALERT_WINDOWS_KIND:
            doc.error(node, "Sloth's AlertWindows (custom page/ticket alert windows) are not supported: monitor "
                            "uses Sloth's default windows (Google's SRE workbook, scaled to the SLO period); "
                            "remove this file from 'slos'")
            return []
        doc.error(node, f"kind {kind!r} of {api_version} is not an SLO spec "
                        f"(expected {sloth_kubernetes.KIND!r})")
        return []
    if api_version == pyrra.API_VERSION:
        if kind == pyrra.KIND:
            return pyrra.specs_from_document(doc, node)
        doc.error(node, f"kind {kind!r} of {api_version} is not an SLO spec (expected {pyrra.KIND!r})")
        return []
    found = f"version {version!r}" if version else f"apiVersion {api_version!r}" if api_version else "neither"
    doc.error(node, f"not an SLO spec: expected version: {sloth.VERSION!r} (Sloth) or apiVersion: "
                    f"{openslo.V1!r} / {openslo.V1ALPHA!r} (OpenSLO), {sloth_kubernetes.API_VERSION!r} (Sloth's "
                    f"Kubernetes CRD) or {pyrra.API_VERSION!r} (Pyrra), found {found}")
    return []


def _scalar(node, key: str) -> str | None:
    value = mapping_get(node, key)
    return str(value.value) if value is not None and hasattr(value, "value") and isinstance(value.value, str) else None


def slo_spec_check(config: Config) -> dict[str, int]:
    """`monitor check` hook: load every SLO spec file the config names; count the SLOs."""
    specs = load_slo_specs(config)
    counts = {"SLOs": len(specs)}
    defaults = len(preset_slo_specs(config, config.slo_period or DEFAULT_PERIOD)[0])
    if defaults:
        counts["of them preset defaults"] = defaults
    return counts


__all__ = ["load_slo_specs", "load_spec_files", "slo_spec_check", "node_line"]
