"""Who does the leader's work in this process: the daemon's one view of high availability.

On SQLite the daemon is the only one on its file (`SoleLeader`, holding the lock
file) and always leads. On PostgreSQL (`LeaseLeadership`) it leads while it holds
the lease: it then runs cycles, the weekly report and deliveries, and it steps down
(stopping all three) as soon as its term ends. Both publish the same metrics and
log lines, so dashboards and the self-alert read the same way for either backend.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Callable, Protocol

from monitor.ha.lease import LeaderChange, LeaderLease, connect_postgres
from monitor.ha.single_instance import InstanceLock

if TYPE_CHECKING:
    from pathlib import Path

    from monitor.config import Config
    from monitor.outputs.metrics import DaemonMetrics
    from monitor.outputs.outbox import Delivery
    from monitor.outputs.results import SendResult
    from monitor.outputs.worker import Destination
    from monitor.store import Store

log = logging.getLogger(__name__)


def replica_name(configured: str) -> str:
    """`state.replica`, or `<hostname>-<pid>` (unique per process, readable in logs)."""
    return configured or f"{socket.gethostname()}-{os.getpid()}"


class Leadership(Protocol):
    replica: str

    def start(self, on_elected: Callable[[], None], on_deposed: Callable[[], None]) -> None:
        """Begin; `on_elected` starts the leader's work and `on_deposed` stops it (returning once it has)."""

    def is_leader(self) -> bool: ...

    def standby_reason(self) -> str | None:
        """None while leading; else why this replica is standing by (for /readyz and logs)."""

    def stop(self) -> None:
        """Hand leadership back (after the caller stopped the leader's work)."""


class SoleLeader:
    """SQLite: one daemon per state file, refused at start (one line naming the holder's PID)."""

    def __init__(self, state_path: "str | Path", metrics: "DaemonMetrics", replica: str = "",
                 lock: InstanceLock | None = None):
        self.replica = replica_name(replica)
        self._lock = lock if lock is not None else InstanceLock(state_path)
        self._metrics = metrics

    def start(self, on_elected: Callable[[], None], on_deposed: Callable[[], None]) -> None:
        """Take the state file's lock (SingleInstanceError naming the holder's PID if another daemon has it)."""
        self._lock.acquire()
        self._metrics.leader.set(1)
        on_elected()

    def is_leader(self) -> bool:
        return True

    def standby_reason(self) -> str | None:
        return None

    def stop(self) -> None:
        self._metrics.leader.set(0)
        self._lock.release()


class LeaseLeadership:
    """PostgreSQL: the leader lease (monitor.ha.lease), its fence installed on the store."""

    def __init__(self, config: "Config", store: "Store", metrics: "DaemonMetrics", password: str | None = None,
                 poll_s: float | None = None):
        self.replica = replica_name(config.state.replica)
        self.ttl_s = config.state.lease_ttl.total_seconds()
        kwargs = {"application_name": f"monitor-lease:{self.replica}"[:63]}
        if password is not None:
            kwargs["password"] = password
        self._metrics = metrics
        self._seen_token: int | None = None
        self._on_elected: Callable[[], None] = lambda: None
        self._on_deposed: Callable[[], None] = lambda: None
        self._since = time.monotonic()
        self.lease = LeaderLease(connect_postgres(config.state.url, self.ttl_s, **kwargs), self.replica, self.ttl_s,
                                 poll_s=poll_s, on_change=self._changed, on_leader_seen=self._seen)
        store.set_fence(self.lease.check)

    def start(self, on_elected: Callable[[], None], on_deposed: Callable[[], None]) -> None:
        self._on_elected, self._on_deposed = on_elected, on_deposed
        self._metrics.leader.set(0)
        log.info("replica %s: standing by until it holds the leader lease (TTL %.0fs)", self.replica, self.ttl_s)
        self.lease.start()

    def is_leader(self) -> bool:
        return self.lease.is_leader()

    def standby_reason(self) -> str | None:
        if self.lease.is_leader():
            return None
        if self.lease.last_error:
            return f"standby: cannot read the leader lease ({self.lease.last_error})"
        leader = self.lease.leader
        return f"standby: leader is {leader}" if leader else "standby: no leader yet"

    def stop(self) -> None:
        self.lease.stop(release=True)

    def _changed(self, change: LeaderChange) -> None:
        if change.leading:
            self._metrics.leader.set(1)
            log.info("replica %s is now the leader (term %d)", self.replica, change.token)
            self._on_elected()
        else:
            self._metrics.leader.set(0)
            log.warning("replica %s stepped down (%s): cycles and deliveries stop here", self.replica,
                        change.reason)
            self._on_deposed()

    def _seen(self, holder: str | None, token: int) -> None:
        """A term this replica has not seen before: count it (not the first one found at start)."""
        if self._seen_token is not None:
            self._metrics.leader_changes.inc()
        self._seen_token = token
        if holder != self.replica:
            log.info("leader is %s (term %d); replica %s stands by", holder, token, self.replica)


class LeaderOnlyDestination:
    """A destination that asks once more, just before the request leaves, whether this replica leads.

    The fence already rejects the attempt a deposed replica would record before sending; this
    covers a replica stopped (SIGSTOP) between recording the attempt and sending it: on waking
    it finds its term over by its own clock and sends nothing (the new leader sends the delivery,
    with the same idempotency key)."""

    def __init__(self, destination: "Destination", is_leader: Callable[[], bool]):
        self.name = destination.name
        self._destination = destination
        self._is_leader = is_leader

    def send(self, delivery: "Delivery") -> "SendResult":
        from monitor.outputs.results import SendOutcome, SendResult

        if not self._is_leader():
            return SendResult(SendOutcome.FAILED, error="not sent: this replica's leader term ended")
        return self._destination.send(delivery)


def leader_only(destinations: "dict[str, Destination]", leadership: Leadership) -> "dict[str, Destination]":
    """Every destination guarded by `leadership` (unchanged for a sole daemon, which always leads)."""
    if isinstance(leadership, SoleLeader):
        return dict(destinations)
    return {name: LeaderOnlyDestination(destination, leadership.is_leader)
            for name, destination in destinations.items()}
