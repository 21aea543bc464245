"""Grouped SLOs: one SLO instance per distinct value set of a spec's `group_by` labels.

A spec with `group_by: [endpoint]` is evaluated with one query per window for all
its groups (`sum by (endpoint) (...)`); each value set in the answers is an
instance with its own windows, budget and alerts. An instance's identity is its
spec's id plus its label values:

- for people, Prometheus' selector form: `ranker-availability{endpoint="/search"}`
  (values escaped as in PromQL strings, labels in `group_by` order);
- for state keys, `group_key`: canonical JSON of the (label, value) pairs, which
  no label value can make ambiguous, and "" for an ungrouped spec.

Alerts and /metrics series keep `slo_id` = the spec's id and carry the group labels
by their own names, as `sum by` leaves them on the recorded series of generated
rules, so dashboards and the rule file agree on label names.
"""

from __future__ import annotations

import json
import re
from typing import Iterable, Mapping, Sequence

from monitor.slo.spec import EventsSli, SloSpec, _closing_paren, render_window, summed
from monitor.sources.prometheus import QueryError

# One instance's label values, in `group_by` order; () for an ungrouped spec.
Group = tuple[tuple[str, str], ...]

_SUM_BY = re.compile(r"sum\s+by\s*\(([^()]*)\)\s*\(")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Labels monitor itself puts on SLO signals, alerts and generated rules: a group label
# of the same name would overwrite one of them.
RESERVED_LABELS = frozenset({"slo_id", "service", "slo", "window", "alertname", "severity",
                             "sloth_id", "sloth_service", "sloth_slo", "sloth_window"})


class GroupingError(QueryError):
    """A grouped SLO's answers cannot be split into its groups: the spec's own fault, never
    the server's, so the SLO goes into the definition-error state (its alerts keep
    their state) and every other SLO is evaluated as usual."""

    def __init__(self, spec_id: str, message: str, error_type: str = "grouping"):
        super().__init__(spec_id, message, error_type=error_type)

    @property
    def server_fault(self) -> bool:
        return False


class TooManyGroups(GroupingError):
    """More groups than the spec's `max_groups`. Never truncated to the first N: an SLO
    silently missing groups would read as healthy where it is not evaluated at all."""

    def __init__(self, spec_id: str, group_by: Sequence[str], found: int, max_groups: int):
        super().__init__(spec_id, f"{found} groups of ({', '.join(group_by)}) exceed max_groups {max_groups}; "
                                  f"raise max_groups or group by fewer labels", error_type="too_many_groups")
        self.found = found
        self.max_groups = max_groups


def group_by_problem(labels: Iterable[object]) -> str | None:
    """Why a `group_by` list is unusable, or None: label names, distinct, none of monitor's own."""
    seen: set[str] = set()
    for label in labels:
        if not isinstance(label, str) or not LABEL_NAME.match(label) or label.startswith("__"):
            return f"{label!r} is not a Prometheus label name"
        if label in RESERVED_LABELS:
            return (f"{label!r} is a label monitor sets on SLO signals and alerts; "
                    f"relabel it in the query (label_replace) and group by the new name")
        if label in seen:
            return f"{label!r} is listed twice"
        seen.add(label)
    return None


def group_of(labels: Mapping[str, str], group_by: Sequence[str]) -> Group:
    """The group of a series; an absent label is the empty value, as in `sum by`."""
    return tuple((name, labels.get(name, "")) for name in group_by)


def by_clause(query: str, group_by: Sequence[str]) -> str:
    """`sum by (labels) (query)`: one series per group, as rates add; a query that already is
    one plain `sum by` the same labels is kept as written (as `summed` keeps a `sum(...)`)."""
    query = query.strip()
    written = _SUM_BY.match(query)
    if (written and [name.strip() for name in written.group(1).split(",") if name.strip()] == list(group_by)
            and _closing_paren(query, written.end() - 1) == len(query) - 1):
        return query
    return f"sum by ({', '.join(group_by)}) ({query})"


def events_queries(spec: SloSpec, duration: str) -> dict[str, str]:
    """An events SLI's `bad` and `total` rate queries over one window: one series per
    group (`sum by`), or one number for an ungrouped spec (`sum`)."""
    assert isinstance(spec.sli, EventsSli)
    queries = {"bad": render_window(spec.sli.error_query, duration),
               "total": render_window(spec.sli.total_query, duration)}
    if spec.group_by:
        return {role: by_clause(query, spec.group_by) for role, query in queries.items()}
    return {role: summed(query) for role, query in queries.items()}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def instance_id(spec_id: str, group: Group) -> str:
    """`<service>-<name>{label="value",...}` for display; the spec's id when ungrouped."""
    if not group:
        return spec_id
    return spec_id + "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in group) + "}"


def group_key(group: Group) -> str:
    """A stable, unambiguous key for state (closed hours): "" when ungrouped."""
    if not group:
        return ""
    return json.dumps([list(pair) for pair in group], separators=(",", ":"), ensure_ascii=True)


def group_from_key(key: str) -> Group:
    """The inverse of `group_key`."""
    if not key:
        return ()
    return tuple((str(name), str(value)) for name, value in json.loads(key))
