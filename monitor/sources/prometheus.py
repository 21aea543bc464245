"""Prometheus HTTP API source and the one query engine every producer goes through.

Works against any Prometheus-compatible API (Prometheus, VictoriaMetrics, Thanos,
Mimir). `instant` and `range` make one query; `run` is the engine: a batch of
instant and range queries (`InstantQuery`, `RangeQuery`) is folded into few HTTP
queries (monitor/sources/folding.py: tagged `or`, and one query per figure across
models for `Family` members), chunked so no query reads more than a sample budget,
run concurrently (bounded), and split back so each query gets its own answer or
its own `QueryError`. The failure policy is written here once:

- a fold that fails because of one of its queries (a 4xx, `bad_data`) is retried
  query by query, so the error lands on the query that caused it alone;
- a fold that fails because of the server (down, timeout, 5xx, an answer that is
  not the API's shape) gives each of its queries that same error, under its own text;
- inside `fail_fast()`, once the server is found down or too slow, the rest of the
  cycle's queries are not sent and fail at once.

Every answer is checked against the API's documented shape; anything else is a
`QueryError` naming the query and what was wrong. A body over `max_response_bytes`
is refused while streaming, and every request has a total deadline (`timeout`),
not only a per-read one. Each query asks for `stats=all`; where the server supports
it, the samples it read (`totalQueryableSamples`) are added to `stats.samples`.

"No data" is explicit: an empty vector, a missing series and a NaN sample all come
back as `value=None`, never 0.
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
import math
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Iterator, Mapping, Union

import numpy as np
import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.retry import Retry

from monitor.config import PrometheusConfig
from monitor.errors import MonitorError
from monitor.secrets import read_secret
from monitor.sources.folding import (TAG_LABEL, Family, Merge, escape_label_value, lookback_seconds, plan_merges,
                                     shape, tagged_fold)
from monitor.timeutil import utc, utc_now

class QueryError(MonitorError):
    """A query failed; carries the query, the server's error type and message."""

    def __init__(self, query: str, message: str, error_type: str | None = None, status: int | None = None):
        self.query = query
        self.message = message
        self.error_type = error_type
        self.status = status
        kind = f"{error_type}: " if error_type else ""
        super().__init__(f"query failed ({kind}{message}): {query}")

    @property
    def server_fault(self) -> bool:
        """True when the server, not the query, is at fault: down, too slow, or a 5xx.

        A server fault freezes every alert (the cycle fails, nothing changes state);
        a query fault (4xx `bad_data`: a typo in one SLO, rule or model) puts only
        the definition that owns the query into an error state.
        """
        if self.status is not None and 400 <= self.status < 500:
            return False
        return self.error_type not in ("bad_data", "not_acceptable")


class PrometheusUnavailable(QueryError):
    """The server could not be reached (connection refused, DNS, TLS)."""

    @property
    def server_fault(self) -> bool:
        return True


class QueryTimeout(QueryError):
    """The server did not answer within the timeout."""

    @property
    def server_fault(self) -> bool:
        return True


class UnexpectedResponse(QueryError):
    """The server answered something that is not the API's shape (HTML, truncated JSON, wrong types,
    a body over the size bound): the server's fault, whatever the HTTP status."""

    @property
    def server_fault(self) -> bool:
        return True


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector; `value` is None for NaN (no data)."""

    labels: Mapping[str, str]
    value: float | None


@dataclass(frozen=True)
class InstantResult:
    query: str
    at: datetime
    samples: list[Sample]
    warnings: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """False when the server warned that the answer may be partial."""
        return not self.warnings

    @property
    def is_empty(self) -> bool:
        """True when there is no data at all: no series, or only NaN samples."""
        return all(s.value is None for s in self.samples)

    def scalar(self) -> float | None:
        """The single value of a one-series result; None for no data. Several series is an error."""
        values = [s for s in self.samples if s.value is not None]
        if not values:
            return None
        if len(values) > 1:
            raise QueryError(self.query, f"expected one series, got {len(values)}")
        return values[0].value

    def by_labels(self, *keys: str) -> dict[tuple[str, ...], float | None]:
        """Values keyed by the given label values (missing labels as "")."""
        return {tuple(s.labels.get(k, "") for k in keys): s.value for s in self.samples}


@dataclass(frozen=True)
class RangeSeries:
    labels: Mapping[str, str]
    timestamps: np.ndarray  # unix seconds, float64
    values: np.ndarray      # float64; NaN where the server returned NaN


@dataclass(frozen=True)
class RangeResult:
    query: str
    start: datetime
    end: datetime
    step: timedelta
    series: list[RangeSeries]
    warnings: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.warnings

    @property
    def is_empty(self) -> bool:
        return all(np.isnan(s.values).all() for s in self.series)


def label_matcher(name: str, value: str, op: str = "=") -> str:
    """`name="value"` with the value escaped, for building selectors from label values."""
    return f'{name}{op}"{escape_label_value(value)}"'


@dataclass
class QueryStats:
    """Counts of HTTP queries made and samples they read, for benchmarks and the daemon's /metrics."""

    queries: int = 0
    errors: int = 0
    # Queries not sent because an earlier one of the same cycle found the server
    # down or too slow (counted in `errors` too: they went unanswered).
    skipped: int = 0
    # Errors that were the query's fault (4xx: `QueryError.server_fault` False), also
    # counted in `errors`: a cycle fails on the others, and isolates these.
    query_faults: int = 0
    # Samples the server read (`stats=all`'s totalQueryableSamples), summed over
    # the queries that reported them, and the most any one query read.
    samples: int = 0
    max_query_samples: int = 0
    # Folds a query fault made the engine retry one query at a time (not errors themselves).
    retried_folds: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, error: bool = False, samples: int | None = None) -> None:
        for stats in (self, *_tallies.get()):
            with stats._lock:
                stats.queries += 1
                stats.errors += int(error)
                if samples is not None:
                    stats.samples += samples
                    stats.max_query_samples = max(stats.max_query_samples, samples)

    @staticmethod
    @contextmanager
    def tally() -> Iterator["QueryStats"]:
        """Within this block, the HTTP queries made (and samples read) in this context are also
        counted in the QueryStats it yields: one producer's share while producers run side by
        side on one source. The engine's own threads work in the context of their caller."""
        share = QueryStats()
        token = _tallies.set((*_tallies.get(), share))
        try:
            yield share
        finally:
            _tallies.reset(token)

    def count_query_fault(self) -> None:
        with self._lock:
            self.query_faults += 1

    def count_skipped(self) -> None:
        with self._lock:
            self.errors += 1
            self.skipped += 1

    def count_retried(self) -> None:
        """A fold refused for one of its queries, retried query by query: the retries count, not it."""
        with self._lock:
            self.errors -= 1
            self.query_faults -= 1  # only a query fault is retried; the faulty part counts again alone
            self.retried_folds += 1

    def count_bad_answer(self) -> None:
        """An answered query whose answer could not be used (a wrong shape or result type)."""
        with self._lock:
            self.errors += 1


_tallies: contextvars.ContextVar[tuple[QueryStats, ...]] = contextvars.ContextVar("monitor_query_tallies",
                                                                                default=())


@dataclass(frozen=True)
class InstantQuery:
    """`query` evaluated at `at`. With a `family`, `query` is the family member's own text
    (`InstantQuery.member`) and the engine may answer it from one query across members."""

    query: str
    at: datetime
    family: Family | None = None

    @classmethod
    def member(cls, family: Family, at: datetime) -> "InstantQuery":
        return cls(family.query, utc(at), family)


@dataclass(frozen=True)
class RangeQuery:
    """`query` evaluated every `step` from `start` to `end` (see `InstantQuery` for `family`)."""

    query: str
    start: datetime
    end: datetime
    step: timedelta
    family: Family | None = None

    @classmethod
    def member(cls, family: Family, start: datetime, end: datetime, step: timedelta) -> "RangeQuery":
        return cls(family.query, utc(start), utc(end), step, family)


Query = Union[InstantQuery, RangeQuery]
Answer = Union[InstantResult, RangeResult, QueryError]

# Sub-queries folded into one tagged `or` query at most (the sample budget may cut a fold shorter).
DEFAULT_FOLD = 200
# The most samples one query is planned to read. Prometheus' default query.max-samples
# is 50M (samples in memory at once); shared servers set far less, and load follows
# samples read. Folds are planned on learned per-shape figures, and members of one
# shape differ somewhat (one service has more series than another), so the budget
# is half the 1M that no query may exceed.
DEFAULT_SAMPLE_BUDGET = 500_000
# Samples a sub-query of unknown shape is assumed to read per second of its longest
# range, until the server's stats say (from the first answer on): one series scraped
# every minute.
ASSUMED_SAMPLES_PER_SECOND = 1 / 60
# A shape not yet learned is probed (one query of it sent first, alone) when one series
# scraped every 15 s would read more than this share of the sample budget.
PROBE_SHARE = 0.01
DEFAULT_MAX_RESPONSE_BYTES = 64 * 2 ** 20
_READ_CHUNK = 64 * 1024


@dataclass
class _Unit:
    """One HTTP query of a batch: its text and the batch queries it answers."""

    text: str
    members: list[Query]
    split: Callable[[InstantResult | RangeResult], dict[Query, InstantResult | RangeResult]]
    # Learned samples per member are keyed by these, one per member (a merge: per label value),
    # with the estimates the fold was planned on.
    shapes: list[str]
    estimates: list[float]
    # What the server said the query read (`stats=all`), once answered.
    samples: int | None = None
    # The units a tagged fold joins (empty for a query or a merge of its own).
    parts: list["_Unit"] = field(default_factory=list)

    def retry_units(self, single: Callable[[Query], "_Unit"]) -> list["_Unit"]:
        """What to send instead when this unit was refused for one of its queries (none: it is one query)."""
        if self.parts:
            return self.parts
        return [single(q) for q in self.members] if len(self.members) > 1 else []


class _Deadline:
    """One request's total deadline: when it passes, the socket in use is shut down, which
    ends a blocked read at once (a server dripping bytes cannot hold the query)."""

    def __init__(self) -> None:
        self.socket: socket.socket | None = None
        self.expired = False
        self._lock = threading.Lock()

    def watch(self, sock: socket.socket | None) -> None:
        with self._lock:
            self.socket = sock
            expired = self.expired
        if expired:
            self.expire()

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            sock = self.socket
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


_current = threading.local()


def _watch(sock: socket.socket | None) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None and sock is not None:
        deadline.watch(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _watch(self.sock)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _watch(self.sock)


# A reused keep-alive connection is already connected: its socket is watched when the
# request starts; a new one when it connects. (http.client drops `conn.sock` once the
# response owns the socket, so the socket itself is kept.)
class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection

    def _make_request(self, conn, *args, **kwargs):  # type: ignore[no-untyped-def]
        _watch(conn.sock)
        return super()._make_request(conn, *args, **kwargs)


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection

    def _make_request(self, conn, *args, **kwargs):  # type: ignore[no-untyped-def]
        _watch(conn.sock)
        return super()._make_request(conn, *args, **kwargs)


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter whose connections the request's `_Deadline` can shut down."""

    _pools = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}

    def init_poolmanager(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(self._pools)

    def proxy_manager_for(self, proxy, **proxy_kwargs):  # type: ignore[no-untyped-def]
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(self._pools)
        return manager


class PrometheusSource:
    """A Prometheus-compatible HTTP API, queried with a total deadline and bounded concurrency."""

    def __init__(self, url: str, timeout: float = 30.0, headers: Mapping[str, str] | None = None,
                 max_concurrency: int = 8, retries: int = 2, *,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
                 sample_budget: int = DEFAULT_SAMPLE_BUDGET):
        self.url = url.rstrip("/")
        self.timeout = float(timeout)
        self.max_concurrency = max(1, int(max_concurrency))
        self.max_response_bytes = int(max_response_bytes)
        self.sample_budget = int(sample_budget)
        self.stats = QueryStats()
        self._session = requests.Session()
        # Retries cover connection hiccups and gateway errors; queries are idempotent,
        # so POST is safe to retry. A stopped server still fails fast (refused).
        retry = Retry(total=retries, connect=retries, read=0, backoff_factor=0.1,
                      status_forcelist=(502, 503, 504), allowed_methods=frozenset({"GET", "POST"}),
                      raise_on_status=False)
        adapter = _WatchedAdapter(max_retries=retry, pool_maxsize=self.max_concurrency)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update(dict(headers or {}))
        # At most max_concurrency requests in flight from this source, whichever threads send
        # them: the cycle's producers run side by side, each batch with its own threads.
        self._in_flight = threading.BoundedSemaphore(self.max_concurrency)
        # Set inside `fail_fast()`: the first "server down / too slow" error, after which
        # the rest of that cycle's queries fail at once instead of each waiting out
        # the timeout (a cycle that fails changes nothing anyway).
        self._fail_fast = False
        self._tripped: QueryError | None = None
        # Samples per folded sub-query, learned from the server's stats, by query shape.
        self._samples_per_member: dict[str, float] = {}

    @classmethod
    def from_config(cls, config: PrometheusConfig, url: str | None = None) -> "PrometheusSource":
        headers = dict(config.headers)
        if config.bearer_token_env or config.bearer_token_file:
            token = read_secret(config.bearer_token_env, config.bearer_token_file, "bearer_token")
            headers["Authorization"] = f"Bearer {token}"
        return cls(url or config.url, timeout=config.timeout.total_seconds(), headers=headers,
                   max_concurrency=config.max_concurrency)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "PrometheusSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def is_ready(self) -> bool:
        """True when the server answers its API (used by health checks and fixtures)."""
        try:
            return self._session.get(f"{self.url}/", timeout=self.timeout).ok
        except requests.RequestException:
            return False

    @contextmanager
    def fail_fast(self) -> Iterator["PrometheusSource"]:
        """Within this block, once the server is unreachable or times out, skip the remaining queries."""
        self._fail_fast, self._tripped = True, None
        try:
            yield self
        finally:
            self._fail_fast, self._tripped = False, None

    # -- one query -------------------------------------------------------------

    def instant(self, query: str, at: datetime | None = None) -> InstantResult:
        """Evaluate `query` at `at` (default now); raises QueryError."""
        at = utc(at or utc_now())
        data, warnings, _ = self._call("query", query, {"query": query, "time": f"{at.timestamp():.3f}"})
        with self._counting_bad_answers():
            return _instant_result(query, at, data, warnings)

    def range(self, query: str, start: datetime, end: datetime, step: timedelta) -> RangeResult:
        """Evaluate `query` at every `step` from `start` to `end`; raises QueryError."""
        start, end = utc(start), utc(end)
        data, warnings, _ = self._call("query_range", query, _range_params(query, start, end, step))
        with self._counting_bad_answers():
            return _range_result(query, start, end, step, data, warnings)

    @contextmanager
    def _counting_bad_answers(self) -> Iterator[None]:
        try:
            yield
        except QueryError:
            self.stats.count_bad_answer()
            raise

    def check_syntax(self, query: str) -> str | None:
        """The server's parse error for `query`, or None when it parses.

        Evaluated at the Unix epoch, where no data exists, so the check is cheap.
        """
        try:
            self._call("query", query, {"query": query, "time": "0"})
        except PrometheusUnavailable:
            raise
        except QueryError as exc:
            if exc.error_type == "bad_data":
                return exc.message
            raise
        return None

    # -- the engine --------------------------------------------------------------

    def instant_many(self, queries: Iterable[str], at: datetime | None = None, *, fold: int = DEFAULT_FOLD
                     ) -> dict[str, InstantResult | QueryError]:
        """`run` for query strings at one instant: each distinct query's result or its own QueryError.

        Failures come back as values rather than raising, so one bad query does not
        hide the others' results; the caller decides what a failure means.
        """
        at = utc(at or utc_now())
        wanted = {q: InstantQuery(q, at) for q in queries}
        answers = self.run(wanted.values(), fold=fold)
        return {q: answers[key] for q, key in wanted.items()}  # type: ignore[misc]

    def run(self, queries: Iterable[Query], *, fold: int = DEFAULT_FOLD) -> dict[Query, Answer]:
        """Answer a batch of instant and range queries with few HTTP queries.

        Contract (callers rely on it):
        - every distinct query of the batch gets exactly one entry: its result, or
          its own `QueryError` (whose `.query` is that query's text); `run` never
          raises for a query's failure;
        - queries with the same evaluation parameters (instant, or start/end/step)
          are folded: `Family` members differing only in one label's value into one
          query per figure, then those and the other queries joined by tagged `or`,
          up to `fold` parts per query (`fold=1`: no tagged folding); no fold is
          planned to read more than `sample_budget` samples (learned per query
          shape from the server's stats);
        - a fold refused for one of its queries (a query fault) is retried part by
          part, and a merged figure member by member; one that fails by the
          server's fault gives each of its queries the same error;
        - answers equal what each query would get alone (series and values); a
          fold's warnings (partial data) are on each of its queries' answers.
        """
        unique = list(dict.fromkeys(queries))
        # Heavy shapes the engine has not measured yet: one of each goes first, alone,
        # and the rest are cut on what it read (a cold start's first week-long queries
        # would otherwise be planned on a guess of one series each).
        answers = self._send_planned(self._probes(_by_params(unique)))
        pending: list[_Unit] = []
        for group in _by_params([q for q in unique if q not in answers]).values():
            pending += self._plan(group, max(1, fold))
        answers.update(self._send_planned(pending))
        return answers

    def _send_planned(self, pending: list[_Unit]) -> dict[Query, Answer]:
        """Send planned units (retrying refused folds part by part) and learn from what they read."""
        answers: dict[Query, Answer] = {}
        sent: list[_Unit] = []
        while pending:
            retry: list[_Unit] = []
            for unit, outcome in zip(pending, self._send_units(pending)):
                if not isinstance(outcome, QueryError):
                    answers.update(outcome)
                elif not outcome.server_fault and (instead := unit.retry_units(self._single)):
                    retry += instead  # one bad query fails the fold: its parts on their own find which
                    self.stats.count_retried()
                else:
                    answers.update({q: _own_error(outcome, q.query) for q in unit.members})
            sent += pending
            pending = retry
        self._learn(sent)
        return answers

    def _learn(self, units: list[_Unit]) -> None:
        """Samples per member by shape, from this batch's answered folds.

        A fold's samples are shared among its members in proportion to the estimates
        it was planned on; a shape keeps the largest share seen in the batch, so the
        next batch's folds are cut on the heaviest of its kind (and it may shrink again).
        """
        observed: dict[str, float] = {}
        for unit in units:
            if unit.samples is None:
                continue
            planned = sum(unit.estimates)
            for key, estimate in zip(unit.shapes, unit.estimates):
                share = unit.samples * (estimate / planned if planned > 0 else 1 / len(unit.shapes))
                observed[key] = max(observed.get(key, 0.0), share)
        self._samples_per_member.update(observed)

    def _probes(self, groups: Mapping[tuple, list[Query]]) -> list[_Unit]:
        """One unit per heavy shape not yet learned that a batch has several of: a merge's
        first label value, or a single query of that shape."""
        probes: list[_Unit] = []
        probed: set[str] = set()  # one probe per shape, whatever the instant or range
        for group in groups.values():
            by_family = {q.family: q for q in group if q.family is not None}
            merges, _ = plan_merges(by_family) if by_family else ({}, [])
            merged: set[Query] = set()
            for merge, values in merges.items():
                members = {by_family[f]: v for f, v in values.items()}
                merged.update(members)
                first, key = min(members.values()), f"merge|{merge.template}"
                if len(set(members.values())) > 1 and key not in probed and self._unlearned_and_heavy(
                        key, next(iter(members)), merge.query([first])):
                    probed.add(key)
                    probes += self._merge_units(merge, {q: v for q, v in members.items() if v == first})
            by_shape: dict[str, list[Query]] = {}
            for query in group:
                if query not in merged:
                    by_shape.setdefault(shape(query.query), []).append(query)
            for key, same in by_shape.items():
                if len(same) > 1 and key not in probed and self._unlearned_and_heavy(key, same[0]):
                    probed.add(key)
                    probes.append(self._single(same[0]))
        return probes

    def _unlearned_and_heavy(self, key: str, query: Query, text: str | None = None) -> bool:
        # Heavy: one series scraped every 15 s over the query's ranges and steps would read
        # more than PROBE_SHARE of the budget (week-long windows; not 5-minute rates).
        if key in self._samples_per_member:
            return False
        one_series = lookback_seconds(text or query.query) / 15 * _steps(query)
        return one_series > PROBE_SHARE * self.sample_budget

    def _plan(self, group: list[Query], fold: int) -> list[_Unit]:
        """The HTTP queries for queries sharing evaluation parameters: merges and single queries,
        joined by tagged `or` up to `fold` at a time and within the sample budget."""
        by_family = {q.family: q for q in group if q.family is not None}
        merges, _ = plan_merges(by_family) if by_family else ({}, [])
        atoms = []
        for merge, values in merges.items():
            atoms += self._merge_units(merge, {by_family[f]: v for f, v in values.items()})
        merged = {by_family[f] for members in merges.values() for f in members}
        # Queries of one shape together, so a fold's learned samples stay meaningful.
        atoms += [self._single(q) for q in sorted((q for q in group if q not in merged), key=lambda q: shape(q.query))]
        if fold == 1:
            return atoms
        return [self._tagged_unit(chunk)
                for chunk in self._chunks([(a, a.shapes[0] if len(set(a.shapes)) == 1 else "", sum(a.estimates))
                                           for a in atoms], fold)]

    def _estimate(self, query: Query, key: str, text: str | None = None) -> float:
        learned = self._samples_per_member.get(key)
        if learned is not None:
            return learned
        return lookback_seconds(text or query.query) * ASSUMED_SAMPLES_PER_SECOND * _steps(query)

    def _chunks(self, items: list[tuple[Any, str, float]], fold: int) -> list[list[Any]]:
        """Items in chunks of at most `fold` items and the sample budget.

        When everything fits in one chunk there is nothing to cut. Otherwise a chunk
        holds items of one shape only: what it read then tells exactly what one of
        them reads (`_learn`), and the next batch's chunks are cut on that.
        """
        if len(items) <= fold and sum(estimate for _, _, estimate in items) <= self.sample_budget:
            return [[item for item, _, _ in items]] if items else []
        chunks: list[list[Any]] = []
        current: list[Any] = []
        samples, current_key = 0.0, None
        for item, key, estimate in items:
            if current and (len(current) >= fold or samples + estimate > self.sample_budget or key != current_key):
                chunks.append(current)
                current, samples = [], 0.0
            current.append(item)
            samples += estimate
            current_key = key
        if current:
            chunks.append(current)
        return chunks

    def _single(self, query: Query) -> _Unit:
        def split(result: InstantResult | RangeResult) -> dict[Query, InstantResult | RangeResult]:
            return {query: result if result.query == query.query else dataclasses.replace(result, query=query.query)}

        key = shape(query.query)
        return _Unit(query.query, [query], split, [key], [self._estimate(query, key)])

    def _tagged_unit(self, parts: list[_Unit]) -> _Unit:
        """One query answering every part (tagged `or`); a part's share is split its own way."""
        if len(parts) == 1:
            return parts[0]
        text = tagged_fold([part.text for part in parts])

        def split(result: InstantResult | RangeResult) -> dict[Query, InstantResult | RangeResult]:
            answers: dict[Query, InstantResult | RangeResult] = {}
            for i, share in enumerate(_tag_shares(result, len(parts))):
                answers.update(parts[i].split(share))
            return answers

        return _Unit(text, [q for part in parts for q in part.members], split,
                     [k for part in parts for k in part.shapes], [e for part in parts for e in part.estimates],
                     parts=list(parts))

    def _merge_units(self, merge: Merge, values: dict[Query, str]) -> list[_Unit]:
        """One query per chunk of the label's values (chunked by the sample budget)."""
        key = f"merge|{merge.template}"
        by_value: dict[str, list[Query]] = {}
        for query, value in values.items():
            by_value.setdefault(value, []).append(query)
        some = next(iter(values))
        estimate = self._estimate(some, key, merge.query(list(by_value)[:1]))
        units = []
        for chunk in self._chunks([(v, key, estimate) for v in sorted(by_value)], len(by_value)):
            members = [q for v in chunk for q in by_value[v]]
            wanted = {v: by_value[v] for v in chunk}

            def split(result: InstantResult | RangeResult, wanted: dict[str, list[Query]] = wanted
                      ) -> dict[Query, InstantResult | RangeResult]:
                return _split(result, [q for qs in wanted.values() for q in qs],
                              lambda labels: wanted.get(labels.get(merge.label, ""), []),
                              strip=merge.label if merge.strip_label else None)

            # One learned figure per label value: a value's queries read the same series.
            units.append(_Unit(merge.query(chunk), members, split, [key] * len(chunk), [estimate] * len(chunk)))
        return units

    def _send_units(self, units: list[_Unit]) -> list[dict[Query, InstantResult | RangeResult] | QueryError]:
        def send(unit: _Unit) -> dict[Query, InstantResult | RangeResult] | QueryError:
            first = unit.members[0]
            try:
                if isinstance(first, InstantQuery):
                    data, warnings, samples = self._call(
                        "query", unit.text, {"query": unit.text, "time": f"{first.at.timestamp():.3f}"})
                    with self._counting_bad_answers():
                        result: InstantResult | RangeResult = _instant_result(unit.text, first.at, data, warnings)
                else:
                    data, warnings, samples = self._call(
                        "query_range", unit.text, _range_params(unit.text, first.start, first.end, first.step))
                    with self._counting_bad_answers():
                        result = _range_result(unit.text, first.start, first.end, first.step, data, warnings)
                answers = unit.split(result)
            except QueryError as exc:
                return exc
            unit.samples = samples
            return answers

        if len(units) <= 1 or self.max_concurrency == 1:
            return [send(unit) for unit in units]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(units)),
                                thread_name_prefix="promql") as pool:
            # Each in the caller's context (a fresh copy apiece: a context runs in one thread at once).
            sent = [pool.submit(contextvars.copy_context().run, send, unit) for unit in units]
            return [future.result() for future in sent]

    # -- HTTP ----------------------------------------------------------------------

    def _call(self, endpoint: str, query: str, params: dict[str, str]
              ) -> tuple[dict, tuple[str, ...], int | None]:
        # A query waits here for a slot (its deadline starts once it has one), then checks
        # the trip: one queued behind a query that found the server down is not sent either.
        with self._in_flight:
            tripped = self._tripped
            if tripped is not None:
                self.stats.count_skipped()
                raise type(tripped)(query, f"not sent: an earlier query of this cycle failed ({tripped.message})",
                                    tripped.error_type, tripped.status)
            try:
                return self._send(endpoint, query, params)
            except (PrometheusUnavailable, QueryTimeout) as exc:
                if self._fail_fast:
                    self._tripped = exc
                raise
            except QueryError as exc:
                if not exc.server_fault:
                    self.stats.count_query_fault()
                raise

    def _send(self, endpoint: str, query: str, params: dict[str, str]
              ) -> tuple[dict, tuple[str, ...], int | None]:
        try:
            status, body = self._post(endpoint, query, params)
        except QueryError:
            self.stats.count(error=True)
            raise
        try:
            data, warnings, samples = _envelope(query, status, body)
        except QueryError:
            self.stats.count(error=True)
            raise
        self.stats.count(samples=samples)
        return data, warnings, samples

    def _post(self, endpoint: str, query: str, params: dict[str, str]) -> tuple[int, bytes]:
        """(HTTP status, body) within the total deadline and the size bound."""
        # Ask the server to give up just before we do, so it stops working on our behalf;
        # `stats=all` reports the samples read (servers without it ignore the parameter).
        params = {**params, "timeout": f"{self.timeout:g}s", "stats": "all"}
        deadline = _Deadline()
        timer = threading.Timer(self.timeout, deadline.expire)
        timer.daemon = True
        _current.deadline = deadline
        timer.start()
        response = None
        try:
            response = self._session.post(f"{self.url}/api/v1/{endpoint}", data=params, stream=True,
                                          timeout=(self.timeout, self.timeout), allow_redirects=False)
            body = self._read_body(query, response)
            if deadline.expired:  # the shut-down socket read as an early end of the answer
                raise self._timed_out(query)
            return response.status_code, body
        except requests.Timeout:
            raise self._timed_out(query) from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as exc:
            if deadline.expired or "timed out" in str(exc).lower():
                raise self._timed_out(query) from None
            if isinstance(exc, requests.exceptions.ContentDecodingError):
                raise UnexpectedResponse(query, "the response body could not be decoded") from None
            if isinstance(exc, requests.exceptions.ChunkedEncodingError):
                raise UnexpectedResponse(query, f"the response ended early from {self.url}") from None
            reason = "connection refused" if "refused" in str(exc).lower() else "cannot connect"
            raise PrometheusUnavailable(query, f"{reason}: {self.url}") from None
        except (requests.RequestException, UnexpectedResponse) as exc:
            if deadline.expired:
                raise self._timed_out(query) from None
            if isinstance(exc, UnexpectedResponse):
                raise
            raise PrometheusUnavailable(query, f"request failed: {type(exc).__name__}: {self.url}") from None
        finally:
            timer.cancel()
            _current.deadline = None
            if response is not None:
                response.close()

    def _read_body(self, query: str, response: requests.Response) -> bytes:
        limit = self.max_response_bytes
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            raise UnexpectedResponse(query, f"response of {int(length)} bytes is over the "
                                            f"{limit}-byte bound; not read")
        chunks, size = [], 0
        for chunk in response.iter_content(_READ_CHUNK):
            size += len(chunk)
            if size > limit:
                raise UnexpectedResponse(query, f"response is over the {limit}-byte bound; reading stopped")
            chunks.append(chunk)
        return b"".join(chunks)

    def _timed_out(self, query: str) -> QueryTimeout:
        return QueryTimeout(query, f"no answer within {self.timeout:g}s from {self.url}")


# -- the API's shape -----------------------------------------------------------------

def _envelope(query: str, status: int, body: bytes) -> tuple[dict, tuple[str, ...], int | None]:
    """The `data`, `warnings` and samples read of a response; QueryError for errors and wrong shapes."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        hint = "an HTML page" if body.lstrip()[:1] == b"<" else "truncated or not JSON" if body.strip() \
            else "an empty body"
        raise UnexpectedResponse(query, f"HTTP {status}: not a Prometheus API response ({hint})",
                                 status=status) from None
    if not isinstance(document, dict) or document.get("status") not in ("success", "error"):
        raise UnexpectedResponse(query, f"HTTP {status}: not a Prometheus API response "
                                        f"(no \"status\": \"success\" or \"error\")", status=status)
    if status != 200 or document["status"] != "success":
        error_type, message = document.get("errorType"), document.get("error")
        error_type = error_type if isinstance(error_type, str) else None
        message = message if isinstance(message, str) and message else f"HTTP {status}"
        if document["status"] == "success":
            raise UnexpectedResponse(query, f"HTTP {status} with a success body", status=status)
        if error_type == "timeout" or status == 503 and "timeout" in message:
            raise QueryTimeout(query, message, error_type, status)
        raise QueryError(query, message, error_type, status)
    data = document.get("data")
    if not isinstance(data, dict):
        raise UnexpectedResponse(query, "response has no \"data\" object")
    warnings = document.get("warnings") or []
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        raise UnexpectedResponse(query, "response \"warnings\" is not a list of strings")
    return data, tuple(warnings), _samples_read(data)


def _samples_read(data: dict) -> int | None:
    # Optional and informative: a server without stats, or with another shape, reports none.
    stats = data.get("stats")
    samples = stats.get("samples") if isinstance(stats, dict) else None
    total = samples.get("totalQueryableSamples") if isinstance(samples, dict) else None
    return total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None


def _value(query: str, point: object, where: str) -> tuple[float, float | None]:
    """(timestamp, value) of a `[unix seconds, "value"]` pair; NaN is None."""
    if type(point) is list and len(point) == 2:
        timestamp, text = point
        if type(text) is str and type(timestamp) in (int, float):
            try:
                value = float(text)
            except ValueError:
                raise UnexpectedResponse(query, f"{where}: sample value {text[:40]!r} is not a number") from None
            if math.isfinite(timestamp):
                return float(timestamp), None if value != value else value
    # The slow path says what is wrong.
    if not (isinstance(point, list) and len(point) == 2):
        raise UnexpectedResponse(query, f"{where}: a sample is not a [timestamp, \"value\"] pair")
    timestamp, text = point
    if not isinstance(text, str):
        raise UnexpectedResponse(query, f"{where}: sample value {text!r} is not a string")
    raise UnexpectedResponse(query, f"{where}: sample timestamp {timestamp!r} is not a number")


_STRINGS_ONLY = {str}


def _labels(query: str, item: object, where: str) -> dict[str, str]:
    if not isinstance(item, dict):
        raise UnexpectedResponse(query, f"{where}: a series is not an object")
    labels = item.get("metric")
    # JSON object keys are always strings; values must be too.
    if type(labels) is not dict or not set(map(type, labels.values())) <= _STRINGS_ONLY:
        raise UnexpectedResponse(query, f"{where}: a series' \"metric\" is not an object of string labels")
    if "histogram" in item or "histograms" in item:
        raise UnexpectedResponse(query, f"{where}: native histogram samples are not supported")
    return labels


def _result_list(query: str, data: dict) -> tuple[str, object]:
    result_type, result = data.get("resultType"), data.get("result")
    if not isinstance(result_type, str):
        raise UnexpectedResponse(query, "response data has no \"resultType\"")
    if result is None and "result" not in data:
        raise UnexpectedResponse(query, "response data has no \"result\"")
    return result_type, result


def _instant_result(query: str, at: datetime, data: dict, warnings: tuple[str, ...]) -> InstantResult:
    result_type, result = _result_list(query, data)
    if result_type == "vector":
        if not isinstance(result, list):
            raise UnexpectedResponse(query, "a vector \"result\" is not a list")
        samples = []
        for item in result:
            labels = _labels(query, item, "vector")
            samples.append(Sample(labels, _value(query, item.get("value"), "vector")[1]))  # type: ignore[union-attr]
    elif result_type == "scalar":
        samples = [Sample({}, _value(query, result, "scalar")[1])]
    elif result_type in ("matrix", "string"):
        raise QueryError(query, f"expected an instant vector or scalar, got a {result_type}")
    else:
        raise UnexpectedResponse(query, f"unknown resultType {result_type[:40]!r}")
    return InstantResult(query, at, samples, warnings)


def _range_result(query: str, start: datetime, end: datetime, step: timedelta, data: dict,
                  warnings: tuple[str, ...]) -> RangeResult:
    result_type, result = _result_list(query, data)
    if result_type in ("vector", "scalar", "string"):
        raise QueryError(query, f"expected a range vector, got a {result_type}")
    if result_type != "matrix":
        raise UnexpectedResponse(query, f"unknown resultType {result_type[:40]!r}")
    if not isinstance(result, list):
        raise UnexpectedResponse(query, "a matrix \"result\" is not a list")
    series = []
    for item in result:
        labels = _labels(query, item, "matrix")
        points = item.get("values", [])  # type: ignore[union-attr]
        if not isinstance(points, list):
            raise UnexpectedResponse(query, "matrix: a series' \"values\" is not a list")
        pairs = [_value(query, p, "matrix") for p in points]
        timestamps = np.array([t for t, _ in pairs], dtype=np.float64)
        values = np.array([np.nan if v is None else v for _, v in pairs], dtype=np.float64)
        series.append(RangeSeries(labels, timestamps, values))
    return RangeResult(query, start, end, step, series, warnings)


# -- batch helpers ---------------------------------------------------------------------

def _by_params(queries: list[Query]) -> dict[tuple, list[Query]]:
    """Queries grouped by evaluation parameters (only those can share an HTTP query)."""
    groups: dict[tuple, list[Query]] = {}
    for query in queries:
        groups.setdefault(_params_key(query), []).append(query)
    return groups


def _range_params(query: str, start: datetime, end: datetime, step: timedelta) -> dict[str, str]:
    return {"query": query, "start": f"{start.timestamp():.3f}", "end": f"{end.timestamp():.3f}",
            "step": f"{step.total_seconds():g}"}


def _params_key(query: Query) -> tuple:
    if isinstance(query, InstantQuery):
        return ("instant", utc(query.at))
    return ("range", utc(query.start), utc(query.end), query.step)


def _steps(query: Query) -> int:
    if isinstance(query, InstantQuery):
        return 1
    return int((query.end - query.start) / query.step) + 1 if query.step > timedelta(0) else 1


def _own_error(error: QueryError, query: str) -> QueryError:
    """`error` as the given query's own (same type, message and status, that query's text)."""
    if error.query == query:
        return error
    return type(error)(query, error.message, error.error_type, error.status)


def _tag_shares(result: InstantResult | RangeResult, count: int) -> list[InstantResult | RangeResult]:
    """A tagged fold's answer as `count` answers, one per tag (the tag label removed)."""
    shares: list[list] = [[] for _ in range(count)]
    items = result.samples if isinstance(result, InstantResult) else result.series
    for item in items:
        labels = dict(item.labels)
        index = labels.pop(TAG_LABEL, "")
        if index.isdigit() and int(index) < count:
            shares[int(index)].append(Sample(labels, item.value) if isinstance(item, Sample)
                                      else RangeSeries(labels, item.timestamps, item.values))
    if isinstance(result, InstantResult):
        return [InstantResult(result.query, result.at, share, result.warnings) for share in shares]
    return [RangeResult(result.query, result.start, result.end, result.step, share, result.warnings)
            for share in shares]


def _split(result: InstantResult | RangeResult, members: list[Query],
           owners: Callable[[Mapping[str, str]], list[Query]], strip: str | None
           ) -> dict[Query, InstantResult | RangeResult]:
    """Each member's share of a folded answer: the series `owners` gives it, `strip` label removed."""
    parts: dict[Query, list] = {q: [] for q in members}
    items = result.samples if isinstance(result, InstantResult) else result.series
    for item in items:
        labels = dict(item.labels)
        owned = owners(labels)
        if strip is not None:
            labels.pop(strip, None)
        for query in owned:
            if isinstance(item, Sample):
                parts[query].append(Sample(labels, item.value))
            else:
                parts[query].append(RangeSeries(labels, item.timestamps, item.values))
    if isinstance(result, InstantResult):
        return {q: InstantResult(q.query, result.at, parts[q], result.warnings) for q in members}
    return {q: RangeResult(q.query, result.start, result.end, result.step, parts[q], result.warnings)
            for q in members}
