"""The broken-definitions table: which SLOs, rules and models the last successful cycle found in error.

Written right after the cycle's own transaction (`AlertRepository.save_cycle`): it
is a report, not alert state. A crash between the two leaves the previous cycle's
list for one cycle; the alert state itself is never affected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from monitor.definition_errors import DefinitionError, DefinitionKind
from monitor.store import StateStore
from monitor.timeutil import from_unix


@dataclass(frozen=True)
class RecordedDefinitionError:
    error: DefinitionError
    since: datetime     # evaluation time of the first cycle (of this episode) that found it
    cycle_id: int       # the last cycle that found it


class DefinitionErrorRepository:
    def __init__(self, store: StateStore):
        self.store = store

    def current(self) -> list[RecordedDefinitionError]:
        """The definitions in error as of the last successful cycle, by kind and name."""
        return [RecordedDefinitionError(DefinitionError(DefinitionKind(r["kind"]), r["name"], r["error"]),
                                        from_unix(r["since"]), r["cycle_id"])
                for r in self.store.query("SELECT * FROM definition_errors ORDER BY kind, name")]

    def save(self, cycle_id: int, evaluated_at: datetime, errors: Sequence[DefinitionError]) -> None:
        """Replace the list with this cycle's; a definition still broken keeps its `since`."""
        with self.store.transaction() as conn:
            since = {(r["kind"], r["name"]): r["since"]
                     for r in conn.execute("SELECT kind, name, since FROM definition_errors")}
            conn.execute("DELETE FROM definition_errors")
            conn.executemany("INSERT INTO definition_errors (kind, name, error, since, cycle_id) "
                             "VALUES (?, ?, ?, ?, ?)", [
                                 (e.kind.value, e.name, e.message,
                                  since.get((e.kind.value, e.name), evaluated_at.timestamp()), cycle_id)
                                 for e in errors])
            conn.execute("UPDATE cycles SET definition_errors = ? WHERE id = ?", (len(errors), cycle_id))
