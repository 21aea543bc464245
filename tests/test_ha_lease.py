"""The leader lease on a real PostgreSQL: one leader, fencing tokens, and the fence in write transactions.

Every lease here talks to the session's private cluster (tests/postgres_server.py)
through its own connection, as replicas in separate processes would; what a
replica's own clock believes is separated from what the database decides by giving
a lease a monotonic clock the test controls.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from monitor.ha.lease import FencedOut, LeaderLease, connect_postgres, unfenced
from monitor.store import MIGRATIONS

TTL_S = 2.0


@pytest.fixture
def db(postgres_url) -> str:
    """A database with the lease table, made by its migration's own SQL."""
    (sql,) = [sql for version, sql in MIGRATIONS if version == 9]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for statement in filter(str.strip, sql.split(";")):
            conn.execute(statement)
        conn.execute("CREATE TABLE guarded (value TEXT)")
    return postgres_url


class FrozenClock:
    """A replica's monotonic clock that stands still unless the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lease(db: str, replica: str, **kwargs) -> LeaderLease:
    return LeaderLease(connect_postgres(db, TTL_S), replica, TTL_S, **kwargs)


def guarded_write(db: str, fence: LeaderLease, value: str) -> None:
    """One write transaction with the fence checked first, as the store runs it."""
    with psycopg.connect(db) as conn:
        with conn.transaction():
            fence.check(conn)
            conn.execute("INSERT INTO guarded (value) VALUES (%s)", (value,))


def written(db: str) -> list[str]:
    with psycopg.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT value FROM guarded ORDER BY value")]


def lease_row(db: str) -> tuple:
    with psycopg.connect(db) as conn:
        return conn.execute("SELECT holder, token FROM leader_lease").fetchone()


def test_the_first_replica_to_ask_leads_and_the_other_sees_it_as_leader(db):
    a, b = lease(db, "a"), lease(db, "b")
    assert a.step() is True
    assert b.step() is False
    assert (a.token, b.token) == (1, None)
    assert b.leader == "a" and a.leader == "a"
    assert lease_row(db) == ("a", 1)
    # Renewing keeps the term: the token only moves on a change of holder.
    assert a.step() is True and a.token == 1


def test_replicas_asking_at_the_same_instant_elect_exactly_one(db):
    replicas = [lease(db, f"r{i}") for i in range(8)]
    for replica in replicas:
        replica._connection()  # connected first, so the race is the UPDATE itself
    start = threading.Barrier(len(replicas))
    won: list[str] = []

    def ask(replica: LeaderLease) -> None:
        start.wait()
        if replica.step():
            won.append(replica.replica)

    threads = [threading.Thread(target=ask, args=(r,)) for r in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(won) == 1
    assert lease_row(db) == (won[0], 1)
    assert {r.leader for r in replicas if r.replica not in won} <= {won[0], None}


def test_only_the_leader_writes_through_the_fence(db):
    a, b = lease(db, "a"), lease(db, "b")
    a.step(), b.step()
    guarded_write(db, a, "from a")
    with pytest.raises(FencedOut, match="replica b does not hold the leader lease"):
        guarded_write(db, b, "from b")
    assert written(db) == ["from a"]


def test_an_operators_write_passes_the_fence_on_a_standby(db):
    a, b = lease(db, "a"), lease(db, "b")
    a.step(), b.step()
    with unfenced():
        guarded_write(db, b, "silence from b")
    assert written(db) == ["silence from b"]


def test_a_deposed_leader_that_still_believes_it_leads_is_rejected_by_the_database(db):
    """Its own clock stood still (as if paused); the database's did not: the token decides."""
    frozen = FrozenClock()
    a, b = lease(db, "a", monotonic=frozen), lease(db, "b")
    assert a.step() and a.is_leader()
    time.sleep(TTL_S + 0.2)
    assert b.step() is True and b.token == 2
    assert a.is_leader(), "a's own clock says its term still holds"
    with pytest.raises(FencedOut, match="passed to another term"):
        guarded_write(db, a, "late write from a")
    guarded_write(db, b, "from b")
    assert written(db) == ["from b"]
    # And a cannot renew b's term: it finds out and steps down.
    assert a.step() is False and a.token is None


def test_an_expired_lease_rejects_its_holders_writes_even_before_anyone_takes_over(db):
    frozen = FrozenClock()
    a = lease(db, "a", monotonic=frozen)
    a.step()
    time.sleep(TTL_S + 0.2)
    with pytest.raises(FencedOut):
        guarded_write(db, a, "after expiry")
    assert written(db) == []


def test_a_takeover_waits_for_the_write_in_flight_to_commit(db):
    """The fence's share lock: a write that passed it lands inside the old term, never after the new one began."""
    frozen = FrozenClock()
    a, b = lease(db, "a", monotonic=frozen), lease(db, "b")
    a.step()
    acquired_at = time.monotonic()
    order: list[str] = []

    def take_over() -> None:
        deadline = time.monotonic() + 4 * TTL_S
        while not b.step():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        order.append("b took it")

    time.sleep(TTL_S - 0.5)
    with psycopg.connect(db) as conn:
        with conn.transaction():
            a.check(conn)
            taker = threading.Thread(target=take_over)
            taker.start()
            time.sleep(acquired_at + TTL_S + 0.4 - time.monotonic())  # the lease expires meanwhile
            conn.execute("INSERT INTO guarded (value) VALUES ('in flight')")
            order.append("a committed")
        taker.join(10)
    assert order == ["a committed", "b took it"]
    assert written(db) == ["in flight"]


def test_the_leaders_own_writes_in_flight_do_not_hold_up_its_renewal(db):
    a = lease(db, "a")
    a.step()
    with psycopg.connect(db) as conn:
        with conn.transaction():
            a.check(conn)
            started = time.monotonic()
            assert a.step() is True  # renewing while the write holds the fence's lock
            renewed_in_s = time.monotonic() - started
            conn.execute("INSERT INTO guarded (value) VALUES ('during the renewal')")
    assert renewed_in_s < 0.5 and a.token == 1
    assert written(db) == ["during the renewal"]


def test_a_writer_stopped_inside_its_transaction_cannot_hold_up_the_takeover_beyond_one_ttl(db):
    frozen = FrozenClock()
    a, b = lease(db, "a", monotonic=frozen), lease(db, "b")
    a.step()
    conn = psycopg.connect(db)
    a.check(conn)  # then the writer stops: its transaction sits idle, holding the share lock
    started = time.monotonic()
    deadline = started + 3 * TTL_S
    while not b.step():
        assert time.monotonic() < deadline, "the stopped writer's lock held the lease"
        time.sleep(0.1)
    took_s = time.monotonic() - started
    print(f"takeover past a stopped writer after {took_s:.2f}s (TTL {TTL_S}s)")
    assert took_s < 2 * TTL_S + 1
    with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):  # the server ended its session
        conn.execute("INSERT INTO guarded (value) VALUES ('too late')")
        conn.execute("COMMIT")
    conn.close()
    assert written(db) == []


def test_two_replicas_with_the_same_name_still_have_one_leader(db):
    first, second = lease(db, "monitor"), lease(db, "monitor")
    assert first.step() is True
    assert second.step() is False
    guarded_write(db, first, "first")
    with pytest.raises(FencedOut):
        guarded_write(db, second, "second")


def test_a_released_lease_is_taken_at_once(db):
    a, b = lease(db, "a"), lease(db, "b")
    a.step()
    assert b.step() is False
    a.release()
    assert a.is_leader() is False
    assert b.step() is True and b.token == 2


def test_the_leader_renews_on_its_thread_and_steps_down_when_it_cannot_reach_the_database(db):
    """Renewals keep the term across several TTLs; once the database is out of reach, the term ends
    by the replica's own clock within one TTL of the last renewal, and the other replica takes over."""
    changes: list[tuple[float, bool, str]] = []
    reachable = threading.Event()
    reachable.set()
    real_connect = connect_postgres(db, TTL_S, application_name="lease-a")

    def connect():
        if not reachable.is_set():
            raise psycopg.OperationalError("connection refused (test: network cut)")
        return real_connect()

    a = LeaderLease(connect, "a", TTL_S,
                    on_change=lambda c: changes.append((time.monotonic(), c.leading, c.reason))).start()
    b = lease(db, "b")
    try:
        deadline = time.monotonic() + 5
        while not changes:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(2.5 * TTL_S)
        assert a.is_leader() and a.token == 1 and b.step() is False
        assert [leading for _, leading, _ in changes] == [True]

        reachable.clear()
        with psycopg.connect(db, autocommit=True) as admin:  # the network cut: its session dies too
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name = 'lease-a'")
        cut_at = time.monotonic()
        deadline = cut_at + 2 * TTL_S
        while len(changes) < 2:
            assert time.monotonic() < deadline, "a never stepped down"
            time.sleep(0.05)
        stepped_down_after_s = changes[1][0] - cut_at
        print(f"leader stepped down {stepped_down_after_s:.2f}s after losing the database (TTL {TTL_S}s)")
        assert changes[1][1] is False and stepped_down_after_s <= TTL_S + 0.5
        assert not a.is_leader()
        with pytest.raises(FencedOut):
            guarded_write(db, a, "after step-down")
        deadline = time.monotonic() + 2 * TTL_S
        while not b.step():
            assert time.monotonic() < deadline, "b never took over"
            time.sleep(0.1)
        assert b.token == 2
    finally:
        a.stop(release=False)
