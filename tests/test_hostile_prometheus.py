"""Hostile and broken Prometheus answers: each is one clear QueryError, never a crash or a hang.

A loopback stand-in speaks raw HTTP so it can answer anything: HTML error pages,
truncated or deeply nested JSON, the API's envelope with wrong JSON types, bodies
over the size bound (declared or streamed, compressed or not), and bytes dripped
slower than the timeout. Each row asserts the error type, that the message names
what was wrong and the query, and whose fault it is (`server_fault`: a wrong answer
is the server's, which freezes alert state; only a 4xx `bad_data` is the query's).
A few rows go through the CLI too: exit 1, one line, no traceback.
"""

from __future__ import annotations

import gzip
import json
import re
import socketserver
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

import pytest
import yaml

from hostile import assert_handled, run_in_process
from monitor.sources.prometheus import (InstantQuery, PrometheusSource, QueryError, QueryTimeout, RangeQuery,
                                       UnexpectedResponse)

QUERY = 'sum(rate(http_requests_total{service="ranker"}[5m]))'
AT = datetime(2026, 11, 22, 12, tzinfo=timezone.utc)
TIMEOUT_S = 1.0
MAX_BYTES = 100_000


@dataclass(frozen=True)
class Answer:
    """What the stand-in sends: a status, headers and body chunks (with a pause before each)."""

    status: int = 200
    body: bytes | Callable[[], Iterator[bytes]] = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    content_length: bool = True
    raw: bytes | None = None  # sent as is instead of a status line and headers (dripped headers)
    pause_s: float = 0.0


def api(data: object = None, **envelope: object) -> bytes:
    return json.dumps({"status": "success", "data": data, **envelope}).encode()


def vector(*items: object) -> bytes:
    return api({"resultType": "vector", "result": list(items)})


def matrix(*items: object) -> bytes:
    return api({"resultType": "matrix", "result": list(items)})


def dripped(chunks: int, pause_s: float) -> Callable[[], Iterator[bytes]]:
    def body() -> Iterator[bytes]:
        yield b'{"status":"success","data":{"resultType":"vector","result":['
        for _ in range(chunks):
            time.sleep(pause_s)
            yield b" "
    return body


def streamed_over_bound() -> Iterator[bytes]:
    yield b'{"status":"success","data":{"resultType":"vector","result":["'
    for _ in range(50):
        yield b"x" * 10_000


HTML = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
GZIP_BOMB = gzip.compress(b'{"status":"success","data":{"resultType":"vector","result":[' + b" " * 5_000_000)


@dataclass(frozen=True)
class Row:
    id: str
    answer: Answer
    message: str               # a regular expression the error's message must match
    error: type[QueryError] = UnexpectedResponse
    server_fault: bool = True
    kind: str = "instant"


ROWS = [
    Row("an HTML error page from a proxy is not an API response",
        Answer(502, HTML, {"Content-Type": "text/html"}), r"HTTP 502: not a Prometheus API response \(an HTML page\)"),
    Row("an HTML page with status 200 is not an API response",
        Answer(200, HTML, {"Content-Type": "text/html"}), r"HTTP 200: not a Prometheus API response \(an HTML page\)"),
    Row("an HTML 404 from a wrong path prefix is the server's fault, not the query's",
        Answer(404, b"<html>404 page not found</html>"), r"HTTP 404: not a Prometheus API response"),
    Row("truncated JSON is refused", Answer(200, vector({"metric": {}, "value": [1, "1"]})[:-7]),
        r"truncated or not JSON"),
    Row("an empty body is refused", Answer(200, b""), r"an empty body"),
    Row("JSON nested far too deep is refused without a RecursionError",
        Answer(200, b"[" * 40_000 + b"]" * 40_000), r"not a Prometheus API response"),
    Row("a JSON array instead of the envelope is refused", Answer(200, b"[1, 2, 3]"),
        r'no "status": "success" or "error"'),
    Row("a status that is neither success nor error is refused", Answer(200, b'{"status": "ok", "data": {}}'),
        r'no "status": "success" or "error"'),
    Row("a success without data is refused", Answer(200, b'{"status": "success"}'), r'no "data" object'),
    Row("data that is a list is refused", Answer(200, b'{"status": "success", "data": []}'), r'no "data" object'),
    Row("a missing resultType is refused", Answer(200, api({"result": []})), r'no "resultType"'),
    Row("a resultType that is not a string is refused", Answer(200, api({"resultType": 7, "result": []})),
        r'no "resultType"'),
    Row("an unknown resultType is refused", Answer(200, api({"resultType": "tensor", "result": []})),
        r"unknown resultType 'tensor'"),
    Row("a missing result is refused", Answer(200, api({"resultType": "vector"})), r'no "result"'),
    Row("a vector result that is an object is refused", Answer(200, api({"resultType": "vector", "result": {}})),
        r'vector "result" is not a list'),
    Row("a series that is a string is refused", Answer(200, vector("up")), r"a series is not an object"),
    Row("a series without labels is refused", Answer(200, vector({"value": [1, "1"]})),
        r'"metric" is not an object of string labels'),
    Row("a label value that is a number is refused", Answer(200, vector({"metric": {"job": 3}, "value": [1, "1"]})),
        r'"metric" is not an object of string labels'),
    Row("a sample that is not a pair is refused", Answer(200, vector({"metric": {}, "value": [1]})),
        r'not a \[timestamp, "value"\] pair'),
    Row("a sample value that is a JSON number is refused", Answer(200, vector({"metric": {}, "value": [1, 2.5]})),
        r"sample value 2.5 is not a string"),
    Row("a sample value that is not numeric text is refused",
        Answer(200, vector({"metric": {}, "value": [1, "twelve"]})), r"sample value 'twelve' is not a number"),
    Row("a timestamp that is a string is refused", Answer(200, vector({"metric": {}, "value": ["now", "1"]})),
        r"timestamp 'now' is not a number"),
    Row("a native histogram sample is refused rather than misread",
        Answer(200, vector({"metric": {}, "histogram": [1, {"count": "3"}]})), r"native histogram"),
    Row("a scalar result that is not a pair is refused", Answer(200, api({"resultType": "scalar", "result": "1"})),
        r'scalar: a sample is not a \[timestamp, "value"\] pair'),
    Row("warnings that are not a list of strings are refused",
        Answer(200, api({"resultType": "vector", "result": []}, warnings="partial")), r'"warnings" is not a list'),
    Row("a success body with status 500 is refused", Answer(500, vector()), r"HTTP 500 with a success body"),
    Row("an error body without a message says the HTTP status",
        Answer(500, b'{"status": "error", "errorType": "internal", "error": 42}'), r"internal: HTTP 500",
        error=QueryError),
    Row("a 400 bad_data answer is the query's fault, not the server's",
        Answer(400, b'{"status": "error", "errorType": "bad_data", "error": "parse error: unexpected"}'),
        r"bad_data: parse error", error=QueryError, server_fault=False),
    Row("a matrix series whose values are not a list is refused",
        Answer(200, matrix({"metric": {}, "values": "1,2"})), r'"values" is not a list', kind="range"),
    Row("a matrix point with a non-numeric value is refused",
        Answer(200, matrix({"metric": {}, "values": [[1, "1"], [2, "NaN"], [3, "x"]]})),
        r"sample value 'x' is not a number", kind="range"),
    Row("a vector where a range vector was asked is the query's shape, not a crash",
        Answer(200, vector()), r"expected a range vector, got a vector", error=QueryError, kind="range"),
    Row("a declared body over the bound is refused without being read",
        Answer(200, b"{}", {"Content-Type": "application/json", "Content-Length": str(64 * 2 ** 20 + 1)},
               content_length=False), rf"{64 * 2 ** 20 + 1} bytes is over the {MAX_BYTES}-byte bound; not read"),
    Row("a streamed body over the bound stops being read at the bound",
        Answer(200, streamed_over_bound, content_length=False), rf"over the {MAX_BYTES}-byte bound; reading stopped"),
    Row("a small gzip body that inflates over the bound is refused",
        Answer(200, GZIP_BOMB, {"Content-Type": "application/json", "Content-Encoding": "gzip"}),
        rf"over the {MAX_BYTES}-byte bound"),
    Row("a body dripped slower than the timeout ends at the timeout",
        Answer(200, dripped(100, 0.1), content_length=False), r"no answer within 1s", error=QueryTimeout),
    Row("headers dripped slower than the timeout end at the timeout",
        Answer(raw=b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 40, pause_s=0.05),
        r"no answer within 1s", error=QueryTimeout),
]


class _Handler(socketserver.StreamRequestHandler):
    answer: Answer = Answer()

    def handle(self) -> None:
        try:
            length = 0
            while (line := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            self.rfile.read(length)
            self._send(type(self).answer)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass

    def _send(self, answer: Answer) -> None:
        if answer.raw is not None:
            for byte in answer.raw:
                time.sleep(answer.pause_s)
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            return
        chunks = [answer.body] if isinstance(answer.body, bytes) else answer.body()
        headers = dict(answer.headers)
        if answer.content_length and isinstance(answer.body, bytes):
            headers["Content-Length"] = str(len(answer.body))
        head = f"HTTP/1.1 {answer.status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.wfile.write((head + "Connection: close\r\n\r\n").encode())
        for chunk in chunks:
            self.wfile.write(chunk)
            self.wfile.flush()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def stand_in():
    servers = []

    def start(answer: Answer) -> str:
        handler = type("Handler", (_Handler,), {"answer": answer})
        server = _Server(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _ask(source: PrometheusSource, kind: str):
    if kind == "range":
        return source.range(QUERY, AT - timedelta(minutes=5), AT, timedelta(minutes=1))
    return source.instant(QUERY, AT)


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_a_malformed_answer_is_one_clear_query_error(stand_in, row):
    source = PrometheusSource(stand_in(row.answer), timeout=TIMEOUT_S, retries=0, max_response_bytes=MAX_BYTES)
    started = time.monotonic()
    with pytest.raises(QueryError) as raised:
        _ask(source, row.kind)
    assert time.monotonic() - started < TIMEOUT_S + 1.5
    error = raised.value
    assert type(error) is row.error, repr(error)
    assert re.search(row.message, str(error)), str(error)
    assert error.query == QUERY and str(error).endswith(QUERY)
    assert error.server_fault is row.server_fault
    assert "\n" not in str(error)
    # Counted as a failed query: a cycle that got it changes no alert state.
    assert source.stats.errors == 1 and source.stats.queries == 1


def test_in_a_batch_a_malformed_answer_is_each_querys_own_error_and_nothing_raises(stand_in):
    source = PrometheusSource(stand_in(Answer(200, vector({"metric": {}, "value": [1, "x"]}))), timeout=TIMEOUT_S)
    batch = [InstantQuery(QUERY, AT), InstantQuery("vector(1)", AT),
             RangeQuery(QUERY, AT - timedelta(minutes=5), AT, timedelta(minutes=1))]
    answers = source.run(batch)
    assert set(answers) == set(batch)
    for query, answer in answers.items():
        assert isinstance(answer, QueryError) and answer.query == query.query and answer.server_fault


def _cost_config(tmp_path) -> str:
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump({"prometheus": {"url": "http://127.0.0.1:1", "timeout": "1s"},
                                    "models": [{"name": "ranker", "inferences": 'nv_inference_count{model="ranker"}'}]}),
                    encoding="utf-8")
    return str(path)


# `monitor cost` asks range queries: rows whose answer is wrong whatever was asked, and a matrix one.
CLI_ROWS = [row for row in ROWS if row.id in {
    "an HTML error page from a proxy is not an API response",
    "truncated JSON is refused",
    "a success without data is refused",
    "a matrix point with a non-numeric value is refused",
    "a declared body over the bound is refused without being read",
    "a body dripped slower than the timeout ends at the timeout",
}]


@pytest.mark.parametrize("row", CLI_ROWS, ids=[row.id for row in CLI_ROWS])
def test_through_the_cli_a_malformed_answer_is_one_line_and_exit_1(stand_in, tmp_path, capsys, row):
    url = stand_in(row.answer)
    outcome = run_in_process(["cost", "--config", _cost_config(tmp_path), "--prometheus", url,
                              "--from", "2026-11-22T00:00:00Z", "--to", "2026-11-23T00:00:00Z"], capsys)
    # The message names what was wrong and the query it was wrong for (the CLI's bound is the default).
    message = row.message.replace(str(MAX_BYTES), str(64 * 2 ** 20))
    assert_handled(outcome, re.compile(rf"query failed \(.*{message}.*\): \S"), codes=(1,))
