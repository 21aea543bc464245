"""The leader lease: one row in PostgreSQL that replicas compete for, with a fencing token.

A replica becomes leader by taking the lease once it has lapsed (one UPDATE, so two
replicas can never both succeed) and stays leader by renewing it every third of its
TTL, on its own thread and its own connection. Every new term increments the row's
`token`. Expiry is decided by the database's clock alone: each statement computes
`clock_timestamp()` on the server, so replicas with skewed local clocks agree.

A replica that cannot renew in time (paused by SIGSTOP, cut off from the database)
steps down by itself: it counts its term as valid only until `TTL` after it *sent*
its last successful renewal, by its own monotonic clock, which keeps running while
the process is stopped. So on waking it knows at once that it may no longer lead,
before it has talked to anyone.

Knowing is not enough: a write already under way when the term ended must not land.
`check(conn)` is the store's fence (`store.set_fence`): inside every write
transaction it locks the lease row `FOR KEY SHARE` and rejects the transaction
(`FencedOut`) unless the row still carries this replica's token and has not expired
by the database clock. `token` has a unique index, so taking a new term (token + 1)
is a key update that waits for those locks: a write either commits inside its term
or not at all. A renewal changes no key, so the leader's own long writes never hold
up its renewals. So that a writer stopped inside its transaction cannot hold the
lock (and the takeover) forever, the fence also limits how long the transaction may
sit idle to one TTL; the server then ends its session.

Leader work (cycles, deliveries) runs under the fence. A few writes are legitimately
made by any replica (an operator's config reload re-enabling a destination):
they run inside `unfenced()`.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from monitor.store import FencedOut

log = logging.getLogger(__name__)

LEASE = "leader"  # the lease row's name (one lease per database)

# The database's clock, in unix seconds, read at the moment the statement runs
# (now() would be the transaction's start).
DB_NOW = "extract(epoch FROM clock_timestamp())::double precision"

_ACQUIRE = f"""
    UPDATE leader_lease SET holder = %(me)s, token = token + 1, acquired_at = n.now, renewed_at = n.now,
                            expires_at = n.now + %(ttl)s
    FROM (SELECT {DB_NOW} AS now) AS n
    WHERE name = '{LEASE}' AND expires_at <= n.now
    RETURNING token
"""
# A renewal names the term it extends: a replica whose term ended, even one that reused
# a name, never extends someone else's.
_RENEW = f"""
    UPDATE leader_lease SET renewed_at = n.now, expires_at = n.now + %(ttl)s
    FROM (SELECT {DB_NOW} AS now) AS n
    WHERE name = '{LEASE}' AND holder = %(me)s AND token = %(token)s AND expires_at > n.now
    RETURNING token
"""
_RELEASE = f"""
    UPDATE leader_lease SET expires_at = {DB_NOW}
    WHERE name = '{LEASE}' AND holder = %(me)s AND token = %(token)s
"""
_READ = f"SELECT holder, token, expires_at - {DB_NOW} FROM leader_lease WHERE name = '{LEASE}'"
# The fence, one round trip: it also limits how long this transaction may sit idle
# (set_config(..., true) is SET LOCAL). Only literals, so it runs unchanged on a raw
# psycopg connection or on the store's adapter.
_FENCE = ("SELECT token, expires_at > {now}, set_config('idle_in_transaction_session_timeout', '{idle_ms}', true) "
          "FROM leader_lease WHERE name = '{lease}' FOR KEY SHARE")

_unfenced: contextvars.ContextVar[bool] = contextvars.ContextVar("monitor_ha_unfenced", default=False)


@contextmanager
def unfenced() -> Iterator[None]:
    """Writes in this block are allowed on any replica (an operator's action, not leader work)."""
    token = _unfenced.set(True)
    try:
        yield
    finally:
        _unfenced.reset(token)


@dataclass(frozen=True)
class Term:
    """This replica's current term: its fencing token, valid until `valid_until` (monotonic seconds)."""

    token: int
    valid_until: float


@dataclass(frozen=True)
class LeaderChange:
    """What the watcher publishes: whether this replica now leads, who does, and why it changed."""

    leading: bool
    leader: str | None
    token: int | None
    reason: str


class LeaderLease:
    """Acquires, renews and releases the lease for one replica; `check` is the store's fence.

    `connect()` opens the dedicated connection (autocommit). `on_change(LeaderChange)` is called on
    the watcher thread whenever this replica starts or stops leading, and returns only once the
    replica's leader work has started or stopped: no new term is taken before a step-down returns.
    `on_leader_seen(holder, token)` is called for each term this replica sees for the first time (its own
    included), on the renewer thread.
    """

    def __init__(self, connect: Callable[[], Any], replica: str, ttl_s: float, *,
                 poll_s: float | None = None,
                 on_change: Callable[[LeaderChange], None] | None = None,
                 on_leader_seen: Callable[[str, int], None] | None = None,
                 monotonic: Callable[[], float] = time.monotonic):
        self.replica = replica
        self.ttl_s = float(ttl_s)
        self.renew_every_s = self.ttl_s / 3
        self.poll_s = min(poll_s, self.renew_every_s) if poll_s else self.renew_every_s
        self._connect = connect
        self._conn: Any = None
        self._on_change = on_change or (lambda change: None)
        self._on_leader_seen = on_leader_seen or (lambda holder, token: None)
        self._monotonic = monotonic
        self._cond = threading.Condition()
        self._term: Term | None = None
        self._published = False          # what on_change last said (watcher thread only writes it)
        self._leader: str | None = None  # the holder of the live lease last seen, this replica included
        self._seen_token: int | None = None
        self._last_error: str | None = None
        self._drop_reason: str | None = None  # why the last term ended, for the step-down's log line
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._fence_sql = _FENCE.format(now=DB_NOW, idle_ms=max(1000, int(self.ttl_s * 1000)), lease=LEASE)

    # -- what other threads ask -------------------------------------------------------

    def is_leader(self) -> bool:
        """Whether this replica's term is still valid by its own clock (the fence checks the database's)."""
        term = self._term
        return term is not None and self._monotonic() < term.valid_until

    @property
    def token(self) -> int | None:
        term = self._term
        return term.token if term is not None and self._monotonic() < term.valid_until else None

    @property
    def leader(self) -> str | None:
        """The replica last seen holding the lease (None: nobody, or not known yet)."""
        return self.replica if self.is_leader() else self._leader

    @property
    def last_error(self) -> str | None:
        """Why the last attempt to reach the database failed (None: it succeeded)."""
        return self._last_error

    def check(self, conn: Any) -> None:
        """The store's fence: raise FencedOut unless this replica's term holds, by the database's clock."""
        if _unfenced.get():
            return
        term = self._term
        if term is None or self._monotonic() >= term.valid_until:
            raise FencedOut(f"replica {self.replica} does not hold the leader lease: write rejected")
        # A writer stopped inside this transaction must not hold the row lock (and the
        # takeover) for longer than one term would have lasted.
        row = conn.execute(self._fence_sql).fetchone()
        token, live = _values(row)[:2] if row is not None else (None, False)
        if token != term.token or not live:
            raise FencedOut(f"replica {self.replica}: the leader lease has passed to another term "
                            f"(token {token}, ours {term.token}): write rejected")

    # -- one step, for the thread and for tests ----------------------------------------------

    def step(self) -> bool:
        """One acquire or renew attempt on the dedicated connection; returns whether the term holds.

        A term that has run out by the local clock is dropped first. A failed renewal
        (the lease passed on, or the database said it expired) drops the term; a
        connection error leaves it to run out unless a retry succeeds in time.
        """
        with self._cond:
            term = self._term
            if term is not None and self._monotonic() >= term.valid_until:
                self._drop_term("the lease ran out before it could be renewed")
                term = None
        sent_at = self._monotonic()
        try:
            conn = self._connection()
            if term is not None:
                row = conn.execute(_RENEW, {"me": self.replica, "token": term.token, "ttl": self.ttl_s}).fetchone()
                with self._cond:
                    if row is None:
                        self._drop_term("the lease was renewed too late or taken over")
                    elif self._term == term:
                        self._term = Term(term.token, sent_at + self.ttl_s)
                        self._cond.notify_all()
            elif not self._published:  # a step-down still being handled: no new term yet
                row = conn.execute(_ACQUIRE, {"me": self.replica, "ttl": self.ttl_s}).fetchone()
                if row is not None:
                    token = int(_values(row)[0])
                    with self._cond:
                        self._term = Term(token, sent_at + self.ttl_s)
                        self._cond.notify_all()
                    self._seen(self.replica, token)
                else:
                    holder, token, left_s = _values(conn.execute(_READ).fetchone())
                    if holder and left_s > 0:
                        self._seen(holder, int(token))
                    else:
                        self._leader = None  # lapsed, nobody has taken it yet
            self._last_error = None
        except Exception as exc:  # noqa: BLE001 - any failure to reach the database: retry, let the term run out
            self._close_connection()
            message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            if message != self._last_error:
                log.warning("leader lease: cannot reach the state database (%s); %s", message,
                            "retrying until the term runs out" if self.is_leader() else "retrying")
            self._last_error = message
        return self.is_leader()

    def release(self) -> None:
        """End this replica's term now (a clean shutdown), so a standby takes over without waiting."""
        with self._cond:
            term = self._term
        if term is None:
            return
        try:
            self._connection().execute(_RELEASE, {"me": self.replica, "token": term.token})
        except Exception as exc:  # noqa: BLE001 - it will lapse by itself within one TTL
            log.warning("leader lease: could not release it (%s); it lapses within %.0fs", exc, self.ttl_s)
        with self._cond:
            self._drop_term("released at shutdown")

    # -- threads ---------------------------------------------------------------------

    def start(self) -> "LeaderLease":
        self._stop.clear()
        self._threads = [threading.Thread(target=self._run_renewer, name="lease", daemon=True),
                         threading.Thread(target=self._run_watcher, name="lease-watch", daemon=True)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, release: bool = True) -> None:
        """Stop renewing and end the term: with `release`, hand the lease back at once (call it after
        stopping the leader's work); without, let it lapse. The step-down is published before it returns."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        renewer, watcher = (self._threads + [None, None])[:2]
        if renewer is not None:
            renewer.join(self.ttl_s)
        if release:
            self.release()
        with self._cond:
            self._drop_term("stopping")
        if watcher is not None:
            watcher.join(self.ttl_s)
        self._close_connection()

    def _run_renewer(self) -> None:
        while not self._stop.is_set():
            leading = self.step()
            with self._cond:
                term = self._term
            if leading and term is not None:
                # Renew a third of a TTL after the last success (two thirds of the term left);
                # after a failure, retry every twelfth while the term still has time left.
                if self._last_error:
                    wait_s = self.renew_every_s / 4
                else:
                    wait_s = max(0.05, term.valid_until - 2 * self.renew_every_s - self._monotonic())
            else:
                wait_s = self.poll_s
            self._stop.wait(wait_s)

    def _run_watcher(self) -> None:
        """Publishes each start and end of leadership, including a term that runs out while the
        renewer is blocked on a dead connection."""
        while True:
            with self._cond:
                while True:
                    if self._stop.is_set() and not self._published and self._term is None:
                        return
                    term = self._term
                    now = self._monotonic()
                    leading = term is not None and now < term.valid_until
                    if leading != self._published:
                        break
                    self._cond.wait(None if not leading else term.valid_until - now)
            if leading:
                change = LeaderChange(True, self.replica, term.token, "took the lease")
            else:
                reason = self._drop_reason or "its term ran out"
                change = LeaderChange(False, self._leader if self._leader != self.replica else None, None, reason)
            try:
                self._on_change(change)
            except Exception:  # noqa: BLE001 - a failing callback must not leave the state unpublished
                log.exception("leader lease: handling the change (%s) failed", change.reason)
            with self._cond:
                self._published = leading
                if not leading:
                    self._drop_reason = None
                    if self._term is not None and self._monotonic() >= self._term.valid_until:
                        self._term = None
                self._cond.notify_all()

    # -- internals ---------------------------------------------------------------------

    def _drop_term(self, reason: str) -> None:
        """Called with the condition held."""
        if self._term is not None:
            self._drop_reason = reason
            self._term = None
            if self._leader == self.replica:
                self._leader = None
            self._cond.notify_all()

    def _seen(self, holder: str, token: int) -> None:
        self._leader = holder
        if token != self._seen_token:
            self._seen_token = token
            self._on_leader_seen(holder, token)

    def _connection(self) -> Any:
        if self._conn is None or getattr(self._conn, "closed", False):
            self._conn = self._connect()
        return self._conn

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass


def _values(row: Any) -> tuple:
    """A row as a tuple, whatever row factory the connection uses."""
    if isinstance(row, dict):
        return tuple(row.values())
    return tuple(row)


def connect_postgres(conninfo: str, ttl_s: float, **kwargs: Any) -> Callable[[], Any]:
    """A `connect()` for the lease's dedicated connection: autocommit, and every wait bounded well
    inside one renewal period (connecting, each statement, and a silent network via TCP keepalives)."""
    import psycopg

    period_s = max(1.0, ttl_s / 3)

    def connect() -> Any:
        return psycopg.connect(
            conninfo, autocommit=True, connect_timeout=max(1, int(period_s)),
            options=f"-c statement_timeout={int(period_s * 1000)}",
            keepalives=1, keepalives_idle=max(1, int(period_s / 2)), keepalives_interval=1,
            keepalives_count=3, tcp_user_timeout=int(period_s * 1000), **kwargs)

    return connect
