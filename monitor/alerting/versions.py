"""Model versions the daemon has seen serving, and each model's last-known-good version.

A version is recorded when a `model_inference_rate{model,version}` signal shows it
serving (rate > 0): first and last seen. The last-known-good version of a model is
the newest one (by first sighting, i.e. deploy order) that has served for at
least `last_known_good_after` and never had a rollback alert fire for it: a
version that once tripped a rollback rule is not a safe place to roll back to.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Iterable, Mapping

from monitor.signals import Signal

SERVING_SIGNAL = "model_inference_rate"


@dataclass(frozen=True)
class ModelVersion:
    model: str
    version: str
    first_seen_at: datetime
    last_seen_at: datetime
    rollback_fired_at: datetime | None = None

    def served_for(self) -> timedelta:
        return self.last_seen_at - self.first_seen_at

    def order_key(self) -> tuple[datetime, str]:
        return (self.first_seen_at, self.version)


VersionKey = tuple[str, str]


def observe_serving(known: Mapping[VersionKey, ModelVersion], signals: Iterable[Signal],
                    at: datetime) -> dict[VersionKey, ModelVersion]:
    """Versions after this cycle's signals: new ones added, serving ones' last_seen moved to `at`."""
    updated = dict(known)
    for signal in signals:
        if signal.name != SERVING_SIGNAL or signal.value is None or signal.value <= 0:
            continue
        model, version = signal.labels.get("model", ""), signal.labels.get("version", "")
        if not model or not version:
            continue
        key = (model, version)
        previous = updated.get(key)
        if previous is None:
            updated[key] = ModelVersion(model, version, at, at)
        elif at > previous.last_seen_at:
            updated[key] = replace(previous, last_seen_at=at)
    return updated


def mark_rollback_fired(known: Mapping[VersionKey, ModelVersion], model: str, version: str,
                        at: datetime) -> dict[VersionKey, ModelVersion]:
    """Record that a rollback alert fired for a version (it can no longer be last-known-good)."""
    updated = dict(known)
    record = updated.get((model, version))
    if record is not None and record.rollback_fired_at is None:
        updated[(model, version)] = replace(record, rollback_fired_at=at)
    return updated


def last_known_good(known: Mapping[VersionKey, ModelVersion], model: str,
                    after: timedelta) -> ModelVersion | None:
    """The newest version of `model` that served at least `after` without a rollback alert."""
    candidates = [v for v in known.values()
                  if v.model == model and v.rollback_fired_at is None and v.served_for() >= after]
    return max(candidates, key=ModelVersion.order_key, default=None)


def is_newer(known: Mapping[VersionKey, ModelVersion], model: str, version: str, than: ModelVersion) -> bool:
    """True when `version` was first seen after `than` (deployed later)."""
    record = known.get((model, version))
    return record is not None and record.order_key() > than.order_key()
