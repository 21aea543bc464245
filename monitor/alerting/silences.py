"""Silences: label matchers and a time range during which matching alerts are not notified.

Matchers use Alertmanager's syntax (`service=ranker`, `severity!=page`,
`model=~"rank.*"`, `version!~"v1|v2"`); a silence mutes an alert when all its
matchers match the alert's labels and `starts_at <= at < ends_at`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Mapping, Sequence

from monitor.alerting import routes
from monitor.alerting.condition import Matcher
from monitor.errors import MonitorError

class SilenceError(MonitorError):
    """A silence could not be created or found."""


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime

    def is_active(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def state(self, at: datetime) -> str:
        if at < self.starts_at:
            return "pending"
        return "active" if at < self.ends_at else "expired"


def parse_matcher(text: str) -> Matcher:
    """`label=value`, `label!=value`, `label=~regex`, `label!~regex` (value optionally quoted):
    the same syntax as routes' matchers, parsed by the same code."""
    try:
        return routes.parse_matcher(text)
    except ValueError as exc:
        raise SilenceError(str(exc)) from None


def format_matcher(matcher: Matcher) -> str:
    """A matcher as the CLI accepts it back, the value quoted so it reads back exactly."""
    return routes.matcher_text(matcher)


def silencing(labels: Mapping[str, str], silences: Sequence[Silence], at: datetime) -> tuple[str, ...]:
    """Ids of the silences muting an alert with these labels at `at`."""
    return tuple(s.id for s in silences if s.is_active(at) and s.matches(labels))


def new_silence(matcher_texts: Sequence[str], *, starts_at: datetime, ends_at: datetime, created_by: str,
                comment: str, created_at: datetime) -> Silence:
    """A new silence (a fresh id) from its matchers' text, checked as every writer (the CLI, the UI,
    the API) must: at least one matcher, parsed by the one matcher parser; not one that would
    silence every alert (as Alertmanager, at least one matcher must not match an empty label
    value); an end after its start. Raises SilenceError saying what is wrong."""
    matchers = tuple(parse_matcher(text) for text in matcher_texts)
    if not matchers:
        raise SilenceError("a silence needs at least one matcher, e.g. alertname=\"SLOErrorBudgetBurnPage\"")
    if all(m.matches({}) for m in matchers):
        raise SilenceError("these matchers would silence every alert: at least one must not match an empty "
                           "label value (e.g. service=\"ranker\")")
    if ends_at <= starts_at:
        raise SilenceError("a silence must end after it starts")
    return Silence(str(uuid.uuid4()), matchers, starts_at, ends_at, created_by, comment, created_at)
