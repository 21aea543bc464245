"""Standard Webhooks signatures: `v1,` + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}")).

Secrets are written as the spec does, `whsec_` + base64 of the key bytes. During a
rotation a subscriber's secret source holds several, separated by spaces (newest
first); every message is signed with each, and `webhook-signature` carries all of
them space-separated, so the receiver accepts either key while it switches over.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from monitor.errors import MonitorError

SECRET_PREFIX = "whsec_"


class WebhookSecretError(MonitorError):
    """A webhook secret is not a valid `whsec_` base64 key (the message never contains it)."""


def parse_secrets(text: str, what: str) -> list[bytes]:
    """The HMAC keys in a secret source: one or more space-separated `whsec_...` values."""
    keys: list[bytes] = []
    for position, token in enumerate(text.split(), start=1):
        raw = token[len(SECRET_PREFIX):] if token.startswith(SECRET_PREFIX) else token
        try:
            key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise WebhookSecretError(f"{what}: secret #{position} is not base64 (expected whsec_<base64>)") from None
        if len(key) < 16:
            raise WebhookSecretError(f"{what}: secret #{position} is shorter than 16 bytes")
        keys.append(key)
    if not keys:
        raise WebhookSecretError(f"{what}: no secret given")
    return keys


def signature_header(keys: list[bytes], message_id: str, timestamp_s: int, body: str) -> str:
    """The `webhook-signature` value: one `v1,<base64>` per key, space-separated."""
    signed = f"{message_id}.{timestamp_s}.{body}".encode()
    return " ".join("v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
                    for key in keys)


def signed_headers(keys: list[bytes], message_id: str, timestamp_s: int, body: str) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt (the timestamp is the attempt's)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp_s),
        "webhook-signature": signature_header(keys, message_id, timestamp_s, body),
    }
