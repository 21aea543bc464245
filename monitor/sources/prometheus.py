"""Prometheus HTTP API source: instant and range queries with typed results and errors.

Works against any Prometheus-compatible API (Prometheus, VictoriaMetrics, Thanos,
Mimir). The transport (session, retries, TLS, proxy, auth) is prometheus-api-client's
`PrometheusConnect`; we read the API's full response envelope ourselves because its
`custom_query` drops `warnings` (partial data must not pass as complete) and folds
the server's `errorType`/`error` into one string.

"No data" is explicit: an empty vector, a missing series and a NaN sample all come
back as `value=None`, never 0.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable, Iterator, Mapping

import numpy as np
import requests
from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry

from monitor.config import PrometheusConfig
from monitor.errors import MonitorError
from monitor.secrets import read_secret


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


def escape_label_value(value: str) -> str:
    """Escape a label value for a double-quoted PromQL string (\\, " and newlines)."""
    return (str(value).replace("\\", "\\\\").replace('"', '\\"')
            .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))


def label_matcher(name: str, value: str, op: str = "=") -> str:
    """`name="value"` with the value escaped, for building selectors from label values."""
    return f'{name}{op}"{escape_label_value(value)}"'


def _to_float(text: str) -> float | None:
    value = float(text)
    return None if math.isnan(value) else value


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


@dataclass
class QueryStats:
    """Counts of HTTP queries made, for benchmarks and the daemon's own /metrics."""

    queries: int = 0
    errors: int = 0
    # Queries not sent because an earlier one of the same cycle found the server
    # down or too slow (counted in `errors` too: they went unanswered).
    skipped: int = 0
    # Errors that were the query's fault (4xx: `QueryError.server_fault` False), also
    # counted in `errors`: a cycle fails on the others, and isolates these.
    query_faults: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, error: bool = False) -> None:
        with self._lock:
            self.queries += 1
            self.errors += int(error)

    def count_query_fault(self) -> None:
        with self._lock:
            self.query_faults += 1

    def count_skipped(self) -> None:
        with self._lock:
            self.errors += 1
            self.skipped += 1


class PrometheusSource:
    """A Prometheus-compatible HTTP API, queried with a timeout and bounded concurrency."""

    def __init__(self, url: str, timeout: float = 30.0, headers: Mapping[str, str] | None = None,
                 max_concurrency: int = 8, retries: int = 2):
        self.url = url.rstrip("/")
        self.timeout = float(timeout)
        self.max_concurrency = max(1, int(max_concurrency))
        self.stats = QueryStats()
        self._session = requests.Session()
        # Retries cover connection hiccups and gateway errors; queries are idempotent,
        # so POST is safe to retry. A stopped server still fails fast (refused).
        retry = Retry(total=retries, connect=retries, read=0, backoff_factor=0.1,
                      status_forcelist=(502, 503, 504), allowed_methods=frozenset({"GET", "POST"}),
                      raise_on_status=False)
        self._client = PrometheusConnect(url=self.url, headers=dict(headers or {}), retry=retry,
                                         session=self._session, timeout=self.timeout, method="POST")
        self._headers = dict(headers or {})
        self._session.headers.update(self._headers)
        # Set inside `fail_fast()`: the first "server down / too slow" error, after which
        # the rest of that cycle's queries fail at once instead of each waiting out
        # the timeout (a cycle that fails changes nothing anyway).
        self._fail_fast = False
        self._tripped: QueryError | None = None

    @classmethod
    def from_config(cls, config: PrometheusConfig, url: str | None = None) -> "PrometheusSource":
        headers = dict(config.headers)
        if config.bearer_token_env or config.bearer_token_file:
            token = read_secret(config.bearer_token_env, config.bearer_token_file, "bearer_token")
            headers["Authorization"] = f"Bearer {token}"
        return cls(url or config.url, timeout=config.timeout.total_seconds(), headers=headers,
                   max_concurrency=config.max_concurrency)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "PrometheusSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def is_ready(self) -> bool:
        """True when the server answers its API (used by health checks and fixtures)."""
        try:
            return bool(self._client.check_prometheus_connection())
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

    # -- queries ---------------------------------------------------------------

    def instant(self, query: str, at: datetime | None = None) -> InstantResult:
        """Evaluate `query` at `at` (default now)."""
        at = _utc(at or datetime.now(timezone.utc))
        data, warnings = self._call("query", query, {"query": query, "time": f"{at.timestamp():.3f}"})
        result_type, result = data["resultType"], data["result"]
        if result_type == "vector":
            samples = [Sample(r["metric"], _to_float(r["value"][1])) for r in result]
        elif result_type == "scalar":
            samples = [Sample({}, _to_float(result[1]))]
        else:
            raise QueryError(query, f"expected an instant vector or scalar, got a {result_type}")
        return InstantResult(query, at, samples, warnings)

    def range(self, query: str, start: datetime, end: datetime, step: timedelta) -> RangeResult:
        """Evaluate `query` at every `step` from `start` to `end`."""
        start, end = _utc(start), _utc(end)
        params = {"query": query, "start": f"{start.timestamp():.3f}", "end": f"{end.timestamp():.3f}",
                  "step": f"{step.total_seconds():g}"}
        data, warnings = self._call("query_range", query, params)
        if data["resultType"] != "matrix":
            raise QueryError(query, f"expected a range vector, got a {data['resultType']}")
        series = []
        for r in data["result"]:
            points = r.get("values", [])
            timestamps = np.array([p[0] for p in points], dtype=np.float64)
            values = np.array([float(p[1]) for p in points], dtype=np.float64)
            series.append(RangeSeries(r["metric"], timestamps, values))
        return RangeResult(query, start, end, step, series, warnings)

    def instant_many(self, queries: Iterable[str], at: datetime | None = None
                     ) -> dict[str, InstantResult | QueryError]:
        """Evaluate many queries at one instant: each distinct query once, concurrently (bounded).

        Failures come back as QueryError values rather than raising, so one bad query
        does not hide the others' results; the caller decides what a failure means.
        """
        at = _utc(at or datetime.now(timezone.utc))
        unique = list(dict.fromkeys(queries))
        results: dict[str, InstantResult | QueryError] = {}

        def run(q: str) -> InstantResult | QueryError:
            try:
                return self.instant(q, at)
            except QueryError as exc:
                return exc

        if len(unique) <= 1 or self.max_concurrency == 1:
            for q in unique:
                results[q] = run(q)
            return results
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(unique)),
                                thread_name_prefix="promql") as pool:
            for q, result in zip(unique, pool.map(run, unique)):
                results[q] = result
        return results

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

    def _call(self, endpoint: str, query: str, params: dict[str, str]) -> tuple[dict, tuple[str, ...]]:
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

    def _send(self, endpoint: str, query: str, params: dict[str, str]) -> tuple[dict, tuple[str, ...]]:
        # Ask the server to give up just before we do, so it stops working on our behalf.
        params = {**params, "timeout": f"{self.timeout:g}s"}
        try:
            response = self._session.post(f"{self.url}/api/v1/{endpoint}", data=params,
                                          timeout=self.timeout + 1.0, allow_redirects=False)
        except requests.Timeout:
            self.stats.count(error=True)
            raise QueryTimeout(query, f"no answer within {self.timeout:g}s from {self.url}") from None
        except requests.ConnectionError as exc:
            self.stats.count(error=True)
            if "timed out" in str(exc).lower():  # a read timeout surfaces wrapped by urllib3's retry
                raise QueryTimeout(query, f"no answer within {self.timeout:g}s from {self.url}") from None
            reason = "connection refused" if "refused" in str(exc).lower() else "cannot connect"
            raise PrometheusUnavailable(query, f"{reason}: {self.url}") from None
        try:
            body = response.json()
        except ValueError:
            self.stats.count(error=True)
            raise QueryError(query, f"HTTP {response.status_code}: not a Prometheus API response",
                             status=response.status_code) from None
        if response.status_code != 200 or body.get("status") != "success":
            self.stats.count(error=True)
            error_type = body.get("errorType")
            if error_type == "timeout" or response.status_code == 503 and "timeout" in str(body.get("error", "")):
                raise QueryTimeout(query, body.get("error", "query timed out"), error_type, response.status_code)
            raise QueryError(query, body.get("error", f"HTTP {response.status_code}"), error_type,
                             response.status_code)
        self.stats.count()
        return body["data"], tuple(body.get("warnings") or ())
