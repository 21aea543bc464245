"""The daemon's HTTP server holds up against idle, dripping, crowding and vanishing clients."""

from __future__ import annotations

import logging
import socket
import struct
import time

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter

from monitor.http_endpoints import HealthServer, ListenError, parse_listen

READ_TIMEOUT_S, DEADLINE_S = 0.5, 1.5


@pytest.fixture
def server():
    registry = CollectorRegistry()
    Counter("probe_total", "a metric to serve", registry=registry).inc()
    http = HealthServer("127.0.0.1:0", registry, lambda: (True, "ready"), max_connections=3,
                        read_timeout_s=READ_TIMEOUT_S, deadline_s=DEADLINE_S).start()
    yield http
    http.stop()


def _connect(server: HealthServer) -> socket.socket:
    host, port = server.address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def _get_once_a_slot_is_free(server: HealthServer, path: str) -> requests.Response:
    """GET `path`, retrying while every slot is taken (the server then closes at accept)."""
    deadline = time.monotonic() + DEADLINE_S + 3
    while True:
        try:
            return requests.get(f"http://{server.address}{path}", timeout=5)
        except requests.ConnectionError:
            assert time.monotonic() < deadline, "slots were never released"
            time.sleep(0.1)


def _seconds_until_closed(sock: socket.socket) -> float:
    """How long until the server closes `sock` (recv returns b'' or the connection resets)."""
    started = time.monotonic()
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def test_a_half_sent_request_is_cut_off_and_others_are_still_served(server):
    sock = _connect(server)
    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    assert requests.get(f"http://{server.address}/metrics", timeout=5).status_code == 200
    assert _seconds_until_closed(sock) < DEADLINE_S + 1.0
    sock.close()


def test_a_client_dripping_bytes_is_cut_off_at_the_total_deadline(server):
    sock = _connect(server)
    started = time.monotonic()
    closed_at = None
    request = b"GET /metrics HTTP/1.1\r\nX-Drip: " + b"a" * 100
    for byte in request:  # one byte per 0.2 s: every read is within the per-read timeout
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            closed_at = time.monotonic() - started
            break
        time.sleep(0.2)
        if time.monotonic() - started > DEADLINE_S + 2.0:
            break
    if closed_at is None:
        closed_at = time.monotonic() - started + _seconds_until_closed(sock)
    sock.close()
    assert DEADLINE_S - 0.2 < closed_at < DEADLINE_S + 2.0, closed_at


def test_connections_beyond_the_cap_are_closed_at_once_and_served_again_later(server):
    idle = [_connect(server) for _ in range(3)]
    time.sleep(0.2)  # the server has accepted all three
    extra = _connect(server)
    assert _seconds_until_closed(extra) < 0.5  # closed without an answer, not queued
    extra.close()
    for sock in idle:
        sock.close()
    assert _get_once_a_slot_is_free(server, "/healthz").text == "ok\n"


def test_a_client_that_hangs_up_leaves_no_traceback(server, capfd, caplog):
    caplog.set_level(logging.DEBUG, logger="monitor.http_endpoints")
    for _ in range(20):
        sock = _connect(server)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        # An abortive close (RST): the server's write of the answer finds the peer gone.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    assert _get_once_a_slot_is_free(server, "/healthz").status_code == 200
    time.sleep(0.3)
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err and "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


@pytest.mark.parametrize("address, expected", [
    ("127.0.0.1:9464", ("127.0.0.1", 9464)), ("[::1]:9464", ("::1", 9464)), (":9464", ("0.0.0.0", 9464)),
    ("localhost:0", ("localhost", 0)), ("metrics.internal.example:9464", ("metrics.internal.example", 9464)),
], ids=["IPv4 and port", "IPv6 in brackets", "all interfaces", "a host name and any port",
        "a dotted host name"])
def test_listen_addresses_that_parse(address, expected):
    assert parse_listen(address) == expected


@pytest.mark.parametrize("address", ["nonsense", "127.0.0.1:99999", "127.0.0.1:-1", "::1:9464", "[::1:9464",
                                     "[nothost]:80", "bad host:80", "127.0.0.1:", "", "-lead.example:80"],
                         ids=["no port at all", "a port past 65535", "a negative port", "IPv6 without brackets",
                              "an unclosed bracket", "a name in brackets", "a space in the host", "an empty port",
                              "nothing", "a label starting with a hyphen"])
def test_listen_addresses_that_are_refused_in_one_line_naming_the_setting(address):
    with pytest.raises(ListenError) as caught:
        parse_listen(address, "monitor.yaml: http.listen")
    message = str(caught.value)
    assert message.startswith("monitor.yaml: http.listen: ") and "\n" not in message


def test_an_address_in_use_is_one_line_saying_so():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(ListenError, match=rf"^--listen 127.0.0.1:{port}: cannot listen: the address is "
                                              r"already in use"):
            HealthServer(f"127.0.0.1:{port}", CollectorRegistry(), lambda: (True, ""), where="--listen")
    finally:
        taken.close()


def test_ipv6_loopback_is_served():
    if not socket.has_ipv6:
        pytest.fail("this machine has no IPv6 stack")
    server = HealthServer("[::1]:0", CollectorRegistry(), lambda: (True, "")).start()
    try:
        assert server.address.startswith("[::1]:")
        assert requests.get(f"http://{server.address}/healthz", timeout=5).text == "ok\n"
    finally:
        server.stop()


def test_metrics_negotiate_openmetrics_and_gzip_as_prometheus_client_serves_them(server):
    base = f"http://{server.address}/metrics"
    plain = requests.get(base, headers={"Accept-Encoding": "identity"}, timeout=5)
    assert plain.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "probe_total 1.0" in plain.text
    open_metrics = requests.get(base, headers={"Accept": "application/openmetrics-text; version=1.0.0"}, timeout=5)
    assert open_metrics.headers["Content-Type"].startswith("application/openmetrics-text")
    assert open_metrics.text.rstrip().endswith("# EOF")
    zipped = requests.get(base, headers={"Accept-Encoding": "gzip"}, timeout=5)
    assert zipped.headers.get("Content-Encoding") == "gzip"
    assert "probe_total 1.0" in zipped.text  # requests inflates it


def test_other_paths_go_to_the_mounted_app_and_its_errors_are_one_log_line(caplog):
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("the page failed")
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [f"<p>{environ['REQUEST_METHOD']} {environ['PATH_INFO']}</p>".encode()]

    http = HealthServer("127.0.0.1:0", CollectorRegistry(), lambda: (True, "ready"), app=app).start()
    try:
        base = f"http://{http.address}"
        assert requests.get(base + "/slos", timeout=5).text == "<p>GET /slos</p>"
        assert requests.post(base + "/api/v1/silences", data=b"{}", timeout=5).text == "<p>POST /api/v1/silences</p>"
        assert requests.get(base + "/healthz", timeout=5).text == "ok\n"
        caplog.set_level(logging.WARNING, logger="monitor.http_endpoints")
        assert requests.get(base + "/boom", timeout=5).status_code == 500
        assert any("the page failed" in r.getMessage() for r in caplog.records)
    finally:
        http.stop()
