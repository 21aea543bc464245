"""Every output's request has one total deadline: a receiver dripping its answer is cut at the timeout.

A per-read socket timeout never fires against a receiver that sends a byte every
0.3s, so each row would hang for the whole ~25s answer without a total deadline.
"""

from __future__ import annotations

import random
import socket
import ssl
import subprocess
import threading
import time
from http.server import ThreadingHTTPServer

import pytest

from monitor.alerting.events import AlertGroupEvent, RollbackEvent
from monitor.outputs.assembly import build_delivery
from monitor.outputs.http_transport import post_url
from monitor.outputs.outbox import DeliveryStatus
from monitor.store import StateStore
from standins.clock import ManualClock
from standins.configs import new_webhook_secret, write_config
from standins.drip_receiver import DripReceiver
from standins.http_base import QuietHandler

TIMEOUT_S = 1.0
# Thread scheduling on a loaded machine; far below the ~25s a dripped answer takes.
SLACK_S = 1.0

OUTPUTS = {
    "slack_api": "slack: {{channel: '#alerts', token_env: DRIP_SLACK_TOKEN, base_url: '{root}/api/', "
                 "allow_private: true, timeout: 1s}}",
    "slack_webhook": "slack: {{webhook_url_env: DRIP_SLACK_WEBHOOK, allow_private: true, timeout: 1s}}",
    "webhook": "webhooks: [{{name: hook, url: '{root}/hooks', secret_env: DRIP_HOOK_SECRET, allow_private: true, "
               "timeout: 1s}}]",
    "alertmanager": "alertmanager: {{url: '{root}', allow_private: true, timeout: 1s}}",
}
FIRING = {"kind": "firing", "status": "firing", "groupKey": "g", "groupLabels": {"alertname": "Drip"},
          "alerts": [{"status": "firing", "labels": {"alertname": "Drip"}, "annotations": {},
                      "startsAt": "2026-11-22T21:00:00Z"}], "firing": 1, "resolved": 0}
ROLLBACK = {"type": "rollback.requested", "model": "ranker", "bad_version": "v2", "last_known_good_version": "v1",
            "alert": {"labels": {"alertname": "Drip", "model": "ranker"}}}


@pytest.mark.parametrize("headers_first", [False, True],
                         ids=["status line dripped", "headers at once, body dripped"])
@pytest.mark.parametrize("kind", list(OUTPUTS), ids=["Slack Web API", "Slack incoming webhook",
                                                     "webhook receiver", "Alertmanager"])
def test_a_dripping_receiver_is_cut_at_the_timeout_and_retried(kind, headers_first, tmp_path, monkeypatch):
    with DripReceiver(interval_s=0.3, headers_first=headers_first) as drip:
        root = f"http://127.0.0.1:{drip.port}"
        monkeypatch.setenv("DRIP_SLACK_TOKEN", "xoxb-drip")
        monkeypatch.setenv("DRIP_SLACK_WEBHOOK", f"{root}/services/T0/B0/drip")
        monkeypatch.setenv("DRIP_HOOK_SECRET", new_webhook_secret(b"d"))
        config = write_config(tmp_path, "retry_schedule: [0s, 5s]\n" + OUTPUTS[kind].format(root=root))
        clock = ManualClock()
        service = build_delivery(config, StateStore(tmp_path / "state.db"), clock, rng=random.Random(1))
        if kind == "webhook":
            items = service.router.route("r", RollbackEvent.from_dict(ROLLBACK, "2026-11-22T21:05:00Z"))
        else:
            items = service.router.route("f", AlertGroupEvent.from_dict(FIRING, "2026-11-22T21:05:00Z"))
        service.outbox.enqueue(items, clock.now())

        started = time.monotonic()
        service.worker.drain_due()
        elapsed_s = time.monotonic() - started

        (delivery,) = service.outbox.deliveries()
        assert TIMEOUT_S <= elapsed_s < TIMEOUT_S + SLACK_S, elapsed_s
        assert delivery.status is DeliveryStatus.PENDING, "a timeout is retried"
        assert (delivery.attempts, delivery.failures) == (1, 1)
        assert "timed out" in delivery.last_error and "within 1s" in delivery.last_error, delivery.last_error
        assert 5.0 <= delivery.next_attempt_at - clock.now() <= 5.5, "the next attempt follows the schedule"
        (connection,) = drip.connections
        deadline = time.monotonic() + 5
        while connection.closed_at is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert connection.held_s() is not None and connection.held_s() < TIMEOUT_S + SLACK_S, \
            "the sender did not hang up at its deadline"
        assert connection.bytes_sent < 40, "the answer was read to the end"


# -- TLS: the checked address is dialled, the URL's host name is verified ------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for `localhost` (and a CA context that trusts only it)."""
    directory = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem"),
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    client = ssl.create_default_context(cafile=str(directory / "cert.pem"))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return client, server


class _TlsEcho(QuietHandler):
    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self.server.seen.append((self.headers.get("host"), self.read_body()))  # type: ignore[attr-defined]
        self.answer(200, b'{"ok":true}')


def test_https_goes_to_the_checked_address_and_verifies_the_urls_host_name(certificate):
    client, server_context = certificate
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TlsEcho)
    server.seen = []  # type: ignore[attr-defined]
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    port = server.server_address[1]
    try:
        answer = post_url(f"https://localhost:{port}/hooks", b"{}", {}, timeout_s=5, allow_private=True,
                          context=client)
        assert answer.status == 200 and server.seen == [(f"localhost:{port}", b"{}")]
        # The same server under a name its certificate does not carry: refused by TLS, not sent.
        with pytest.raises(ssl.SSLCertVerificationError):
            post_url(f"https://alias.example:{port}/hooks", b"{}", {}, timeout_s=5, allow_private=True,
                     context=client, resolver=lambda host, p: ["127.0.0.1"])
        assert len(server.seen) == 1
    finally:
        server.shutdown()
        server.server_close()


def test_a_tls_handshake_that_never_completes_is_cut_at_the_deadline(certificate):
    client, _ = certificate
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection (in the backlog) and never says a word
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            post_url(f"https://localhost:{silent.getsockname()[1]}/", b"{}", {}, timeout_s=TIMEOUT_S,
                     allow_private=True, context=client)
        assert TIMEOUT_S <= time.monotonic() - started < TIMEOUT_S + SLACK_S
    finally:
        silent.close()
