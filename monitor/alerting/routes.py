"""The route tree: which receivers an alert reaches, with which grouping (Alertmanager's routing).

Alertmanager's semantics (dispatch/route.go `Route.Match`): an alert enters at the
root, which always matches. At each node the children are tried in order; a child
whose matchers all match takes the alert, and unless that child says `continue`,
its later siblings are not tried. A node none of whose children matched is itself
the match. Unset settings (`receiver`, `group_by`, the three intervals) are
inherited from the parent. Pure: a config tree and labels in, matches out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Mapping, Sequence

from monitor.alerting.condition import Matcher
from monitor.config import AlertingConfig, OutputsConfig, RouteConfig

# The root route's receiver when only the legacy `outputs.slack`/`outputs.alertmanager` is configured.
DEFAULT_RECEIVER = "default"
# The root route's id (Alertmanager's route key of the root).
ROOT_ROUTE_ID = "{}"

_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$', re.S)


def matcher_text(matcher: Matcher) -> str:
    """`severity="page"`: a matcher with its value in one pair of quotes, which `parse_matcher`
    strips again, so any value (quotes and backslashes included) reads back exactly."""
    return f'{matcher.label}{matcher.op}"{matcher.value}"'


def parse_matcher(text: str) -> Matcher:
    """`severity="page"`, `team=~"rank.*"`, `env!=dev`: the one matcher syntax of routes and
    silences (Alertmanager's); raises ValueError saying what is wrong.

    One pair of surrounding quotes is stripped and nothing inside is unescaped: a regex's
    backslashes (`host=~"a\\.example"`) mean what they say, as they always have on the
    silence command line."""
    found = _MATCHER.match(text)
    if not found:
        raise ValueError(f"invalid matcher {text!r}: expected label=value, label!=value, label=~regex "
                         f"or label!~regex")
    name, op, value = found.groups()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regex in matcher {text!r}: {exc}") from None
    return Matcher(name, op, value)


@dataclass(frozen=True)
class RouteMatch:
    """The route an alert landed on, with its settings after inheritance."""

    route_id: str                   # stable path, e.g. "{}/{severity=\"page\"}/0" (Alertmanager's route key)
    receiver: str
    group_by: tuple[str, ...]       # ("...",) groups by every label
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta


@dataclass(frozen=True)
class RouteNode:
    """One compiled route: its matchers, its settings after inheritance, its children
    (`RouteTree.root` is the tree; `monitor check` and `routes test --tree` walk it)."""

    route_id: str
    matchers: tuple[Matcher, ...]
    settings: RouteMatch
    continue_: bool
    children: tuple["RouteNode", ...]


class RouteTree:
    """A compiled `outputs.route`: matchers parsed once, settings inherited once."""

    def __init__(self, root: RouteConfig, defaults: AlertingConfig):
        if not root.receiver:
            raise ValueError("the root route needs a receiver")
        base = RouteMatch(ROOT_ROUTE_ID, root.receiver, tuple(defaults.group_by), defaults.group_wait,
                          defaults.group_interval, defaults.repeat_interval)
        self.root = self._compile(root, base, ROOT_ROUTE_ID, is_root=True)

    def _compile(self, node: RouteConfig, parent: RouteMatch, route_id: str, is_root: bool = False) -> RouteNode:
        matchers = tuple(parse_matcher(m) for m in node.matchers)
        settings = RouteMatch(
            route_id, node.receiver or parent.receiver,
            tuple(node.group_by) if node.group_by is not None else parent.group_by,
            node.group_wait if node.group_wait is not None else parent.group_wait,
            node.group_interval if node.group_interval is not None else parent.group_interval,
            node.repeat_interval if node.repeat_interval is not None else parent.repeat_interval)
        children = []
        for index, child in enumerate(node.routes):
            key = "{" + ",".join(matcher_text(parse_matcher(t)) for t in child.matchers) + "}"
            children.append(self._compile(child, settings, f"{route_id}/{key}/{index}"))
        return RouteNode(route_id, () if is_root else matchers, settings, node.continue_, tuple(children))

    def match(self, labels: Mapping[str, str]) -> list[RouteMatch]:
        """Every route the alert reaches, in tree order (more than one only through `continue`)."""
        return _match(self.root, labels)

    def routes(self) -> dict[str, RouteMatch]:
        """Every route by id, with its settings after inheritance."""
        out: dict[str, RouteMatch] = {}
        stack = [self.root]
        while stack:
            node = stack.pop()
            out[node.route_id] = node.settings
            stack.extend(node.children)
        return out

    def receivers(self) -> set[str]:
        """Every receiver named anywhere in the tree."""
        out: set[str] = set()
        stack = [self.root]
        while stack:
            node = stack.pop()
            out.add(node.settings.receiver)
            stack.extend(node.children)
        return out


def _match(node: RouteNode, labels: Mapping[str, str]) -> list[RouteMatch]:
    if not all(m.matches(labels) for m in node.matchers):
        return []
    found: list[RouteMatch] = []
    for child in node.children:
        matched = _match(child, labels)
        found.extend(matched)
        if matched and not child.continue_:
            break
    return found or [node.settings]


def route_tree(outputs: OutputsConfig, alerting: AlertingConfig) -> RouteTree:
    """The config's route tree; without `outputs.route`, one root route to the `default` receiver
    with `alerting`'s grouping (what the legacy single-channel config always meant)."""
    return RouteTree(outputs.route or RouteConfig(receiver=DEFAULT_RECEIVER), alerting)


def receivers_reached(tree: RouteTree, labels: Mapping[str, str]) -> Sequence[str]:
    """Receiver names an alert with `labels` reaches, each once, in route order."""
    seen: list[str] = []
    for match in tree.match(labels):
        if match.receiver not in seen:
            seen.append(match.receiver)
    return seen
