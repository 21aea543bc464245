"""`monitor check` for the route tree: every receiver a route or announcement names exists.

Each route's own fields (matchers, intervals, group_by) are checked when the config
loads (`RouteConfig.yaml_check`); what needs the whole `outputs` section is checked
here, at the line of the name that is wrong, read back from the config file. The
warnings say which rules' alerts can reach only receivers with no integrations
(allowed, as Alertmanager's null receiver, but probably not meant).
"""

from __future__ import annotations

from typing import Collection, Iterator, Mapping

import yaml

from monitor.alerting.condition import result_labels
from monitor.alerting.routes import DEFAULT_RECEIVER, RouteTree, RouteNode, route_tree
from monitor.alerting.rule_spec import Rule
from monitor.config import Config, OutputsConfig, ReceiverConfig, RouteConfig
from monitor.errors import ConfigError, Problem
from monitor.typed_yaml import YamlFile, node_line


def known_receivers(outputs: OutputsConfig) -> list[str]:
    """Receiver names a route may use: `outputs.receivers`, plus `default` (the legacy
    `outputs.slack`) when that is configured."""
    names = list(dict.fromkeys(r.name for r in outputs.receivers))
    if outputs.slack is not None and DEFAULT_RECEIVER not in names:
        names.append(DEFAULT_RECEIVER)
    return names


def has_integrations(receiver: ReceiverConfig) -> bool:
    return bool(receiver.slack_configs or receiver.pagerduty_configs or receiver.msteams_configs
                or receiver.email_configs or receiver.webhook_configs)


def route_check(config: Config) -> dict[str, int]:
    """Cross-references of `outputs.route`, `outputs.receivers` and `reports.announce`;
    raise ConfigError with each wrong name at its line."""
    outputs = config.outputs
    lines = _Lines(config.source_path)
    problems: list[Problem] = []
    names: dict[str, int] = {}
    for index, receiver in enumerate(outputs.receivers):
        line = lines.at("outputs", "receivers", index, "name")
        where = f"outputs.receivers[{index}].name"
        if receiver.name in names:
            problems.append(Problem(config.source_path, line, f"{where}: duplicate receiver name {receiver.name!r} "
                                                              f"(first: receivers[{names[receiver.name]}])"))
        names.setdefault(receiver.name, index)
        if receiver.name == DEFAULT_RECEIVER and outputs.slack is not None:
            problems.append(Problem(config.source_path, line,
                                    f"{where}: {DEFAULT_RECEIVER!r} is the receiver of the legacy outputs.slack; "
                                    f"name this receiver otherwise, or move outputs.slack into its slack_configs"))
    known = known_receivers(outputs)
    hint = f"known receivers: {', '.join(known)}" if known else "outputs.receivers is empty"
    routes = 0
    if outputs.route is not None:
        for route, path, keys in _walk(outputs.route, "outputs.route", ("outputs", "route")):
            routes += 1
            if path == "outputs.route" and not route.receiver:
                problems.append(Problem(config.source_path, lines.at(*keys),
                                        "outputs.route: the root route needs a receiver "
                                        "(the one alerts no child route takes go to)"))
            if route.receiver and route.receiver not in known:
                problems.append(Problem(config.source_path, lines.at(*keys, "receiver"),
                                        f"{path}.receiver: unknown receiver {route.receiver!r} ({hint})"))
    for index, name in enumerate(config.reports.announce):
        if name not in known:
            problems.append(Problem(config.source_path, lines.at("reports", "announce", index),
                                    f"reports.announce[{index}]: unknown receiver {name!r} ({hint})"))
    if problems:
        raise ConfigError(problems)
    if outputs.route is None and not outputs.receivers:
        return {}
    return {"routes": routes, "receivers": len(outputs.receivers)}


def _walk(route: RouteConfig, path: str, keys: tuple) -> Iterator[tuple[RouteConfig, str, tuple]]:
    """Every node of the tree, depth first, with its config path and its key path in the file."""
    yield route, path, keys
    for index, child in enumerate(route.routes):
        yield from _walk(child, f"{path}.routes[{index}]", (*keys, "routes", index))


class _Lines:
    """Line numbers of nodes in the config file, by key path (None when the file cannot be read
    again, or has no such node)."""

    def __init__(self, path: str):
        try:
            doc = YamlFile(path)
        except (ConfigError, OSError):
            self.root = None
        else:
            self.root = doc.documents[0] if doc.documents else None

    def at(self, *keys: str | int) -> int | None:
        """The line of the last key or list item of `keys` found (a key's own line, as
        typed_yaml reports its problems), or None."""
        node = self.root
        found = None
        for key in keys:
            if isinstance(key, int):
                items = node.value if isinstance(node, yaml.SequenceNode) else []
                node = items[key] if key < len(items) else None
                line = node_line(node) if node is not None else None
            else:
                pair = _mapping_pair(node, key)
                node = pair[1] if pair else None
                line = node_line(pair[0]) if pair else None
            if node is None:
                break
            found = line
        return found


def _mapping_pair(node: yaml.Node | None, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                return key_node, value_node
    return None


# -- warnings -------------------------------------------------------------------------

class _Labels:
    """What `monitor check` knows of an alert's labels before it exists: the rule's fixed labels;
    the labels its instances bring (`instance_labels`, None: any label, as for PromQL) are
    unknown; any other label is absent, the empty string."""

    def __init__(self, fixed: Mapping[str, str], instance_labels: Collection[str] | None):
        self.fixed = fixed
        self.instance_labels = instance_labels

    def value(self, name: str) -> str | None:
        """The label's value, or None when it is only known at run time."""
        if name in self.fixed:
            return self.fixed[name]
        if self.instance_labels is None or name in self.instance_labels:
            return None
        return ""


def possible_receivers(tree: RouteTree, labels: _Labels) -> list[str]:
    """Receivers an alert may reach when some of its labels are only known at run time: a matcher
    over an unknown label may or may not match, so both of its branches count."""
    found: list[str] = []
    for receiver in _possible(tree.root, labels):
        if receiver not in found:
            found.append(receiver)
    return found


def _possible(node: RouteNode, labels: _Labels) -> list[str]:
    found: list[str] = []
    some_child_matches = False
    for child in node.children:
        verdict = _verdict(child, labels)
        if verdict is False:
            continue
        found.extend(_possible(child, labels))
        if verdict is True:
            some_child_matches = True
            if not child.continue_:
                break
    # The node itself takes the alert only when no child matched, even one that continues
    # (Alertmanager's Route.Match), so it is possible unless some child surely matches.
    if not some_child_matches:
        found.append(node.settings.receiver)
    return found


def _verdict(node: RouteNode, labels: _Labels) -> bool | None:
    """True when every matcher matches, False when one surely does not, None when it depends."""
    verdict: bool | None = True
    for matcher in node.matchers:
        value = labels.value(matcher.label)
        if value is None:
            verdict = None
        elif not matcher.matches({matcher.label: value}):
            return False
    return verdict


def routing_warnings(config: Config, rules: list[Rule]) -> list[str]:
    """Rules whose alerts can reach only receivers with no integrations (nobody is told)."""
    outputs = config.outputs
    if outputs.route is None or outputs.alertmanager is not None:
        return []  # the legacy config is warned about by delivery_warnings; Alertmanager gets every alert
    tree = route_tree(outputs, config.alerting)
    silent = {r.name for r in outputs.receivers if not has_integrations(r)}
    warnings = []
    for rule in rules:
        instance_labels = result_labels(rule.condition) if rule.condition is not None else None
        reached = possible_receivers(tree, _Labels({**rule.labels, "alertname": rule.alert}, instance_labels))
        if reached and all(name in silent for name in reached):
            warnings.append(f"{rule.where}: warning: rule {rule.alert}'s alerts reach only receivers with no "
                            f"integrations ({', '.join(reached)}): nobody is notified")
    return warnings
