"""A Microsoft Teams Workflows webhook stand-in: what "When a Teams webhook request is received" accepts.

The request it checks, from Microsoft's documentation
(https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using,
.../how-to/add-incoming-webhook and https://learn.microsoft.com/en-us/connectors/teams/):
a JSON POST to the workflow's URL with its `sig`; a message whose `attachments` hold
Adaptive Cards (content type `application/vnd.microsoft.card.adaptive`; message cards
are not supported by Workflows); a card of `type` AdaptiveCard with a `version` Teams
renders (1.0 to 1.5) and body elements and actions of the schema's types with their
required properties and enum values, at most six buttons per action set (Teams hides
the rest); at most 28 KB in all.

One check goes beyond what Teams refuses, because it is what would hurt a reader:
every TextBlock text and Fact title and value is rendered as CommonMark (markdown-it),
and each link, image or raw HTML found is recorded in `markup` (the request is still
accepted, as Teams would). Our cards put links in Action.OpenUrl buttons only, so a
test asserts `markup()` is empty: label values reach the channel as typed.

Answers: 202 (the trigger accepts and runs the flow), 401 for a wrong or missing
`sig`, 400 for an invalid card, 413 over 28 KB, and 429 (with Retry-After) or 5xx
when told to. Every request and every problem is recorded.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from markdown_it import MarkdownIt

from .faults import Fault, FaultQueue
from .http_base import LoopbackServer, QuietHandler

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_MESSAGE_BYTES = 28_000
WORKFLOW_PATH = "/workflows/0c0ffee0c0ffee0c0ffee0c0ffee0c0f/triggers/manual/paths/invoke"
TEAMS_VERSIONS = ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5")
MAX_ACTIONS = 6          # Teams' host config (actions.maxActions): more buttons are not shown

_TEXT_COLORS = {"default", "dark", "light", "accent", "good", "warning", "attention"}
_TEXT_SIZES = {"default", "small", "medium", "large", "extralarge"}
_TEXT_WEIGHTS = {"default", "lighter", "bolder"}
_ELEMENTS = {"TextBlock", "FactSet", "Container", "ColumnSet", "Column", "Image", "ActionSet", "RichTextBlock"}
_ACTIONS = {"Action.OpenUrl", "Action.ShowCard", "Action.Submit", "Action.ToggleVisibility", "Action.Execute"}
_MARKDOWN = MarkdownIt("commonmark")


def markup_in(text: str) -> list[str]:
    """What CommonMark makes of `text` that is more than formatting: links, images, raw HTML."""
    found = []
    for block in _MARKDOWN.parse(text):
        for token in block.children or [block]:
            if token.type in ("link_open", "image", "html_inline", "html_block"):
                found.append(f"{token.type} {token.content or token.attrs}")
    return found


def card_problems(card: Any) -> list[str]:
    """Every way an Adaptive Card breaks the schema Teams renders, or carries markup from text."""
    if not isinstance(card, dict):
        return ["attachment content is not an object"]
    problems = []
    if card.get("type") != "AdaptiveCard":
        problems.append(f"card type {card.get('type')!r} is not AdaptiveCard")
    if card.get("version") not in TEAMS_VERSIONS:
        problems.append(f"card version {card.get('version')!r} is not one Teams renders {TEAMS_VERSIONS}")
    body = card.get("body", [])
    if not isinstance(body, list):
        return problems + ["card body is not a list"]
    for element in body:
        problems += _element_problems(element, "body")
    return problems + _actions_problems(card.get("actions", []), "card")


def _element_problems(element: Any, where: str) -> list[str]:
    if not isinstance(element, dict) or element.get("type") not in _ELEMENTS:
        return [f"{where}: unknown element {element.get('type') if isinstance(element, dict) else element!r}"]
    kind = element["type"]
    problems = []
    if kind == "TextBlock":
        text = element.get("text")
        if not isinstance(text, str):
            return [f"{where}: TextBlock without a text string"]
        for key, allowed in (("color", _TEXT_COLORS), ("size", _TEXT_SIZES), ("weight", _TEXT_WEIGHTS)):
            if key in element and str(element[key]).lower() not in allowed:
                problems.append(f"{where}: TextBlock {key} {element[key]!r} not in {sorted(allowed)}")
    elif kind == "FactSet":
        facts = element.get("facts")
        if not isinstance(facts, list) or not facts:
            return [f"{where}: FactSet without facts"]
        for fact in facts:
            if not (isinstance(fact, dict) and isinstance(fact.get("title"), str)
                    and isinstance(fact.get("value"), str)):
                problems.append(f"{where}: fact {fact!r} needs string title and value")
                continue
    elif kind in ("Container", "Column"):
        items = element.get("items")
        if not isinstance(items, list):
            return [f"{where}: {kind} without items"]
        for item in items:
            problems += _element_problems(item, f"{where}.{kind}")
    elif kind == "ColumnSet":
        for column in element.get("columns", []):
            problems += _element_problems(column, f"{where}.ColumnSet")
    elif kind == "ActionSet":
        problems += _actions_problems(element.get("actions"), f"{where}.ActionSet")
    return problems


def _actions_problems(actions: Any, where: str) -> list[str]:
    if not isinstance(actions, list):
        return [f"{where}: actions is not a list"]
    problems = [p for action in actions for p in _action_problems(action)]
    if len(actions) > MAX_ACTIONS:
        problems.append(f"{where}: {len(actions)} actions; Teams shows {MAX_ACTIONS} and hides the rest")
    return problems


def _action_problems(action: Any) -> list[str]:
    if not isinstance(action, dict) or action.get("type") not in _ACTIONS:
        return [f"unknown action {action!r}"]
    if action["type"] == "Action.OpenUrl":
        url = action.get("url")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            return [f"Action.OpenUrl url {url!r} is not an http(s) URL"]
        if not isinstance(action.get("title"), str) or not action["title"]:
            return [f"Action.OpenUrl to {url} has no title"]
    return []


def message_problems(message: Any) -> list[str]:
    if not isinstance(message, dict):
        return ["body is not a JSON object"]
    if message.get("type", "message") != "message":
        return [f"type {message.get('type')!r} is not message"]
    attachments = message.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return ["no attachments (Workflows post Adaptive Cards from `attachments`)"]
    problems = []
    for attachment in attachments:
        if not isinstance(attachment, dict) or attachment.get("contentType") != CARD_CONTENT_TYPE:
            problems.append(f"attachment content type is not {CARD_CONTENT_TYPE}")
            continue
        problems += card_problems(attachment.get("content"))
    return problems


def card_texts(card: dict[str, Any]) -> list[str]:
    """Every TextBlock text and Fact title and value of a (valid) card, in order."""
    found: list[str] = []

    def walk(element: dict[str, Any]) -> None:
        if element.get("type") == "TextBlock":
            found.append(element["text"])
        for fact in element.get("facts", []):
            found.extend((fact["title"], fact["value"]))
        for child in element.get("items", []) + element.get("columns", []):
            walk(child)

    for element in card.get("body", []):
        walk(element)
    return found


def message_markup(message: Any) -> list[str]:
    """The links, images and raw HTML that a (valid) message's card texts render to."""
    return [f"{m} in {text[:80]!r}" for attachment in message["attachments"]
            for text in card_texts(attachment["content"]) for m in markup_in(text)]


@dataclass
class TeamsRequest:
    path: str
    query: dict[str, list[str]]
    content_type: str | None
    raw: bytes
    message: dict[str, Any] | None
    answered: int
    problems: list[str]
    received_at: float
    markup: list[str] = field(default_factory=list)   # links, images, HTML that card text renders

    @property
    def card(self) -> dict[str, Any]:
        assert self.message is not None
        return self.message["attachments"][0]["content"]


@dataclass
class TeamsStandIn:
    signature: str = "s1gnatureOfTheWorkflowUrl-NotToBeLogged"
    port: int = 0
    requests: list[TeamsRequest] = field(default_factory=list)
    faults: FaultQueue = field(default_factory=FaultQueue)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.server = LoopbackServer(_Handler, self, self.port)

    def __enter__(self) -> "TeamsStandIn":
        self.server.start()
        self.port = self.server.port
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        """The workflow's URL as Power Automate shows it: the `sig` in its query makes it a secret."""
        return (f"http://127.0.0.1:{self.server.port}{WORKFLOW_PATH}?api-version=2016-06-01"
                f"&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={self.signature}")

    def throttle_next(self, count: int, retry_after: str = "1") -> None:
        body = b'{"error":{"code":"TooManyRequests","message":"The request was throttled."}}'
        self.faults.add(count, Fault(429, {"Retry-After": retry_after}, body))

    def fail_next(self, count: int, status: int = 502) -> None:
        self.faults.add(count, Fault(status, {}, b'{"error":{"code":"BadGateway","message":"try again"}}'))

    def slow_next(self, count: int, delay_s: float) -> None:
        self.faults.add(count, Fault(None, delay_s=delay_s))

    def accepted(self) -> list[TeamsRequest]:
        return [r for r in self.requests if r.answered == 202]

    def problems(self) -> list[str]:
        return [p for r in self.requests for p in r.problems]

    def markup(self) -> list[str]:
        return [m for r in self.requests for m in r.markup]

    def handle(self, target: str, content_type: str | None, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        fault = self.faults.take()
        if fault is not None and fault.delay_s:
            time.sleep(fault.delay_s)
        parts = urlsplit(target)
        with self._lock:
            request = TeamsRequest(parts.path, parse_qs(parts.query), content_type, raw, None, 0, [], time.time())
            self.requests.append(request)
            try:
                request.message = json.loads(raw)
            except ValueError:
                request.message = None
            if fault is not None and fault.status is not None:
                request.answered = fault.status
                return fault.status, fault.headers, fault.body
            status, code, problems = self._check(request)
            request.answered, request.problems = status, problems
            if status == 202:
                request.markup = message_markup(request.message)
            if status != 202:
                return status, {}, json.dumps({"error": {"code": code, "message": "; ".join(problems)}}).encode()
            return 202, {}, b""

    def _check(self, request: TeamsRequest) -> tuple[int, str, list[str]]:
        if request.path != WORKFLOW_PATH:
            return 404, "TriggerNotFound", [f"no workflow at {request.path}"]
        if request.query.get("sig") != [self.signature]:
            return 401, "DirectApiInvalidAuthorizationSignature", ["the request signature is not valid"]
        if (request.content_type or "").split(";")[0].strip().lower() != "application/json":
            return 400, "InvalidRequestContent", [f"content type {request.content_type!r} is not application/json"]
        if len(request.raw) > MAX_MESSAGE_BYTES:
            return 413, "RequestEntityTooLarge", [f"message of {len(request.raw)} bytes is over 28 KB"]
        if request.message is None:
            return 400, "InvalidRequestContent", ["the body is not JSON"]
        problems = message_problems(request.message)
        return (400, "InvalidRequestContent", problems) if problems else (202, "", [])


class _Handler(QuietHandler):
    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        standin: TeamsStandIn = self.server.standin  # type: ignore[attr-defined]
        status, headers, body = standin.handle(self.path, self.headers.get("content-type"), self.read_body())
        self.answer(status, body, headers)
