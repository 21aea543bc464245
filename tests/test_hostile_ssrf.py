"""SSRF: every output kind refuses internal targets, in every spelling, and never follows a redirect.

Each row configures one output (Slack's `base_url`, a Slack incoming webhook, a
webhook receiver, Alertmanager) at one target, queues one notification through
the real router and outbox, makes one delivery attempt and reads the outcome the
outbox recorded. A Python audit hook sees every `socket.connect` the process
makes, so "refused" means nothing connected anywhere, and "not followed" means
nothing connected to where the redirect pointed.
"""

from __future__ import annotations

import json
import random
import sys
import threading
from dataclasses import dataclass
from typing import Callable

import pytest

from monitor.alerting.events import AlertGroupEvent, RollbackEvent
from monitor.errors import ConfigError
from monitor.outputs.address_guard import BlockedAddressError, checked_addresses
from monitor.outputs.assembly import build_delivery
from monitor.outputs.outbox import DeliveryStatus
from monitor.store import StateStore
from standins.alertmanager import LocalAlertmanager
from standins.clock import ManualClock
from standins.configs import new_webhook_secret, write_config
from standins.http_base import LoopbackServer, QuietHandler
from standins.slack_api import SlackStandIn
from standins.webhook_receiver import WebhookReceiver

TOKEN = "xoxb-ssrf-test-token"
METADATA = "169.254.169.254"

# -- every connect the process makes, seen through the interpreter's audit hook ----------

_connects: list[tuple] = []
_recording = threading.Event()


def _audit(event: str, args: tuple) -> None:
    if event == "socket.connect" and _recording.is_set():
        _connects.append(args[1])


sys.addaudithook(_audit)


# -- loopback servers the rows point at ----------------------------------------------------

class _Recorder:
    def __init__(self, status: int, location: str | None = None):
        self.status, self.location, self.hits = status, location, 0
        self.server = LoopbackServer(_RecorderHandler, self)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


class _RecorderHandler(QuietHandler):
    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        recorder: _Recorder = self.server.standin  # type: ignore[attr-defined]
        self.read_body()
        recorder.hits += 1
        headers = {"location": recorder.location} if recorder.location else {}
        self.answer(recorder.status, b'{"ok":true}', headers)


@dataclass
class Servers:
    slack: SlackStandIn
    receiver: WebhookReceiver
    alertmanager: LocalAlertmanager
    redirect_to_metadata: _Recorder
    redirect_to_loopback: _Recorder
    redirect_target: _Recorder

    def real_root(self, kind: str) -> str:
        """The kind's real receiver on loopback (scheme, host and port)."""
        return {"slack_api": f"http://127.0.0.1:{self.slack.server.port}",
                "slack_webhook": f"http://127.0.0.1:{self.slack.server.port}",
                "webhook": f"http://127.0.0.1:{self.receiver.port}",
                "alertmanager": self.alertmanager.url}[kind]

    def received(self, kind: str) -> int:
        if kind == "webhook":
            return len(self.receiver.attempts)
        if kind == "alertmanager":
            return len(self.alertmanager.alerts())
        return len(self.slack.calls)


@pytest.fixture(scope="module")
def servers():
    slack = SlackStandIn(TOKEN)
    receiver = WebhookReceiver(new_webhook_secret(b"s"))
    target = _Recorder(200)
    to_metadata = _Recorder(302, f"http://{METADATA}/latest/meta-data/iam/security-credentials/")
    alertmanager = LocalAlertmanager().start()
    try:
        slack.server.start()
        receiver.start()
        target.server.start()
        to_metadata.server.start()
        to_loopback = _Recorder(307, f"{target.root}/stolen")
        to_loopback.server.start()
        yield Servers(slack, receiver, alertmanager, to_metadata, to_loopback, target)
    finally:
        alertmanager.stop()
        for server in (slack.server, receiver.server, target.server, to_metadata.server):
            server.stop()
        if "to_loopback" in locals():
            to_loopback.server.stop()


# -- one output of each kind, configured at a URL root ----------------------------------------

KINDS = ("slack_api", "slack_webhook", "webhook", "alertmanager")
KIND_NAMES = {"slack_api": "Slack base_url", "slack_webhook": "a Slack incoming webhook",
              "webhook": "a webhook receiver", "alertmanager": "Alertmanager"}


def outputs_yaml(kind: str, root: str, allow_private: bool) -> str:
    allow = "true" if allow_private else "false"
    if kind == "slack_api":
        return f"slack: {{channel: '#alerts', token_env: SSRF_SLACK_TOKEN, base_url: '{root}/api/', " \
               f"allow_private: {allow}, timeout: 2s}}"
    if kind == "slack_webhook":
        return f"slack: {{webhook_url_env: SSRF_SLACK_WEBHOOK, allow_private: {allow}, timeout: 2s}}"
    if kind == "webhook":
        return f"webhooks: [{{name: hook, url: '{root}/hooks/monitor', secret_env: SSRF_HOOK_SECRET, " \
               f"allow_private: {allow}, timeout: 2s}}]"
    return f"alertmanager: {{url: '{root}', allow_private: {allow}, timeout: 2s}}"


FIRING = {"kind": "firing", "status": "firing", "groupKey": "g", "groupLabels": {"alertname": "SSRFProbe"},
          "alerts": [{"status": "firing", "labels": {"alertname": "SSRFProbe", "model": "ranker"},
                      "annotations": {"summary": "probe"}, "startsAt": "2026-11-22T21:00:00Z"}],
          "firing": 1, "resolved": 0}
ROLLBACK = {"type": "rollback.requested", "model": "ranker", "bad_version": "v2", "last_known_good_version": "v1", "reason": "drift",
            "alert": {"labels": {"alertname": "SSRFProbe", "model": "ranker"}, "annotations": {}}}


def attempt(tmp_path, monkeypatch, servers: Servers, kind: str, root: str, allow_private: bool,
            resolver: Callable[[str, int], list[str]] | None = None):
    """Configure `kind` at `root`, queue one notification, make one attempt; return the delivery."""
    monkeypatch.setenv("SSRF_SLACK_TOKEN", TOKEN)
    monkeypatch.setenv("SSRF_SLACK_WEBHOOK", f"{root}/services/T0/B0/ssrf-secret-path")
    monkeypatch.setenv("SSRF_HOOK_SECRET", servers.receiver.secret)
    config = write_config(tmp_path, "retry_schedule: [0s, 1h]\n" + outputs_yaml(kind, root, allow_private))
    clock = ManualClock()
    extra = {"resolver": resolver} if resolver else {}
    service = build_delivery(config, StateStore(tmp_path / "state.db"), clock, rng=random.Random(1), **extra)
    if kind == "webhook":
        items = service.router.route("r", RollbackEvent.from_dict(ROLLBACK, "2026-11-22T21:05:00Z"))
    else:
        # A label unique to this attempt, so Alertmanager (which dedups on labels) counts it.
        payload = json.loads(json.dumps(FIRING))
        payload["alerts"][0]["labels"]["attempt"] = tmp_path.name
        items = service.router.route("f", AlertGroupEvent.from_dict(payload, "2026-11-22T21:05:00Z"))
    assert len(items) == 1
    service.outbox.enqueue(items, clock.now())
    _connects.clear()
    _recording.set()
    try:
        service.worker.drain_due()
    finally:
        _recording.clear()
    (delivery,) = service.outbox.deliveries()
    service.outbox.store.close()
    return delivery


# -- the table ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    says: str
    root: str            # scheme://host[:port]; "REAL" is the kind's own receiver on loopback
    allow_private: bool
    reason: str          # what the refusal names


REFUSED = [
    Row("the AWS/GCP/Azure metadata address is refused even with allow_private", f"http://{METADATA}", True,
        "cloud metadata"),
    Row("AWS's IPv6 metadata address is refused even with allow_private", "http://[fd00:ec2::254]", True,
        "cloud metadata"),
    Row("GCP's metadata host name is refused without being resolved", "http://metadata.google.internal", True,
        "cloud metadata"),
    Row("Alibaba's metadata address inside CGNAT space is refused even with allow_private",
        "http://100.100.100.200", True, "cloud metadata"),
    Row("a link-local IPv4 address is refused even with allow_private", "http://169.254.10.1", True, "link-local"),
    Row("a link-local IPv6 address is refused even with allow_private", "http://[fe80::1]", True, "link-local"),
    Row("the metadata address IPv4-mapped in IPv6 is refused", f"http://[::ffff:{METADATA}]", True,
        "cloud metadata"),
    Row("6to4 carrying loopback is refused without allow_private", "http://[2002:7f00:1::1]", False, "loopback"),
    Row("6to4 carrying the metadata address is refused even with allow_private", "http://[2002:a9fe:a9fe::1]", True,
        "cloud metadata"),
    Row("Teredo carrying loopback (obfuscated client) is refused", "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]",
        False, "loopback"),
    Row("NAT64 carrying loopback is refused without allow_private", "http://[64:ff9b::7f00:1]", False, "loopback"),
    Row("NAT64 carrying the metadata address is refused even with allow_private", "http://[64:ff9b::a9fe:a9fe]",
        True, "cloud metadata"),
    Row("local-use NAT64 carrying the metadata address is refused", "http://[64:ff9b:1::a9fe:a9fe]", True,
        "cloud metadata"),
    Row("IPv4-compatible loopback is refused without allow_private", "http://[::127.0.0.1]", False, "loopback"),
    Row("IPv4-translated (SIIT) metadata is refused even with allow_private", f"http://[::ffff:0:{METADATA}]", True,
        "cloud metadata"),
    Row("loopback in hex shorthand is refused without allow_private", "http://0x7f.1", False, "loopback"),
    Row("an RFC 1918 address is refused without allow_private", "http://10.0.0.5", False, "private"),
    Row("a carrier-grade NAT address is refused without allow_private", "http://100.64.0.1", False,
        "carrier-grade NAT"),
    Row("an IPv6 unique-local address is refused without allow_private", "http://[fd12:3456::1]", False,
        "unique-local"),
    Row("the unspecified address (which reaches this host) is refused even with allow_private", "http://0.0.0.0:9",
        True, "unspecified"),
    Row("a running loopback receiver is refused without allow_private", "REAL", False, "loopback"),
    Row("a host name resolving to loopback is refused without allow_private", "REAL_VIA_LOCALHOST", False,
        "loopback"),
]


# Digits-and-dots hosts that are not dotted-quad IPv4 (the C library reads them as
# addresses) are refused when the config is loaded, naming the field; a Slack incoming
# webhook URL is a secret read at delivery, where the same check refuses it unnamed.
REFUSED_AT_LOAD = [
    Row("the metadata address in decimal is refused", "http://2852039166", True, "invalid host"),
    Row("loopback in decimal is refused", "http://2130706433", False, "invalid host"),
    Row("loopback in octal is refused", "http://0177.0.0.1", False, "invalid host"),
]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: f"to {KIND_NAMES[k]}")
@pytest.mark.parametrize("row", REFUSED_AT_LOAD, ids=lambda r: r.says)
def test_a_numeric_host_form_is_refused_before_anything_connects(row, kind, servers, tmp_path, monkeypatch):
    if kind != "slack_webhook":
        with pytest.raises(ConfigError, match=row.reason) as raised:
            attempt(tmp_path, monkeypatch, servers, kind, row.root, row.allow_private)
        assert "monitor.yaml:" in str(raised.value)
        return
    delivery = attempt(tmp_path, monkeypatch, servers, kind, row.root, row.allow_private)
    assert delivery.status is DeliveryStatus.EXPIRED, (delivery.status, delivery.last_error)
    assert "SSRF_SLACK_WEBHOOK" in delivery.last_error and "ssrf-secret-path" not in delivery.last_error
    assert _connects == [], f"refused, yet connected to {_connects}"


def resolve_root(row_root: str, servers: Servers, kind: str) -> str:
    if row_root == "REAL":
        return servers.real_root(kind)
    if row_root == "REAL_VIA_LOCALHOST":
        return servers.real_root(kind).replace("127.0.0.1", "localhost")
    return row_root


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: f"to {KIND_NAMES[k]}")
@pytest.mark.parametrize("row", REFUSED, ids=lambda r: r.says)
def test_an_internal_target_is_refused_and_nothing_connects(row, kind, servers, tmp_path, monkeypatch):
    received_before = servers.received(kind)
    delivery = attempt(tmp_path, monkeypatch, servers, kind, resolve_root(row.root, servers, kind),
                       row.allow_private)
    assert delivery.status is DeliveryStatus.EXPIRED, (delivery.status, delivery.last_error)
    assert delivery.attempts == 1
    assert row.reason in (delivery.last_error or ""), delivery.last_error
    assert "allow_private" in delivery.last_error
    assert "ssrf-secret-path" not in delivery.last_error, "the incoming-webhook URL is a secret"
    assert _connects == [], f"refused, yet connected to {_connects}"
    assert servers.received(kind) == received_before


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: f"to {KIND_NAMES[k]}")
def test_a_loopback_receiver_is_reached_with_allow_private(kind, servers, tmp_path, monkeypatch):
    received_before = servers.received(kind)
    delivery = attempt(tmp_path, monkeypatch, servers, kind, servers.real_root(kind), allow_private=True)
    assert delivery.status is DeliveryStatus.DELIVERED, delivery.last_error
    assert servers.received(kind) > received_before
    assert {address[0] for address in _connects} == {"127.0.0.1"}


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: f"to {KIND_NAMES[k]}")
@pytest.mark.parametrize("redirect", ["redirect_to_metadata", "redirect_to_loopback"],
                         ids=["a 302 to the metadata service is not followed",
                              "a 307 to another loopback server is not followed"])
def test_a_redirect_is_never_followed(redirect, kind, servers, tmp_path, monkeypatch):
    redirector: _Recorder = getattr(servers, redirect)
    hits_before, target_before = redirector.hits, servers.redirect_target.hits
    delivery = attempt(tmp_path, monkeypatch, servers, kind, redirector.root, allow_private=True)
    assert delivery.status is DeliveryStatus.PENDING, "a redirect is a failed attempt, retried on the schedule"
    assert "redirects are not followed" in (delivery.last_error or ""), delivery.last_error
    assert delivery.last_status_code == redirector.status
    assert redirector.hits == hits_before + 1
    assert servers.redirect_target.hits == target_before, "the redirect was followed"
    assert {address[0] for address in _connects} == {"127.0.0.1"}
    assert [address for address in _connects if address[1] != redirector.server.port] == []


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: f"to {KIND_NAMES[k]}")
def test_dns_rebinding_after_the_check_does_not_move_the_request(kind, servers, tmp_path, monkeypatch):
    """The name is checked once and the request goes to the checked address: a second answer is never used."""
    answers = iter([["127.0.0.1"]])

    def rebinding(host: str, port: int) -> list[str]:
        return next(answers, [METADATA])

    delivery = attempt(tmp_path, monkeypatch, servers, kind,
                       servers.real_root(kind).replace("127.0.0.1", "rebind.example"), True, rebinding)
    assert delivery.status is DeliveryStatus.DELIVERED, delivery.last_error
    assert [address for address in _connects if address[0] != "127.0.0.1"] == []


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700:4700::1111", "2002:5db8:d822::1",
                                     "64:ff9b::808:808", "::ffff:8.8.8.8"],
                         ids=["a public IPv4 address is allowed", "a public IPv6 address is allowed",
                              "6to4 carrying a public IPv4 address is allowed",
                              "NAT64 carrying a public IPv4 address is allowed",
                              "IPv4-mapped public address is allowed"])
def test_public_targets_are_not_over_blocked(address):
    assert checked_addresses("hooks.example", 443, False, resolver=lambda host, port: [address]) == [address]


def test_one_internal_answer_among_public_ones_refuses_the_name():
    """All or nothing: otherwise a name could be steered to its private answer."""
    with pytest.raises(BlockedAddressError, match="2002:a9fe:a9fe::1"):
        checked_addresses("hooks.example", 443, True,
                          resolver=lambda host, port: ["93.184.216.34", "2002:a9fe:a9fe::1"])
