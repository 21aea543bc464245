"""Standard Webhooks signatures as the reference implementation verifies them, and the SSRF guard."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from monitor.config import WebhookConfig
from monitor.outputs.address_guard import BlockedAddressError, checked_addresses, refusal_reason
from monitor.outputs.results import SendOutcome
from monitor.outputs.webhook_signing import WebhookSecretError, parse_secrets, signed_headers
from monitor.outputs.webhooks import WebhookDestination
from standins.configs import new_webhook_secret
from standins.webhook_receiver import WebhookReceiver

def now_s() -> int:
    """Now, read when used: the reference verifier rejects timestamps over 5 minutes old."""
    return int(datetime.now(timezone.utc).timestamp())


@pytest.mark.parametrize("body", [
    '{"type":"rollback.requested","data":{"model":"ranker"}}',
    '{"type":"ping","data":{"note":"non-ASCII: café – 模型"}}',
    "{}",
], ids=["a rollback event verifies", "a body with non-ASCII text verifies", "an empty object verifies"])
def test_reference_implementation_accepts_our_signature(body):
    secret = new_webhook_secret()
    headers = signed_headers(parse_secrets(secret, "test"), "msg_1", now_s(), body)
    assert Webhook(secret).verify(body, headers) is not None
    assert headers["webhook-signature"].startswith("v1,")


def test_a_changed_body_id_or_timestamp_fails_verification():
    secret = new_webhook_secret()
    headers = signed_headers(parse_secrets(secret, "test"), "msg_1", now_s(), '{"a":1}')
    for body, changed in (('{"a":2}', headers), ('{"a":1}', {**headers, "webhook-id": "msg_2"}),
                          ('{"a":1}', {**headers, "webhook-timestamp": str(now_s() + 1)})):
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(body, changed)


def test_during_rotation_both_the_old_and_the_new_secret_verify():
    old, new = new_webhook_secret(b"o"), new_webhook_secret(b"n")
    headers = signed_headers(parse_secrets(f"{new} {old}", "test"), "msg_1", now_s(), "{}")
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify("{}", headers) == {}
    assert Webhook(new).verify("{}", headers) == {}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_webhook_secret(b"x")).verify("{}", headers)


def test_the_signature_is_hmac_sha256_of_id_timestamp_and_body():
    import hashlib
    import hmac
    key = b"k" * 24
    secret = "whsec_" + base64.b64encode(key).decode()
    headers = signed_headers(parse_secrets(secret, "t"), "msg_x", 1700000000, "body")
    expected = base64.b64encode(hmac.new(key, b"msg_x.1700000000.body", hashlib.sha256).digest()).decode()
    assert headers == {"webhook-id": "msg_x", "webhook-timestamp": "1700000000", "webhook-signature": f"v1,{expected}"}


@pytest.mark.parametrize("text", ["whsec_not*base64!", "whsec_c2hvcnQ=", ""],
                         ids=["not base64 is rejected", "a key under 16 bytes is rejected", "nothing is rejected"])
def test_bad_secrets_are_rejected_without_echoing_them(text):
    with pytest.raises(WebhookSecretError) as caught:
        parse_secrets(text, "webhook deployer")
    assert "deployer" in str(caught.value)
    if text:
        assert text.removeprefix("whsec_") not in str(caught.value)


@pytest.mark.parametrize("address, reason", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
    ("10.1.2.3", "private"), ("192.168.1.10", "private"), ("172.16.5.4", "private"), ("fd00:ec2::254", "private"),
    ("169.254.169.254", "link-local (cloud metadata)"), ("fe80::1", "link-local (cloud metadata)"),
    ("100.100.100.200", "not globally routable"), ("0.0.0.0", "private"), ("224.0.0.1", "multicast"),
], ids=lambda v: str(v))
def test_internal_addresses_are_refused(address, reason):
    assert refusal_reason(address) is not None
    with pytest.raises(BlockedAddressError) as caught:
        checked_addresses("hooks.example", 443, allow_private=False, resolver=lambda host, port: [address])
    assert address in str(caught.value) and "allow_private" in str(caught.value)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700:4700::1111"], ids=["public IPv4", "public IPv6"])
def test_public_addresses_are_allowed(address):
    assert refusal_reason(address) is None
    assert checked_addresses("hooks.example", 443, False, resolver=lambda h, p: [address]) == [address]


def test_one_private_address_among_public_ones_refuses_the_host():
    with pytest.raises(BlockedAddressError):
        checked_addresses("hooks.example", 443, False, resolver=lambda h, p: ["93.184.216.34", "10.0.0.5"])


def test_localhost_is_refused_on_its_resolved_address_and_allowed_with_allow_private():
    with pytest.raises(BlockedAddressError):
        checked_addresses("localhost", 80, allow_private=False)
    assert checked_addresses("localhost", 80, allow_private=True)


def test_a_subscription_without_allow_private_sends_nothing_to_loopback(monkeypatch):
    secret = new_webhook_secret()
    monkeypatch.setenv("HOOK_SECRET", secret)
    with WebhookReceiver(secret) as receiver:
        for url in (receiver.url, receiver.url.replace("127.0.0.1", "localhost"),
                    receiver.url.replace("127.0.0.1", "[::1]")):
            sub = WebhookConfig(name="deployer", url=url, secret_env="HOOK_SECRET")
            _, result = WebhookDestination(sub).ping(datetime.now(timezone.utc))
            assert result.outcome is SendOutcome.REFUSED
            assert "allow_private" in (result.error or "")
        assert receiver.attempts == []
