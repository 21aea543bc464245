"""Bounded state: history older than `state.retention` leaves the state file a batch at a time.

Each cycle deletes at most `PRUNE_BATCH_ROWS` rows per table (finished deliveries,
then notifications, alert transitions and cycles, children before the parents they
reference), by indexed time, in short transactions: a backlog (an upgrade from a
version without retention) drains at a few hundred rows a minute without ever
holding the write lock for long, and at steady state each cycle deletes about what
it added. What the weekly report, an open alert or a queued delivery still needs is
never deleted (`AlertRepository.prune`, `Outbox.prune` say exactly what).

The horizon is rounded down to a UTC midnight, so whole days are kept: with the
default 35d, a weekly report written on a Monday still finds every cycle of the
week that began five Mondays ago (its week plus four weeks of trend).

The pages freed are reused by new rows, so the file stops growing at about one
retention window of history. Files created by this version use
`auto_vacuum=INCREMENTAL`, and when more than a quarter of such a file is free
(after a large backlog was pruned) a bounded number of pages is handed back to the
file system per cycle. Files created before keep their size (SQLite can only
switch them with a full VACUUM, which we never run behind the user's back) and
reuse their free pages instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

from monitor.alerting.repository import AlertRepository, PrunedHistory
from monitor.outputs.outbox import Outbox
from monitor.store import StateError, StateStore
from monitor.timeutil import utc

log = logging.getLogger(__name__)

PRUNE_BATCH_ROWS = 500
# Pages handed back per cycle once over a quarter of the file is free (4 MiB of 4 KiB pages).
RELEASE_PAGES_PER_CYCLE = 1024


@dataclass(frozen=True)
class PruneReport:
    deliveries: int
    history: PrunedHistory
    free_pages: int

    @property
    def rows(self) -> int:
        h = self.history
        return self.deliveries + h.transitions + h.notifications + h.cycles


def horizon(now: datetime, retention: timedelta) -> datetime:
    """What is older than this may go: `now - retention`, rounded down to its UTC midnight."""
    return datetime.combine(utc(now - retention).date(), time(0), tzinfo=timezone.utc)


def prune_history(store: StateStore, *, evaluated_at: datetime, wall_now: datetime, retention: timedelta,
                  batch: int = PRUNE_BATCH_ROWS) -> PruneReport | None:
    """One bounded pruning pass; alert history is aged on the evaluation clock, deliveries on the wall
    clock (the outbox's). A failure is logged and retried next cycle: pruning must never fail a cycle
    whose outcome is already saved. Returns None then."""
    try:
        deliveries = Outbox(store).prune(horizon(wall_now, retention).timestamp(), batch)
        history = AlertRepository(store).prune(horizon(evaluated_at, retention), batch)
        free_pages = store.release_free_pages(RELEASE_PAGES_PER_CYCLE, keep_share=0.25)
    except StateError as exc:
        log.warning("pruning state older than %s failed, retried next cycle: %s", retention, exc)
        return None
    except Exception:  # noqa: BLE001 - a bug here must not fail a cycle that is already saved
        log.exception("pruning state older than %s failed, retried next cycle", retention)
        return None
    report = PruneReport(deliveries, history, free_pages)
    if report.rows:
        log.debug("pruned %d deliveries, %d transitions, %d notifications, %d cycles older than %s",
                  deliveries, history.transitions, history.notifications, history.cycles, retention)
    return report
