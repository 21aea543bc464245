"""`monitor state migrate`: copy an SQLite state file into an empty PostgreSQL database.

Moving a single daemon to replicas on PostgreSQL must not forget anything it knows:
firing and pending alerts (with their since-times), silences, model versions (the
last known good one a rollback names), queued notifications and pending deliveries
(sent afterwards with the same message ids, so receivers dedup them), closed
periods, cached blobs, and the history the weekly report reads. Every table the
migrations declare is copied row for row, ids included, in one transaction: the
target has all of it or none. Identity sequences are then moved past the copied
ids, so the next cycle's rows do not collide with them.

The target must be empty (a fresh database, or one holding only monitor's empty
schema): merging two states would mix two alert histories.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from monitor.store import MIGRATIONS, StateError, StateStore
from monitor.store_postgres import ROWID_TABLES, PostgresStore, identity_tables

# Rows per INSERT batch: bounded memory for a large history.
COPY_BATCH_ROWS = 2000
# Tables that describe the database being written, not the state moved into it: the
# leader lease (monitor.ha.lease) is seeded with its one row by its migration, and a
# lease copied from a single daemon's file would name a holder that never ran here.
NOT_COPIED = frozenset({"leader_lease"})


@dataclass(frozen=True)
class CopyReport:
    rows: dict[str, int]   # table -> rows copied

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def tables_in_creation_order() -> list[str]:
    """The migrations' tables, parents before children (as created), each once, gone ones left out."""
    order: list[str] = []
    for _, sql in sorted(MIGRATIONS):
        for name in re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", sql):
            if name not in order:
                order.append(name)
        for name in re.findall(r"DROP TABLE (?:IF EXISTS )?(\w+)", sql):
            if name in order:
                order.remove(name)
    return order


def copy_state(source: StateStore, target: PostgresStore) -> CopyReport:
    """Copy every monitor table of `source` into the empty `target`; raises StateError if the target
    holds any row already."""
    tables = [t for t in tables_in_creation_order() if t in source.tables() and t not in NOT_COPIED]
    occupied = [t for t in tables if target.query(f"SELECT 1 FROM {t} LIMIT 1")]
    if occupied:
        raise StateError(f"state database {target.path} is not empty (table(s) {', '.join(occupied)} have rows); "
                         f"migrate into a new, empty database")
    identity = identity_tables(MIGRATIONS)
    copied: dict[str, int] = {}
    with target.transaction() as conn:
        for table in tables:
            columns = [c for c in source.columns(table) if c in set(target.columns(table))]
            select = ", ".join(columns)
            if table in ROWID_TABLES:   # keep SQLite's row order, which the history is read in
                columns, select = [*columns, "rowid"], f"{select}, rowid"
            insert = (f"INSERT INTO {table} ({', '.join(columns)}) "
                      f"VALUES ({', '.join('?' * len(columns))})")
            key = "id" if table in identity else "rowid" if table in ROWID_TABLES else None
            rows = source.query(f"SELECT {select} FROM {table}" + (f" ORDER BY {key}" if key else ""))
            for start in range(0, len(rows), COPY_BATCH_ROWS):
                conn.executemany(insert, [tuple(_value(v) for v in row) for row in rows[start:start + COPY_BATCH_ROWS]])
            copied[table] = len(rows)
            if key is not None and rows:
                conn.execute(f"SELECT setval(pg_get_serial_sequence(?, ?), (SELECT MAX({key}) FROM {table}))",
                             (table, key))
    return CopyReport(copied)


def _value(value: object) -> object:
    # SQLite hands BLOBs back as bytes already; memoryview covers older drivers.
    return bytes(value) if isinstance(value, memoryview) else value
