"""A Slack Web API stand-in: `chat.postMessage` and `chat.update` answered as Slack does.

It checks what a real workspace would reject or what would hurt a reader: the bearer
token, a channel, a plain `text` fallback, at most 50 blocks, section texts within
3,000 characters and headers within 150, no unescaped `<!...>` (a channel ping) in
mrkdwn, and `thread_ts` on every resolved notification posted as a new message.
Every violation is kept in `problems` (and answered `ok: false`), so a test asserts
there were none. It can answer 429 with Retry-After for the next N calls.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from .http_base import LoopbackServer, QuietHandler

# A ping or a link (`<!channel>`, `<@U1>`, `<#C1>`); `<!date^...>` is Slack's date formatting, not a ping.
_MENTION = re.compile(r"<(?:[@#]|!(?!date\^))")
# Slack's documented date token: <!date^UNIX^TOKEN_STRING[^OPTIONAL_LINK]|FALLBACK>.
_DATE = re.compile(r"<!date\^[^>]*>")
_VALID_DATE = re.compile(r"<!date\^\d+\^[^|^>]*\{(?:date|date_num|date_short|date_long|date_pretty|date_short_pretty|"
                        r"date_long_pretty|time|time_secs)\}[^|^>]*(?:\^https?://[^|>]+)?\|[^<>|]+>")


@dataclass
class SlackCall:
    method: str
    args: dict[str, Any]
    authorization: str | None
    received_at: float
    answered: int          # HTTP status we answered
    ts: str | None = None  # the message ts we returned


@dataclass
class SlackStandIn:
    token: str
    calls: list[SlackCall] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # ts -> current message (after updates)
    _rate_limited: int = 0
    _retry_after: str = "2"
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seq: int = 0

    def __post_init__(self) -> None:
        self.server = LoopbackServer(_Handler, self)

    def __enter__(self) -> "SlackStandIn":
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/api/"

    def rate_limit_next(self, count: int, retry_after: str = "2") -> None:
        """Answer the next `count` calls with 429 and this Retry-After."""
        with self._lock:
            self._rate_limited, self._retry_after = count, retry_after

    def accepted(self, method: str | None = None) -> list[SlackCall]:
        return [c for c in self.calls if c.answered == 200 and c.ts and (method is None or c.method == method)]

    # -- handling -------------------------------------------------------------------

    def handle(self, method: str, args: dict[str, Any], authorization: str | None) -> tuple[int, dict, dict]:
        with self._lock:
            call = SlackCall(method, args, authorization, time.time(), 200)
            self.calls.append(call)
            if self._rate_limited > 0:
                self._rate_limited -= 1
                call.answered = 429
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": self._retry_after}
            if authorization != f"Bearer {self.token}":
                return 200, {"ok": False, "error": "invalid_auth"}, {}
            found = self._validate(method, args)
            if found:
                self.problems.extend(f"{method}: {p}" for p in found)
                return 200, {"ok": False, "error": "invalid_blocks"}, {}
            if method == "chat.postMessage":
                self._seq += 1
                ts = f"{1700000000 + self._seq}.{self._seq:06d}"
                self.messages[ts] = dict(args)
            elif method == "chat.update":
                ts = str(args["ts"])
                if ts not in self.messages:
                    return 200, {"ok": False, "error": "message_not_found"}, {}
                self.messages[ts] = {**self.messages[ts], **args}
            else:
                return 200, {"ok": False, "error": "unknown_method"}, {}
            call.ts = ts
            return 200, {"ok": True, "channel": args["channel"], "ts": ts,
                         "message": {"text": args.get("text"), "ts": ts}}, {}

    def handle_incoming_webhook(self, path: str, args: dict[str, Any]) -> tuple[int, bytes, dict]:
        with self._lock:
            call = SlackCall("incoming-webhook", args, path, time.time(), 200)
            self.calls.append(call)
            if self._rate_limited > 0:
                self._rate_limited -= 1
                call.answered = 429
                return 429, b"rate_limited", {"Retry-After": self._retry_after}
            found = self._validate("incoming-webhook", {"channel": "(webhook)", **args})
            if found:
                self.problems.extend(f"incoming-webhook: {p}" for p in found)
                call.answered = 400
                return 400, b"invalid_blocks", {}
            call.ts = f"webhook-{len(self.calls)}"
            return 200, b"ok", {}

    def _validate(self, method: str, args: dict[str, Any]) -> list[str]:
        problems = []
        if not args.get("channel"):
            problems.append("no channel")
        if not args.get("text"):
            problems.append("no plain text fallback")
        blocks = args.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        if len(blocks) > 50:
            problems.append(f"{len(blocks)} blocks (limit 50)")
        for text, kind in _texts(blocks):
            limit = 150 if kind == "header" else 3000
            if len(text) > limit:
                problems.append(f"{kind} text of {len(text)} characters (limit {limit})")
            if kind != "header" and _MENTION.search(text):
                problems.append(f"unescaped mention in {text[:80]!r}")
            problems += [f"malformed date token {d!r}" for d in _DATE.findall(text) if not _VALID_DATE.fullmatch(d)]
        if _MENTION.search(args.get("text") or ""):
            problems.append("unescaped mention in the text fallback")
        header = next((t for t, k in _texts(blocks) if k == "header"), "")
        if method == "chat.postMessage" and header.startswith("[RESOLVED]") and not args.get("thread_ts") \
                and self.accepted("chat.postMessage"):
            problems.append("resolved notification posted without thread_ts")
        if method == "chat.update" and not args.get("ts"):
            problems.append("chat.update without ts")
        return problems


def _texts(blocks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for block in blocks:
        kind = block.get("type", "")
        if isinstance(block.get("text"), dict):
            out.append((block["text"].get("text", ""), kind))
        for f in block.get("fields", []) or []:
            out.append((f.get("text", ""), "field"))
        for element in block.get("elements", []) or []:
            if isinstance(element.get("text"), str):
                out.append((element["text"], "context"))
    return out


class _Handler(QuietHandler):
    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        standin: SlackStandIn = self.server.standin  # type: ignore[attr-defined]
        raw = self.read_body()
        if self.path.startswith("/services/"):
            # An incoming webhook: the path is the secret, the answer is plain "ok".
            status, body, headers = standin.handle_incoming_webhook(self.path, json.loads(raw or b"{}"))
            self.answer(status, body, headers, content_type="text/plain")
            return
        method = self.path.rsplit("/", 1)[-1]
        if "json" in (self.headers.get("content-type") or ""):
            args = json.loads(raw or b"{}")
        else:
            args = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        status, body, headers = standin.handle(method, args, self.headers.get("authorization"))
        self.answer(status, json.dumps(body).encode(), headers)
