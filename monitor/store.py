"""The daemon's durable state: one SQLite file, written so that a crash loses nothing.

WAL mode with `synchronous=FULL`: a committed transaction survives kill -9 and power
loss. Each concern (alert state, silences, model versions, the outbox, cached
drift profiles) owns its tables and declares them as a migration here, so the file
can be upgraded in place. The store is a small interface on purpose: a PostgreSQL
backend for two replicas behind a leader lease is the planned next step, and only
this module should need to know which database is underneath.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# (version, SQL). Append only: never edit a migration that has shipped.
MIGRATIONS: list[tuple[int, str]] = [
    (1, """
        CREATE TABLE blobs (
            namespace TEXT NOT NULL,
            key TEXT NOT NULL,
            value BLOB NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (namespace, key)
        );
    """),
    # Alerting (monitor.alerting): alert states, notification groups, silences,
    # model versions, queued notifications and the cycle log. Times are unix seconds.
    (2, """
        CREATE TABLE alerts (
            fingerprint TEXT PRIMARY KEY,
            alertname TEXT NOT NULL,
            rule TEXT NOT NULL,
            labels TEXT NOT NULL,
            annotations TEXT NOT NULL,
            state TEXT NOT NULL,
            last_evaluated_at REAL NOT NULL,
            active_since REAL,
            fired_at REAL,
            resolved_at REAL,
            false_since REAL,
            value REAL,
            evidence TEXT NOT NULL,
            silenced_by TEXT NOT NULL,
            inhibited INTEGER NOT NULL,
            rollback_requested_at REAL
        );
        CREATE TABLE alert_groups (
            group_key TEXT PRIMARY KEY,
            group_labels TEXT NOT NULL,
            first_seen_at REAL NOT NULL,
            last_notified_at REAL,
            notified_firing TEXT NOT NULL,
            notified_resolved TEXT NOT NULL
        );
        CREATE TABLE silences (
            id TEXT PRIMARY KEY,
            matchers TEXT NOT NULL,
            starts_at REAL NOT NULL,
            ends_at REAL NOT NULL,
            created_by TEXT NOT NULL,
            comment TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE TABLE model_versions (
            model TEXT NOT NULL,
            version TEXT NOT NULL,
            first_seen_at REAL NOT NULL,
            last_seen_at REAL NOT NULL,
            rollback_fired_at REAL,
            PRIMARY KEY (model, version)
        );
        CREATE TABLE cycles (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            evaluated_at REAL NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL NOT NULL,
            status TEXT NOT NULL,
            error TEXT,
            signals INTEGER NOT NULL DEFAULT 0,
            transitions INTEGER NOT NULL DEFAULT 0,
            notifications INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE alert_transitions (
            cycle_id INTEGER NOT NULL REFERENCES cycles (id),
            fingerprint TEXT NOT NULL,
            alertname TEXT NOT NULL,
            labels TEXT NOT NULL,
            from_state TEXT NOT NULL,
            to_state TEXT NOT NULL,
            at REAL NOT NULL
        );
        CREATE TABLE notifications (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            idempotency_key TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            created_at REAL NOT NULL,
            cycle_id INTEGER REFERENCES cycles (id),
            payload TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending'
        );
        CREATE INDEX notifications_by_status ON notifications (status, id);
    """),
    # Outputs (monitor.outputs): the delivery outbox. One row per notification and
    # destination, written before any attempt; a notification's status follows its
    # deliveries (routed -> delivered, or failed when one expired or was disabled).
    (3, """
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            notification_id INTEGER REFERENCES notifications (id),
            notification_key TEXT NOT NULL,
            destination TEXT NOT NULL,
            event_type TEXT NOT NULL,
            message_id TEXT NOT NULL,
            group_key TEXT,
            body TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            failures INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            next_attempt_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            last_attempt_at REAL,
            finished_at REAL,
            last_status_code INTEGER,
            last_error TEXT,
            progress TEXT NOT NULL DEFAULT '{}',
            UNIQUE (notification_key, destination)
        );
        CREATE INDEX deliveries_queue ON deliveries (status, destination, id);
        CREATE TABLE delivery_results (
            destination TEXT NOT NULL,
            result TEXT NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (destination, result)
        );
        CREATE TABLE disabled_destinations (
            destination TEXT PRIMARY KEY,
            target_digest TEXT NOT NULL,
            disabled_at REAL NOT NULL,
            reason TEXT NOT NULL
        );
        CREATE TABLE slack_threads (
            group_key TEXT PRIMARY KEY,
            channel TEXT NOT NULL,
            ts TEXT NOT NULL,
            open INTEGER NOT NULL,
            updated_at REAL NOT NULL
        );
    """),
    # Closed periods (monitor.incremental): per series set (what was measured) and
    # hour (named by its end, unix seconds), whether the hour was measured completely
    # and the figures measured. Pruned by hour end.
    (4, """
        CREATE TABLE closed_periods (
            series_set TEXT NOT NULL,
            period_end REAL NOT NULL,
            measured_at REAL NOT NULL,
            PRIMARY KEY (series_set, period_end)
        ) WITHOUT ROWID;
        CREATE INDEX closed_periods_by_end ON closed_periods (period_end);
        CREATE TABLE period_values (
            series_set TEXT NOT NULL,
            period_end REAL NOT NULL,
            figure TEXT NOT NULL,
            key TEXT NOT NULL,
            value REAL NOT NULL,
            PRIMARY KEY (series_set, period_end, figure, key)
        ) WITHOUT ROWID;
        CREATE INDEX period_values_by_end ON period_values (period_end);
    """),
]


class StateStore:
    """A SQLite state file; safe to share between the scheduler's threads."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        with self.transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
            applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for version, sql in sorted(MIGRATIONS):
                if version not in applied:
                    for statement in _statements(sql):
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic transaction (BEGIN IMMEDIATE: writers never interleave)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # -- blobs: opaque cached values such as fitted drift profiles ---------------

    def put_blob(self, namespace: str, key: str, value: bytes, now: float) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT INTO blobs (namespace, key, value, updated_at) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, "
                         "updated_at = excluded.updated_at", (namespace, key, value, now))

    def get_blob(self, namespace: str, key: str) -> bytes | None:
        rows = self.query("SELECT value FROM blobs WHERE namespace = ? AND key = ?", (namespace, key))
        return bytes(rows[0]["value"]) if rows else None

    def delete_blobs(self, namespace: str, keep_keys: set[str] | None = None) -> int:
        """Delete a namespace's blobs except `keep_keys`; returns how many were deleted."""
        with self.transaction() as conn:
            keys = [r[0] for r in conn.execute("SELECT key FROM blobs WHERE namespace = ?", (namespace,))]
            doomed = [k for k in keys if not keep_keys or k not in keep_keys]
            conn.executemany("DELETE FROM blobs WHERE namespace = ? AND key = ?", [(namespace, k) for k in doomed])
        return len(doomed)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "StateStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]
