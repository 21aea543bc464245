"""Slack: alert group notifications through slack-sdk, threaded per alert group and destination.

With a bot token (`chat.postMessage` / `chat.update`): a group's first firing
notification is a new channel message; later ones (repeats, alerts joining,
resolves) are replies in its thread, and a resolve also updates the parent so the
channel shows at a glance that it is over. With an incoming webhook there is no
thread: each notification is its own message. Each slack_config of each receiver
is its own destination with its own threads (the legacy `outputs.slack` is `slack`).

slack-sdk's own retry handlers are switched off: the outbox owns retries, so
attempts are counted honestly and a 429's Retry-After is honoured by the outbox.
The SDK's logger is silenced (it would log an incoming-webhook URL, a secret).

The SDK builds the requests and reads the answers, but does not send them: urllib
would follow redirects (to anywhere, including inside our network) and its timeout
is per read. Every request goes through `http_transport.post_url` instead, as the
other outputs' do: the SSRF guard on `base_url` and the incoming-webhook URL, the
checked address, one total deadline, no redirects.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.request import Request

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from monitor.addresses import http_url_problem
from monitor.alerting.events import AlertGroupEvent, ReportEvent, event_from_json
from monitor.config import SlackConfig
from monitor.errors import MonitorError
from monitor.outputs import http_transport
from monitor.outputs.address_guard import BlockedAddressError, Resolver, system_resolver
from monitor.outputs.backoff import parse_retry_after_s
from monitor.outputs.outbox import Delivery
from monitor.outputs.outbox_repository import SlackThread, SlackThreadRepository
from monitor.outputs.receivers import LEGACY_SLACK
from monitor.outputs.report_announce import report_slack_message
from monitor.outputs.results import SendOutcome, SendResult, classify_http_status
from monitor.outputs.slack_messages import SlackMessage, build_alert_group_message
from monitor.secrets import read_secret
from monitor.store import StateStore

DESTINATION = LEGACY_SLACK  # the legacy `outputs.slack`; receivers' Slack configs are `RECEIVER/slack`
_QUIET_LOGGER = logging.Logger("monitor.outputs.slack.sdk", level=logging.CRITICAL + 1)
# Web API answers are small JSON documents; a larger one is cut here (and fails to parse).
MAX_API_RESPONSE_BYTES = 1 << 20
# The one method of slack-sdk's WebClient that touches the network (slack-sdk 3.x).
_SDK_SEND_METHOD = "_perform_urllib_http_request_internal"
if not hasattr(WebClient, _SDK_SEND_METHOD):  # an SDK upgrade must not quietly bypass the guard
    raise ImportError(f"slack_sdk.WebClient has no {_SDK_SEND_METHOD}: monitor cannot guard its requests")


class _Refused(Exception):
    """The guard refused the URL: carried through the SDK, which would otherwise wrap it."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class GuardedWebClient(WebClient):
    """slack-sdk's WebClient with its requests sent through `http_transport` (guarded, deadline, no redirects)."""

    def __init__(self, *, token: str, base_url: str, timeout_s: float, allow_private: bool,
                 resolver: Resolver = system_resolver):
        super().__init__(token=token, base_url=base_url, timeout=int(max(1, timeout_s)), retry_handlers=[],
                         logger=_QUIET_LOGGER)
        self._timeout_s = timeout_s
        self._allow_private = allow_private
        self._resolver = resolver

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        data = req.data if isinstance(req.data, bytes) else (req.data or "").encode()
        try:
            answer = http_transport.post_url(url, data, dict(req.header_items()), timeout_s=self._timeout_s,
                                             allow_private=self._allow_private, resolver=self._resolver,
                                             max_response_bytes=MAX_API_RESPONSE_BYTES)
        except ValueError:
            raise _Refused("base_url is not http(s) with a host") from None
        except BlockedAddressError as exc:
            raise _Refused(str(exc)) from None
        return {"status": answer.status, "headers": answer.headers,
                "body": answer.body.decode("utf-8", errors="replace")}


class SlackThreads(SlackThreadRepository):
    """The parent message of each alert group's current episode, per destination (`slack_threads`)."""

    def __init__(self, store: StateStore, destination: str = DESTINATION):
        super().__init__(store, destination)


class _SlackFailure(Exception):
    def __init__(self, result: SendResult):
        self.result = result


class SlackDestination:
    """Posts alert group notifications to one Slack channel (one slack_config of one receiver)."""

    def __init__(self, config: SlackConfig, store: StateStore, timeout_s: float | None = None,
                 resolver: Resolver = system_resolver, name: str = DESTINATION):
        self.name = name
        self.config = config
        self.threads = SlackThreads(store, name)
        self.timeout_s = timeout_s if timeout_s is not None else config.timeout.total_seconds()
        self.resolver = resolver

    def send(self, delivery: Delivery) -> SendResult:
        event = event_from_json(delivery.event_type, delivery.body)
        if isinstance(event, ReportEvent):
            message = report_slack_message(event)
        elif isinstance(event, AlertGroupEvent):
            message = build_alert_group_message(event, self.config.template)
        else:
            return SendResult(SendOutcome.REFUSED, error=f"slack: cannot render a {delivery.event_type} event")
        try:
            if self.config.webhook_url_env or self.config.webhook_url_file:
                return self._send_incoming_webhook(message)
            if isinstance(event, ReportEvent):  # an announcement is its own channel message, never in a thread
                posted = self._call(self._client().chat_postMessage, channel=self.config.channel,
                                    text=message.text, blocks=message.blocks)
                return SendResult.delivered(ts=posted.get("ts"))
            return self._send_threaded(delivery, event, message)
        except _SlackFailure as failure:
            return failure.result
        except _Refused as refused:
            return SendResult(SendOutcome.REFUSED, error=f"slack: {refused.reason}")
        except MonitorError as exc:  # a secret that cannot be read: message names where, never what
            return SendResult(SendOutcome.FAILED, error=str(exc))

    # -- bot token --------------------------------------------------------------------

    def _client(self) -> WebClient:
        token = read_secret(self.config.token_env, self.config.token_file, "slack token")
        return GuardedWebClient(token=token, base_url=self.config.base_url, timeout_s=self.timeout_s,
                                allow_private=self.config.allow_private, resolver=self.resolver)

    def _send_threaded(self, delivery: Delivery, event: AlertGroupEvent, message: SlackMessage) -> SendResult:
        client = self._client()
        group_key = delivery.group_key or event.group_key or delivery.notification_key
        resolved = event.status == "resolved"
        thread = self.threads.get(group_key)
        now = float(delivery.last_attempt_at or delivery.created_at)
        if thread is None or not thread.open:
            if event.kind != "firing" and thread is not None:
                # A late resolve/repeat of a closed episode: reply in the old thread.
                reply = self._call(client.chat_postMessage, channel=thread.channel, thread_ts=thread.ts,
                                   text=message.text, blocks=message.blocks)
                return SendResult.delivered(reply_ts=reply["ts"])
            posted = self._call(client.chat_postMessage, channel=self.config.channel, text=message.text,
                                blocks=message.blocks)
            # Remember the parent before committing the delivery: a crash now re-posts
            # (at least once) but later notifications still find this thread.
            self.threads.start(group_key, posted["channel"], posted["ts"], now)
            if resolved:
                self.threads.close(group_key, now)
            return SendResult.delivered(ts=posted["ts"])
        progress = dict(delivery.progress)
        if "reply_ts" not in progress:
            reply = self._call(client.chat_postMessage, channel=thread.channel, thread_ts=thread.ts,
                               text=message.text, blocks=message.blocks,
                               reply_broadcast=event.kind == "repeat", progress=progress)
            progress["reply_ts"] = reply["ts"]
        if event.kind in ("firing", "resolved"):
            self._call(client.chat_update, channel=thread.channel, ts=thread.ts, text=message.text,
                       blocks=message.blocks, progress=progress)
        if resolved:
            self.threads.close(group_key, now)
        return SendResult.delivered(**progress)

    def _call(self, method, progress: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """One Web API call; failures become a _SlackFailure carrying the outcome (and steps done)."""
        try:
            response = method(**kwargs)
            return dict(response.data) if isinstance(response.data, dict) else {}
        except SlackApiError as exc:
            status = exc.response.status_code
            retry_after_s = parse_retry_after_s(_header(exc.response.headers, "retry-after"))
            outcome = classify_http_status(status, retry_after_s)
            if outcome is SendOutcome.DELIVERED:  # 200 with ok=false: a Slack-level error
                outcome = SendOutcome.FAILED
            error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
            note = http_transport.REDIRECT_NOTE if 300 <= status < 400 else ""
            raise _SlackFailure(SendResult(outcome, status, retry_after_s,
                                           f"slack: HTTP {status}: {error or 'error'}{note}",
                                           progress=progress or {})) from None
        except OSError as exc:
            raise _SlackFailure(SendResult(
                SendOutcome.FAILED, error=f"slack: no answer: {http_transport.describe_os_error(exc)}",
                progress=progress or {})) from None
        except SlackClientError as exc:
            raise _SlackFailure(SendResult(SendOutcome.FAILED, error=f"slack: no answer: {type(exc).__name__}",
                                           progress=progress or {})) from None

    # -- incoming webhook -----------------------------------------------------------

    def _send_incoming_webhook(self, message: SlackMessage) -> SendResult:
        # The URL is a secret: no error below may contain it (the guard's names only the host).
        url = read_secret(self.config.webhook_url_env, self.config.webhook_url_file, "slack webhook_url")
        source = self.config.webhook_url_env or self.config.webhook_url_file
        if http_url_problem(url):  # name where the URL came from, never the URL: it is the secret
            return SendResult(SendOutcome.REFUSED,
                              error=f"slack webhook: the URL in {source} is not an http(s) URL with a host")
        body = json.dumps({"text": message.text, "blocks": message.blocks}, separators=(",", ":")).encode()
        try:
            answer = http_transport.post_url(url, body, {"content-type": "application/json;charset=utf-8"},
                                             timeout_s=self.timeout_s, allow_private=self.config.allow_private,
                                             resolver=self.resolver)
        except ValueError:
            return SendResult(SendOutcome.REFUSED,
                              error=f"slack webhook: the URL in {source} is not an http(s) URL with a host")
        except BlockedAddressError as exc:
            return SendResult(SendOutcome.REFUSED, error=f"slack webhook: {exc}")
        except OSError as exc:
            return SendResult(SendOutcome.FAILED,
                              error=f"slack webhook: no answer: {http_transport.describe_os_error(exc)}")
        retry_after_s = parse_retry_after_s(answer.headers.get("retry-after"))
        outcome = classify_http_status(answer.status, retry_after_s)
        error = None if outcome is SendOutcome.DELIVERED else (
            f"slack webhook: HTTP {answer.status}" + (http_transport.REDIRECT_NOTE if answer.is_redirect else ""))
        return SendResult(outcome, answer.status, retry_after_s, error)


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for key, value in dict(headers).items():
        if key.lower() == name:
            return value[0] if isinstance(value, list) else value
    return None


__all__ = ["SlackDestination", "SlackThreads", "SlackThread", "GuardedWebClient", "DESTINATION"]
