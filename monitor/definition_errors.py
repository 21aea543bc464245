"""Broken definitions: an SLO, rule or model whose own query the server rejects.

A server that is down, too slow or failing (`QueryError.server_fault`) says nothing
about any one definition, so the cycle fails and every alert keeps its state. A
query the server rejects as wrong (a 4xx: a typo, a function the server does not
enable, a many-to-many match) is one definition's fault: that definition goes into
an error state and every other one is evaluated as usual.

A broken definition is a signal like any other (`definition_error`, value 1, with
the server's message in its `error` label), so the default `MonitorDefinitionBroken`
rule goes through routing, silences and inhibition. Its alerts, and the alerts on
the signals it would have produced, keep their state while it is broken: an SLO
whose query is wrong is not healthy, and must never read as resolved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Iterable, Mapping

from monitor.signals import Signal
from monitor.sources.prometheus import QueryError

SIGNAL = "definition_error"
# Server messages quote the query; a bound keeps alert labels and /metrics readable.
MAX_MESSAGE_CHARS = 500
# Prometheus' prefix on a query it cannot parse: says nothing the error type does not.
_PARSE_PREFIX = 'invalid parameter "query": '
# An evaluation error (422 `execution`) quotes the series it tripped on, which can change
# from one cycle to the next; the message is the alert's identity, so they are elided.
_SERIES_LIST = re.compile(r"\[\{[^\]]*\}\]")
_MATCH_GROUP = re.compile(r"match group \{[^}]*\}")


class DefinitionKind(str, Enum):
    SLO = "slo"      # name: the SLO's id
    RULE = "rule"    # name: "group/alert"
    MODEL = "model"  # name: the model's name (its drift or cost selectors)


# Whose alerts a broken definition freezes (see `DefinitionError.owns`): an SLO's are
# those on its `slo_*` signals; a model's, all of its signal alerts (drift and cost:
# a model's selectors feed both, and keeping a state is the safe side).
_SIGNAL_PREFIX = {DefinitionKind.SLO: "slo_", DefinitionKind.MODEL: ""}
_IDENTITY_LABEL = {DefinitionKind.SLO: "slo_id", DefinitionKind.MODEL: "model"}


@dataclass(frozen=True)
class DefinitionError:
    kind: DefinitionKind
    name: str
    message: str

    @classmethod
    def of(cls, kind: DefinitionKind, name: str, error: QueryError) -> "DefinitionError":
        message = error.message.removeprefix(_PARSE_PREFIX)
        if error.error_type == "execution":
            message = _MATCH_GROUP.sub("match group {…}", _SERIES_LIST.sub("[…]", message))
        kind_text = f"{error.error_type}: " if error.error_type else ""
        return cls(kind, name, bound_message(f"{kind_text}{message}"))

    def signal(self) -> Signal:
        return Signal(SIGNAL, {"kind": self.kind.value, "name": self.name, "error": self.message}, 1.0)

    def owns(self, rule_key: str, signals_read: Iterable[str], labels: Mapping[str, str]) -> bool:
        """Whether an alert (of the rule `rule_key`, reading `signals_read`) belongs to this definition."""
        if self.kind is DefinitionKind.RULE:
            return rule_key == self.name
        prefix = _SIGNAL_PREFIX[self.kind]
        return (labels.get(_IDENTITY_LABEL[self.kind]) == self.name
                and any(name.startswith(prefix) and name != SIGNAL for name in signals_read))

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind.value, "name": self.name, "error": self.message}


def bound_message(message: str) -> str:
    message = " ".join(message.split())  # one line: it becomes a label and a log line
    return message if len(message) <= MAX_MESSAGE_CHARS else message[:MAX_MESSAGE_CHARS - 1] + "…"


def definition_errors_in(signals: Iterable[Signal]) -> list[DefinitionError]:
    """The broken definitions a cycle's signals report, in order, each once."""
    found: dict[tuple[str, str], DefinitionError] = {}
    for signal in signals:
        if signal.name == SIGNAL and signal.value == 1.0:
            kind, name = DefinitionKind(signal.labels["kind"]), signal.labels["name"]
            found.setdefault((kind.value, name), DefinitionError(kind, name, signal.labels.get("error", "")))
    return list(found.values())
