"""Answers about closed windows, asked once: instant queries evaluated at a past instant.

A query evaluated at an instant that has closed (e.g. the prediction histogram's
`increase(...[7d])` at the drift reference window's end) returns the same answer
every cycle until the window moves (hourly for drift). `run_caching_closed` answers
such queries from the state store and sends only the others; what it sends for a
closed query it stores. Only complete answers are kept (a partial one, with a
server warning, is asked again), and only the answers of the latest call survive
in the namespace, so the cache holds one reference window per query at a time.

This assumes the server's data for a closed instant does not change afterwards
(samples ingested late, or backfilled, are not seen until the window moves).
"""

from __future__ import annotations

import hashlib
import json
from typing import Iterable, Mapping

from monitor.sources.prometheus import Answer, InstantQuery, InstantResult, PrometheusSource, Query, Sample
from monitor.store import StateStore
from monitor.timeutil import from_unix, utc

NAMESPACE = "closed_window_answers"


def run_caching_closed(source: PrometheusSource, store: StateStore | None, queries: Iterable[Query],
                       closed: Iterable[InstantQuery], namespace: str = NAMESPACE) -> Mapping[Query, Answer]:
    """`source.run(queries)`, with the `closed` ones (a subset) answered from `store` when it holds them."""
    queries = list(dict.fromkeys(queries))
    if store is None:
        return source.run(queries)
    keys = {query: _key(query) for query in dict.fromkeys(closed)}
    answers: dict[Query, Answer] = {}
    for query, key in keys.items():
        saved = store.get_blob(namespace, key)
        if saved is not None:
            answers[query] = _decode(query, saved)
    asked = source.run([q for q in queries if q not in answers]) if len(answers) < len(queries) else {}
    for query, answer in asked.items():
        answers[query] = answer
        if query in keys and isinstance(answer, InstantResult) and answer.complete:
            store.put_blob(namespace, keys[query], _encode(answer), answer.at.timestamp())
    store.delete_blobs(namespace, keep_keys=set(keys.values()) or None)
    return answers


def _key(query: InstantQuery) -> str:
    return hashlib.sha256(f"{query.query}\n{utc(query.at).timestamp()}".encode()).hexdigest()


def _encode(result: InstantResult) -> bytes:
    return json.dumps({"at": result.at.timestamp(),
                       "samples": [[dict(s.labels), s.value] for s in result.samples]}).encode()


def _decode(query: InstantQuery, saved: bytes) -> InstantResult:
    doc = json.loads(saved)
    return InstantResult(query.query, from_unix(doc["at"]), [Sample(labels, value) for labels, value in doc["samples"]])


__all__ = ["NAMESPACE", "run_caching_closed"]
