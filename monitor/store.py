"""The daemon's durable state: one SQLite file (or a PostgreSQL database), written so that a crash
loses nothing.

WAL mode with `synchronous=FULL`: a committed transaction survives kill -9 and power
loss. Each concern (alert state, silences, model versions, the outbox, cached
drift profiles) owns its tables and declares them as a migration here, so the file
can be upgraded in place. The store is a small interface on purpose: replicas behind
a leader lease share a PostgreSQL database instead (`state.url`,
`monitor.store_postgres`, which runs the same migrations translated), and
`open_store` is the one place that picks the backend.

Both backends: `transaction()` (writers never interleave; a fence set with
`set_fence` is checked at the start of each), `query()`, blobs, `now()` (the
database's clock), `release_free_pages`, `close`.

Every fault of the file itself (not a database, damaged, locked, read-only, disk
full, written by a newer monitor) is a `StateError`: one line naming the file and
what to do, never an sqlite3 traceback.

History is pruned by its owners in small batches each cycle (see
`monitor.retention`); new files use `auto_vacuum=INCREMENTAL` so the pages freed
are handed back to the file system a few at a time, never by a stop-the-world VACUUM.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Protocol, Union

from monitor.errors import MonitorError

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.store_postgres import PostgresStore

# A writer waits this long for another process's write transaction before giving up.
# Our own transactions last milliseconds; a longer wait means something is stuck.
BUSY_TIMEOUT_S = 5.0
# After a checkpoint the WAL file is truncated back to this size (it is otherwise
# left at its largest size ever).
WAL_SIZE_LIMIT_BYTES = 4 * 1024 * 1024


class StateError(MonitorError):
    """The state file cannot be used; the message names the file and what to do."""


class FencedOut(StateError):
    """A write transaction was refused: this replica is no longer the leader (raised by the fence
    check set with `set_fence`; the transaction is rolled back)."""


class Fence(Protocol):
    def __call__(self, conn: Any) -> None: ...


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
    # Retention (monitor.retention): history is pruned oldest first in small batches,
    # and a parent row (cycle, notification) only once no child references it; these
    # indexes keep each batch and each foreign-key check an index lookup.
    (5, """
        CREATE INDEX cycles_by_time ON cycles (evaluated_at);
        CREATE INDEX alert_transitions_by_time ON alert_transitions (at);
        CREATE INDEX alert_transitions_by_fingerprint ON alert_transitions (fingerprint, at);
        CREATE INDEX alert_transitions_by_cycle ON alert_transitions (cycle_id);
        CREATE INDEX notifications_by_time ON notifications (created_at);
        CREATE INDEX notifications_by_cycle ON notifications (cycle_id);
        CREATE INDEX deliveries_by_notification ON deliveries (notification_id);
        CREATE INDEX deliveries_by_finish ON deliveries (finished_at);
    """),
    # Broken definitions (monitor.definition_errors): each cycle's count, and the SLOs,
    # rules and models in error as of the last successful cycle, since when.
    (6, """
        ALTER TABLE cycles ADD COLUMN definition_errors INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE definition_errors (
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            error TEXT NOT NULL,
            since REAL NOT NULL,
            cycle_id INTEGER NOT NULL REFERENCES cycles (id),
            PRIMARY KEY (kind, name)
        );
    """),
    # Routes (monitor.alerting.routes): a group remembers the route that grouped it and
    # the receiver it notified; Slack threads are per destination (one per slack_config
    # of each receiver), the legacy single channel's rows becoming destination `slack`.
    (7, """
        ALTER TABLE alert_groups ADD COLUMN route_id TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE alert_groups ADD COLUMN receiver TEXT NOT NULL DEFAULT 'default';
        ALTER TABLE slack_threads RENAME TO slack_threads_v6;
        CREATE TABLE slack_threads (
            destination TEXT NOT NULL,
            group_key TEXT NOT NULL,
            channel TEXT NOT NULL,
            ts TEXT NOT NULL,
            open INTEGER NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (destination, group_key)
        );
        INSERT INTO slack_threads (destination, group_key, channel, ts, open, updated_at)
            SELECT 'slack', group_key, channel, ts, open, updated_at FROM slack_threads_v6;
        DROP TABLE slack_threads_v6;
    """),
    # No data is not silence (rules' `no_data`): since when an alert in no_data has had none.
    (8, """
        ALTER TABLE alerts ADD COLUMN no_data_since REAL;
    """),
    # Leader election (monitor.ha): the one lease replicas on a shared PostgreSQL compete for.
    # `token` (the fencing token) grows by one with every new term; `expires_at` is set from the
    # database's clock. `token` is UNIQUE so that a new term is a key update: it waits for the
    # writes holding the row FOR KEY SHARE (the fence), while a renewal does not. An SQLite file
    # has one daemon (a lock file guards it) and never uses it.
    (9, """
        CREATE TABLE leader_lease (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            token BIGINT NOT NULL UNIQUE,
            acquired_at DOUBLE PRECISION NOT NULL,
            renewed_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL
        );
        INSERT INTO leader_lease (name, holder, token, acquired_at, renewed_at, expires_at)
            VALUES ('leader', '', 0, 0, 0, 0);
    """),
    # Shared delivery (monitor.outputs.outbox_repository): a delivery worker claims the head of a
    # destination's queue before sending it, so two replicas never send the same row at once; a claim
    # left by a worker that died lapses at claimed_until.
    (14, """
        ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
        ALTER TABLE deliveries ADD COLUMN claimed_until DOUBLE PRECISION;
    """),
]


class BlobMethods:
    """Opaque cached values (fitted drift profiles, the UI's last-cycle snapshot): the same SQL on
    both backends, over the store's own `transaction()` and `query()`."""

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


class StateStore(BlobMethods):
    """A SQLite state file; safe to share between the scheduler's threads."""

    dialect = "sqlite"

    def __init__(self, path: str | Path, busy_timeout_s: float = BUSY_TIMEOUT_S):
        self.path = str(path)
        self.busy_timeout_s = busy_timeout_s
        self._lock = threading.RLock()
        self._fence: Fence | None = None
        if self.path != ":memory:":
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StateError(f"state file {self.path}: cannot create its directory ({exc.strerror or exc}); "
                                 f"create it, or point state.path elsewhere") from None
        with self._translated():
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                         timeout=busy_timeout_s)
        try:
            with self._translated():
                self._conn.row_factory = sqlite3.Row
                if self._conn.execute("PRAGMA page_count").fetchone()[0] == 0:
                    # Only a new file can choose: on an existing one the setting needs a full VACUUM.
                    self._conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=FULL")
                self._conn.execute("PRAGMA foreign_keys=ON")
                self._conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
                self._migrate()
        except BaseException:
            self._conn.close()
            raise

    def _migrate(self) -> None:
        present = self._tables()
        known = {version for version, _ in MIGRATIONS}
        if "schema_migrations" not in present:
            if present:
                raise StateError(f"state file {self.path} is an SQLite database of another program (it has "
                                 f"tables but no monitor schema); point state.path at a monitor state file or a "
                                 f"new path")
            applied: set[int] = set()
        else:
            applied = {row[0] for row in self._conn.execute("SELECT version FROM schema_migrations")}
        if applied - known:
            raise StateError(f"state file {self.path} was written by a newer monitor (schema {max(applied)} > "
                             f"{max(known)}); upgrade monitor or point state.path elsewhere")
        if known - applied:
            # Only a file that needs upgrading takes the write lock here, so read-only
            # commands work beside a running daemon (and on a read-only file).
            with self.transaction() as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
                applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
                for version, sql in sorted(MIGRATIONS):
                    if version not in applied:
                        for statement in _statements(sql):
                            conn.execute(statement)
                        conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
        missing = sorted(declared_tables() - self._tables())
        if missing:
            raise StateError(f"state file {self.path} is damaged: table(s) {', '.join(missing)} missing; restore it "
                             f"from a backup, or move it aside to start afresh (alert state and queued "
                             f"notifications in it are then lost)")

    def _tables(self) -> set[str]:
        return {row[0] for row in self._conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}

    def tables(self) -> set[str]:
        with self._lock, self._translated():
            return self._tables()

    def columns(self, table: str) -> list[str]:
        return [row["name"] for row in self.query("SELECT name FROM pragma_table_info(?) ORDER BY cid", (table,))]

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Turn a fault of the file (not a bug in our SQL) into one StateError line."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            error = state_error(self.path, exc, self.busy_timeout_s)
            if error is None:
                raise
            raise error from None

    @contextmanager
    def transaction(self, fenced: bool = True) -> Iterator[sqlite3.Connection]:
        """One atomic transaction (BEGIN IMMEDIATE: writers never interleave).

        Raises StateError for a fault of the file (locked, read-only, full, damaged), or
        FencedOut from the fence (checked first unless `fenced=False`, for the lease's own
        bookkeeping); the transaction is then rolled back."""
        with self._lock, self._translated():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if fenced and self._fence is not None:
                    self._fence(self._conn)
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:  # SQLite may already have rolled back (e.g. disk full)
                    self._conn.execute("ROLLBACK")
                raise
            else:
                try:
                    self._conn.execute("COMMIT")
                except BaseException:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        with self._lock, self._translated():
            return self._conn.execute(sql, params).fetchall()

    def set_fence(self, check: Fence | None) -> None:
        """`check(conn)` runs at the start of every write transaction (before the caller's statements)
        and raises FencedOut to abort it; None removes it. Reads (`query`) are not fenced."""
        self._fence = check

    def now(self) -> float:
        """The database's clock as unix seconds: on a local file, this machine's."""
        return time.time()

    def release_free_pages(self, max_pages: int, keep_share: float = 0.25) -> int:
        """Hand up to `max_pages` free pages back to the file system, keeping `keep_share` of the file
        free for reuse (files made with auto_vacuum=INCREMENTAL; older files reuse their free pages
        instead). Returns the free pages left."""
        with self._lock, self._translated():
            pages, free = (int(self._conn.execute(f"PRAGMA {name}").fetchone()[0])
                           for name in ("page_count", "freelist_count"))
            surplus = free - int(pages * keep_share)
            if surplus > 0 and self._conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:
                # executescript steps the pragma to completion (execute() would free a single page)
                self._conn.executescript(f"PRAGMA incremental_vacuum({min(int(max_pages), surplus)});")
                free = int(self._conn.execute("PRAGMA freelist_count").fetchone()[0])
            return free

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "StateStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]


def declared_tables() -> set[str]:
    """Every table the migrations create: a file missing one is damaged."""
    return {"schema_migrations"} | {name for _, sql in MIGRATIONS
                                    for name in re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", sql)}


def _file_system_full(path: str) -> bool:
    """Whether the file system holding `path` has (almost) no space left: SQLite reports a full disk
    as an I/O error when it happens while creating the WAL index."""
    try:
        stats = os.statvfs(Path(path).parent)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 64 * 1024


def state_error(path: str, exc: sqlite3.DatabaseError, busy_timeout_s: float = BUSY_TIMEOUT_S) -> StateError | None:
    """The StateError for an sqlite3 error that is the file's fault, or None for a bug in our SQL."""
    if isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)):
        return None
    code = getattr(exc, "sqlite_errorname", "") or ""
    message = str(exc)
    where = f"state file {path}"
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in message:
        return StateError(f"{where} is locked by another process (still busy after {busy_timeout_s:g}s); "
                          f"stop the other monitor using it, or give this one its own state.path")
    if code.startswith("SQLITE_READONLY") or "readonly" in message:
        return StateError(f"{where} is read-only ({message}); make the file and its directory writable by the "
                          f"user running monitor")
    if code == "SQLITE_FULL" or "disk is full" in message or (code.startswith("SQLITE_IOERR")
                                                               and _file_system_full(path)):
        return StateError(f"{where}: the disk is full ({message}); free space on its file system and retry "
                          f"(the change in progress was not written)")
    if code == "SQLITE_NOTADB" or "not a database" in message:
        return StateError(f"{where} is not a monitor state file (not an SQLite database); point state.path at "
                          f"the right file, or move this one aside to start afresh")
    if code.startswith("SQLITE_CORRUPT") or "malformed" in message:
        return StateError(f"{where} is damaged ({message}); restore it from a backup, or move it aside to start "
                          f"afresh (alert state and queued notifications in it are then lost)")
    if code.startswith("SQLITE_CANTOPEN") or "unable to open" in message:
        return StateError(f"{where} cannot be opened ({message}); check that its directory exists and is "
                          f"writable by the user running monitor")
    if code.startswith("SQLITE_IOERR") or "I/O error" in message:
        return StateError(f"{where}: I/O error ({message}); check the disk holding it")
    if "no such table" in message or "no such column" in message:
        return StateError(f"{where} is damaged ({message}); restore it from a backup, or move it aside to start "
                          f"afresh (alert state and queued notifications in it are then lost)")
    if code and code != "SQLITE_ERROR":  # SQLITE_ERROR alone is a mistake in our SQL: a bug, kept as is
        return StateError(f"{where}: {message}")
    return None


Store = Union[StateStore, "PostgresStore"]


def open_store(config: "Config", path: str | Path | None = None) -> Store:
    """The configured state store: the PostgreSQL database of `state.url` (its password read from
    `state.password_env`/`state.password_file`), else the SQLite file `path` or `state.path`."""
    state = config.state
    if state.url and path is None:
        from monitor.secrets import read_secret
        from monitor.store_postgres import PostgresStore

        password = None
        if state.password_env or state.password_file:
            password = read_secret(state.password_env, state.password_file, "state.password")
        return PostgresStore(state.url, password)
    return StateStore(path if path is not None else config.resolve_path(state.path))
