"""Microsoft Teams (Workflows webhook, Adaptive Card) through the real outbox to a stand-in that checks the card."""

from __future__ import annotations

import hashlib
import html
import json
import logging
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from monitor.alerting.events import AlertEvent, AlertGroupEvent, event_to_json
from monitor.config import TeamsConfig
from monitor.outputs.backoff import RetrySchedule
from monitor.outputs.outbox import DeliveryStatus, Outbox, OutboxItem
from monitor.outputs.receivers import integration_destination
from monitor.outputs.teams import (CARD_CONTENT_TYPE, TeamsDestination, escape_markdown, message_bytes, plain_line,
                                   render_teams)
from monitor.outputs.worker import OutboxWorker
from monitor.store import StateStore
from standins.clock import ManualClock
from standins.faults import Fault
from standins.configs import write_config
from standins.teams import (MAX_MESSAGE_BYTES, TeamsStandIn, card_texts, markup_in, message_markup,
                            message_problems)

LINKS = {"runbook": "https://github.com/example/monitor#slobudgetburnpage",
         "dashboard": "https://grafana.example/d/slo?var-service=ranker",
         "silence_1h": "monitor silence add alertname=SLOBudgetBurnPage service=ranker --for 1h"}


def alert(status: str = "firing", service: str = "ranker", **labels: str) -> AlertEvent:
    return AlertEvent(status=status, state=status,
                      labels={"alertname": "SLOBudgetBurnPage", "service": service, "severity": "page", **labels},
                      annotations={"summary": "the ranking SLO is burning its error budget"},
                      starts_at="2026-11-22T21:00:00Z",
                      ends_at="2026-11-22T22:00:00Z" if status == "resolved" else None,
                      fingerprint=hashlib.sha256(service.encode()).hexdigest()[:16], value=15.2,
                      evidence={"burn_rate_1h": 15.2, "burn_rate_5m": None})


def group(kind: str = "firing", alerts: tuple[AlertEvent, ...] | None = None,
          group_labels: dict[str, str] | None = None) -> AlertGroupEvent:
    status = "resolved" if kind == "resolved" else "firing"
    alerts = alerts if alerts is not None else (alert(status),)
    return AlertGroupEvent(kind=kind, status=status, group_key="{}:{alertname=\"SLOBudgetBurnPage\"}",
                           group_labels=group_labels or {"alertname": "SLOBudgetBurnPage"}, alerts=alerts,
                           created_at="2026-11-22T21:05:00Z", receiver="ranking", route_id="0.ranking",
                           links=LINKS)


@pytest.fixture
def teams(monkeypatch):
    with TeamsStandIn() as standin:
        monkeypatch.setenv("TEAMS_WEBHOOK_URL", standin.url)
        yield standin


def setup(tmp_path, extra: str = ""):
    config = write_config(tmp_path, f"""
        retry_schedule: [0s, 5s, 5m]
        route:
          receiver: ranking
        receivers:
          - name: ranking
            msteams_configs:
              - webhook_url_env: TEAMS_WEBHOOK_URL
                allow_private: true
                timeout: 2s
{extra}
    """)
    teams_config = config.outputs.receivers[0].msteams_configs[0]
    name = integration_destination("ranking", "msteams")
    clock = ManualClock()
    outbox = Outbox(StateStore(tmp_path / "state.db"), RetrySchedule(tuple(config.outputs.retry_schedule)),
                    rng=random.Random(5))
    worker = OutboxWorker(outbox, {name: TeamsDestination(name, teams_config, clock=clock)}, clock)
    return teams_config, clock, outbox, worker, name


def queue(outbox: Outbox, clock: ManualClock, name: str, key: str, event: AlertGroupEvent) -> None:
    outbox.enqueue([OutboxItem(key, name, event.kind, event_to_json(event), event.group_key)], clock.now())


def test_a_firing_card_and_its_resolve_arrive_as_valid_adaptive_cards_with_link_buttons(tmp_path, teams):
    _, clock, outbox, worker, name = setup(tmp_path)
    assert name == "ranking/msteams"
    queue(outbox, clock, name, "firing:g1", group("firing"))
    queue(outbox, clock, name, "resolved:g1", group("resolved"))
    worker.run_until_idle()
    assert teams.problems() == [] and teams.markup() == []
    firing, resolved = teams.accepted()
    assert firing.content_type == "application/json"
    assert firing.message["attachments"][0]["contentType"] == CARD_CONTENT_TYPE
    card = firing.card
    assert (card["type"], card["version"], card["$schema"]) == (
        "AdaptiveCard", "1.4", "http://adaptivecards.io/schemas/adaptive-card.json")
    title, main = card["body"][0], card["body"][1]
    assert (title["text"], title["color"]) == ("\\[FIRING:1\\] SLOBudgetBurnPage ranker", "Attention")
    assert main["text"] == "the ranking SLO is burning its error budget"
    assert {"title": "service", "value": "ranker"} in card["body"][2]["facts"]
    alert_facts = card["body"][3]["items"][1]["facts"]
    assert {"title": "value", "value": "15.2"} in alert_facts
    assert {"title": "burn\\_rate\\_5m", "value": "no data"} in alert_facts
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Runbook", "url": LINKS["runbook"]},
        {"type": "Action.OpenUrl", "title": "Dashboard", "url": LINKS["dashboard"]}]
    assert any(LINKS["silence_1h"] in _shown_as(t) for t in card_texts(card)), "the silence command is shown to paste"
    assert resolved.card["body"][0]["text"].startswith("\\[RESOLVED\\]")
    assert resolved.card["body"][0]["color"] == "Good"
    assert [d.status for d in outbox.deliveries()] == [DeliveryStatus.DELIVERED] * 2


def test_a_429_waits_its_retry_after_and_a_5xx_is_retried_then_both_arrive_in_order(tmp_path, teams):
    _, clock, outbox, worker, name = setup(tmp_path)
    queue(outbox, clock, name, "firing:g1", group("firing"))
    queue(outbox, clock, name, "resolved:g1", group("resolved"))
    teams.throttle_next(2, retry_after="3")
    teams.fail_next(1, 502)
    worker.run_until_idle()
    assert [r.answered for r in teams.requests] == [429, 429, 502, 202, 202]
    assert clock.slept[:2] == [3.0, 3.0] and clock.slept[2] >= 5.0
    assert [r.card["body"][0]["text"][:11] for r in teams.accepted()] == ["\\[FIRING:1\\", "\\[RESOLVED\\"]
    first = outbox.deliveries()[0]
    assert (first.status, first.attempts, first.failures) == (DeliveryStatus.DELIVERED, 4, 1)


@pytest.mark.parametrize("status", [400, 413], ids=["a 400 invalid card is refused at once",
                                                   "a 413 too-large message is refused at once"])
def test_a_refused_card_is_not_retried_and_the_reason_is_in_last_error(tmp_path, teams, status):
    _, clock, outbox, worker, name = setup(tmp_path)
    queue(outbox, clock, name, "firing:g1", group("firing"))
    teams.faults.add(1, Fault(
        status, {}, b'{"error":{"code":"InvalidRequestContent","message":"card rejected"}}'))
    worker.run_until_idle()
    assert [r.answered for r in teams.requests] == [status]
    (delivery,) = outbox.deliveries()
    assert (delivery.status, delivery.last_status_code) == (DeliveryStatus.EXPIRED, status)
    assert delivery.last_error == f"ranking/msteams: HTTP {status}: InvalidRequestContent: card rejected"


def test_a_wrong_signature_is_retried_then_expires_and_the_url_never_appears(tmp_path, teams, monkeypatch, caplog):
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", teams.url.replace(teams.signature, "wrong-signature-value"))
    _, clock, outbox, worker, name = setup(tmp_path)
    queue(outbox, clock, name, "firing:g1", group("firing"))
    with caplog.at_level(logging.DEBUG):
        worker.run_until_idle()
        teams.server.stop()
        monkeypatch.setenv("TEAMS_WEBHOOK_URL", teams.url)
        queue(outbox, clock, name, "firing:g2", group("repeat"))
        worker.run_until_idle()
    unauthorized, unreachable = outbox.deliveries()
    assert [r.answered for r in teams.requests] == [401] * 3
    assert (unauthorized.status, unauthorized.attempts) == (DeliveryStatus.EXPIRED, 3)
    assert "HTTP 401" in unauthorized.last_error
    assert "no answer from the Teams workflow" in unreachable.last_error
    shown = caplog.text + json.dumps([d.as_json() for d in outbox.deliveries()])
    for secret in ("wrong-signature-value", teams.signature, "sig=", "/workflows/"):
        assert secret not in shown


def test_send_resolved_false_reports_the_resolve_delivered_without_a_request(tmp_path, teams):
    _, clock, outbox, worker, name = setup(tmp_path, extra="                send_resolved: false")
    queue(outbox, clock, name, "firing:g1", group("firing"))
    queue(outbox, clock, name, "resolved:g1", group("resolved"))
    worker.run_until_idle()
    assert len(teams.requests) == 1
    assert [d.status for d in outbox.deliveries()] == [DeliveryStatus.DELIVERED] * 2


HOSTILE = "<script>alert(1)</script> [pay here](https://evil.example/) ![x](https://evil.example/i.png) " \
          "**bold** <https://evil.example/> `code` # heading | a | b | ~~gone~~"


def _shown_as(text: str) -> str:
    """What a CommonMark renderer shows for `text`, as plain text."""
    rendered = MarkdownIt("commonmark").renderInline(text)
    return html.unescape(re.sub(r"<[^>]+>", "", rendered))


def test_hostile_labels_reach_the_channel_as_typed_and_the_card_stays_under_28_kb(tmp_path, teams):
    # Every alert's labels are its own (none in common), so the card must choose what fits.
    alerts = tuple(alert(service=f"svc-{i}", note=HOSTILE, huge=f"{i}" + "z" * 10_000,
                         **{f"l{j}": f"{HOSTILE} {i}-{j}" for j in range(30)}) for i in range(60))
    event = group("firing", alerts=alerts, group_labels={"alertname": "SLOBudgetBurnPage", "evil": HOSTILE})
    _, clock, outbox, worker, name = setup(tmp_path)
    queue(outbox, clock, name, "firing:hostile", event)
    worker.run_until_idle()
    (request,) = teams.requests
    assert (request.answered, request.problems) == (202, [])
    assert len(request.raw) <= MAX_MESSAGE_BYTES
    card = request.card
    more = [e["text"] for e in card["body"]
            if e["type"] == "TextBlock" and re.fullmatch(r"and \d+ more", e["text"])]
    shown = sum(1 for e in card["body"] if e["type"] == "Container")
    assert shown >= 1 and more == [f"and {60 - shown} more"]
    assert request.markup == [], "no label text became a link, an image or HTML"
    note = next(f["value"] for f in card["body"][2]["facts"] if f["title"] == "note")   # common to all
    first_alert_facts = {f["title"]: f["value"] for f in card["body"][3]["items"][1]["facts"]}
    assert first_alert_facts["…"] == f"and {32 - 12} more labels"
    assert (first_alert_facts["value"], first_alert_facts["burn\\_rate\\_1h"]) == ("15.2", "15.2"), \
        "value and evidence are shown however many labels an alert has"
    shown_note = _shown_as(note)
    assert HOSTILE.startswith(shown_note.rstrip("…")), "a label value is shown as typed (cut, never rewritten)"
    assert "<script>" in _shown_as(escape_markdown(HOSTILE)) and "evil.example" in shown_note


@pytest.mark.parametrize("value", [
    "[click me](https://evil.example/)",
    "![tracker](https://evil.example/pixel.png)",
    "<https://evil.example/>",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "**not bold** and _not italic_",
    "- not a list item",
    "12. not a numbered item",
    "3) not a numbered item either",
    "---",
    "+ not a list item",
    "15.2 and 3)",
    "# not a heading",
    "back\\slash \\[escaped\\] already",
    "`code` and ~~strike~~",
    "ranker (v2) at 99.9%",
    "&lt;b&gt; &amp; &#91;",
], ids=["a markdown link shows as typed", "a markdown image shows as typed", "an autolink shows as typed",
        "a script tag shows as typed", "an HTML image shows as typed", "emphasis shows as typed",
        "a leading dash is not a list", "a leading number is not a list",
        "a leading number with a parenthesis is not a list", "three dashes are not a rule",
        "a leading plus is not a list",
        "a number at the start is left alone", "a leading hash is not a heading",
        "backslashes survive", "code and strikethrough show as typed", "ordinary text is left alone",
        "entity references show as typed"])
def test_escaped_label_text_renders_exactly_as_typed_with_no_markup(value):
    escaped = escape_markdown(value)
    assert markup_in(escaped) == []
    assert _shown_as(escaped) == value
    rendered = MarkdownIt("commonmark").render(escaped)
    assert rendered.startswith("<p>") and rendered.count("<p>") == 1, f"one plain paragraph, not {rendered!r}"
    assert "<em>" not in rendered and "<strong>" not in rendered


# Pieces of CommonMark syntax, so generated text is mostly the text that could become markup.
MARKDOWN_PIECES = ["[", "]", "(", ")", "](", "![", "<", ">", "<b>", "*", "**", "_", "`", "~~", "|", "\\", "-", "+",
                   "1.", "2)", "#", "=", "&amp;", "&#60;", "&lt", ";", "https://e.example/", " ", "\n", "a", "9"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(st.characters(blacklist_categories=("Cs",)), max_size=60),
                 st.lists(st.sampled_from(MARKDOWN_PIECES), max_size=12).map("".join)))
def test_any_label_text_renders_as_one_paragraph_of_exactly_that_text(value):
    escaped = escape_markdown(value)
    assert markup_in(escaped) == []
    if plain_line(value):
        rendered = MarkdownIt("commonmark").render(escaped)
        assert rendered.startswith("<p>") and rendered.count("<p>") == 1, rendered
        assert _shown_as(escaped) == plain_line(value)


def test_a_rendered_card_is_valid_and_within_the_limit_for_firing_repeat_and_resolved():
    config = TeamsConfig(webhook_url_env="TEAMS_WEBHOOK_URL")
    for kind in ("firing", "repeat", "resolved"):
        message = render_teams(group(kind), config)
        assert message_problems(message) == [] and message_markup(message) == [], kind
        assert len(message_bytes(message)) <= MAX_MESSAGE_BYTES


def _with_card(**changes) -> dict:
    message = render_teams(group("firing"), TeamsConfig(webhook_url_env="TEAMS_WEBHOOK_URL"))
    message["attachments"][0]["content"].update(changes)
    return message


@pytest.mark.parametrize("message", [
    {"type": "message", "attachments": []},
    {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.teams.card.o365connector",
                                         "content": {}}]},
    _with_card(version="2.0"),
    _with_card(type="MessageCard"),
    _with_card(body=[{"type": "TextBlock"}]),
    _with_card(body=[{"type": "FactSet", "facts": [{"title": "n", "value": 3}]}]),
    _with_card(body=[{"type": "Marquee", "text": "hi"}]),
    _with_card(body=[{"type": "TextBlock", "text": "x", "color": "red"}]),
    _with_card(actions=[{"type": "Action.OpenUrl", "title": "x", "url": "javascript:alert(1)"}]),
    _with_card(actions=[{"type": "Action.OpenUrl", "title": f"{i}", "url": f"https://e.example/{i}"}
                        for i in range(7)]),
], ids=["no attachments", "a connector message card", "a card version Teams does not render",
        "not an AdaptiveCard", "a TextBlock without text", "a fact value that is not a string",
        "an unknown element", "a colour outside the enum", "a javascript: URL button",
        "seven buttons where Teams shows six"])
def test_the_standin_refuses_what_teams_would_not_render(message):
    assert message_problems(message) != []


def test_the_standin_finds_a_link_or_html_that_card_text_would_render():
    message = _with_card(body=[{"type": "TextBlock", "text": "see [here](https://evil.example/)"},
                               {"type": "FactSet", "facts": [{"title": "t", "value": "<b>x</b>"}]}])
    assert message_problems(message) == []
    found = message_markup(message)
    assert [m.split()[0] for m in found] == ["link_open", "html_inline", "html_inline"]


def test_a_workflow_url_on_a_private_address_is_refused_without_allow_private_and_never_shown(tmp_path, teams):
    """Loopback is a private address: without allow_private the SSRF guard refuses it before any request."""
    _, clock, outbox, _, name = setup(tmp_path)
    worker = OutboxWorker(outbox, {name: TeamsDestination(name, TeamsConfig(webhook_url_env="TEAMS_WEBHOOK_URL"),
                                                          clock=clock)}, clock)
    queue(outbox, clock, name, "firing:g1", group("firing"))
    worker.run_until_idle()
    (delivery,) = outbox.deliveries()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.EXPIRED, 1)
    assert delivery.last_error.startswith("ranking/msteams: ") and "127.0.0.1" in delivery.last_error
    assert teams.signature not in delivery.last_error and teams.requests == []


def test_more_links_than_teams_shows_buttons_for_go_into_action_sets_and_none_is_lost():
    links = {**LINKS, **{f"graph_{i}": f"https://prometheus.example/graph?g0.expr=q{i}" for i in range(12)}}
    event = group("firing").with_links(links)
    message = render_teams(event, TeamsConfig(webhook_url_env="TEAMS_WEBHOOK_URL"))
    assert message_problems(message) == []
    card = message["attachments"][0]["content"]
    buttons = card["actions"] + [a for e in card["body"] if e["type"] == "ActionSet" for a in e["actions"]]
    assert sorted(b["url"] for b in buttons) == sorted(v for v in links.values() if v.startswith("https://"))
    assert [b["title"] for b in card["actions"][:2]] == ["Runbook", "Dashboard"]
