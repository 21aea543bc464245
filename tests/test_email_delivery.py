"""Email receivers through the outbox to a real SMTP server on loopback (aiosmtpd).

Each test sends a typed alert group event through `EmailDestination` and checks
what the server received, parsed back with the standard library's MIME parser
(policy.default): the parts, the headers, the escaping, the TLS and AUTH the
session used, and the outbox's outcome for each class of SMTP answer.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import replace
from datetime import timedelta
from email import policy
from email.parser import BytesParser
from html.parser import HTMLParser

import pytest

from monitor.alerting.events import AlertEvent, AlertGroupEvent, event_to_json
from monitor.config import EmailConfig, smarthost_problem
from monitor.outputs.email import EmailDestination, email_subject, render_email
from monitor.outputs.outbox import DeliveryStatus, Outbox, OutboxItem, message_id_for
from monitor.outputs.results import SendOutcome
from monitor.store import StateStore
from smtp_server import SmtpServer, self_signed_certificate, server_tls_context, unused_port

HOSTILE = '<script>alert("x")</script><img src=http://evil.example/p.png>'
PASSWORD = "s3cret-pa55word-for-smtp"


def alert(name: str = "SloErrorBudgetBurn", status: str = "firing", **labels: str) -> AlertEvent:
    return AlertEvent(status=status, state=status, labels={"alertname": name, "severity": "ticket", **labels},
                      annotations={"summary": f"{name} on {labels.get('service', '?')}",
                                   "runbook_url": "https://runbooks.example/slo#burn"},
                      starts_at="2026-11-22T21:00:00Z", ends_at=None if status == "firing" else "2026-11-22T22:00:00Z",
                      fingerprint=f"fp-{name}-{sorted(labels.items())}", value=14.4)


def group_event(*alerts: AlertEvent, kind: str = "firing", **group_labels: str) -> AlertGroupEvent:
    status = "firing" if any(a.firing for a in alerts) else "resolved"
    return AlertGroupEvent(kind=kind, status=status, group_key="{}:{alertname=\"SloErrorBudgetBurn\"}",
                           group_labels=group_labels or {"alertname": "SloErrorBudgetBurn"}, alerts=tuple(alerts),
                           created_at="2026-11-22T21:05:00Z", receiver="finance", route_id="0.1",
                           links={"dashboard": "https://grafana.example/d/slo?var-service=ranker",
                                  "silence": "monitor silence add alertname=SloErrorBudgetBurn --for 1h",
                                  "bogus": "javascript:alert(1)"})


def email_config(server_or_smarthost, **overrides) -> EmailConfig:
    smarthost = server_or_smarthost if isinstance(server_or_smarthost, str) else server_or_smarthost.smarthost
    base = dict(to=["Finance On-call <finance-oncall@example.com>", "cost@example.com"],
                from_="Monitor <monitor@alerts.example.com>", smarthost=smarthost, require_tls=False,
                allow_private=True, hello="monitor.test", timeout=timedelta(seconds=5))
    return EmailConfig(**{**base, **overrides})


class Sender:
    """One email destination behind a real outbox: queue an event, make one attempt."""

    def __init__(self, tmp_path, config: EmailConfig, name: str = "finance/email"):
        self.store = StateStore(tmp_path / "state.db")
        self.outbox = Outbox(self.store)
        self.destination = EmailDestination(name, config)
        self.now = 1_700_000_000.0

    def queue(self, event: AlertGroupEvent, key: str = "n1") -> None:
        self.outbox.enqueue([OutboxItem(key, self.destination.name, event.kind, event_to_json(event),
                                        event.group_key)], self.now)

    def attempt(self):
        delivery = self.outbox.head(self.destination.name)
        assert delivery is not None
        delivery = self.outbox.begin_attempt(delivery, self.now)
        result = self.destination.send(delivery)
        return result, self.outbox.record(delivery, result, self.now)

    def close(self):
        self.store.close()


@pytest.fixture
def sender_for(tmp_path):
    made = []

    def make(config: EmailConfig) -> Sender:
        made.append(Sender(tmp_path, config))
        return made[-1]
    yield make
    for sender in made:
        sender.close()


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.hrefs += [value for name, value in attrs if name == "href"]

    def handle_data(self, data):
        self.text.append(data)


def parse_html(html: str) -> _Anchors:
    parser = _Anchors()
    parser.feed(html)
    return parser


# -- rendering ---------------------------------------------------------------------


@pytest.mark.parametrize("event, subject", [
    (group_event(alert(service="ranker"), alert(service="search")), "[FIRING:2] SloErrorBudgetBurn (ticket)"),
    (group_event(alert(service="ranker"), alert(service="search", status="resolved"), service="ranker",
                 alertname="SloErrorBudgetBurn"), "[FIRING:1] SloErrorBudgetBurn ranker (ticket)"),
    (group_event(alert(service="ranker", status="resolved"), kind="resolved", alertname="SloErrorBudgetBurn",
                 service="ranker"), "[RESOLVED] SloErrorBudgetBurn ranker (ticket)"),
    (group_event(alert(service="a\r\nBcc: victim@example.com"), service="a\r\nBcc: victim@example.com"),
     "[FIRING:1] a Bcc: victim@example.com (SloErrorBudgetBurn ticket)"),
], ids=["two alerts firing: group labels, then the other common labels in parentheses",
        "alertname first, then group labels by name, as Alertmanager's SortedPairs",
        "a resolved group says RESOLVED without a count",
        "a newline in a label value cannot inject a header"])
def test_the_subject_reads_like_alertmanagers(event, subject):
    assert email_subject(event) == subject
    message = render_email(event, email_config("127.0.0.1:25"))
    assert message["Subject"] == subject
    assert "Bcc" not in message  # the injected text stayed inside the subject


def test_a_hostile_label_is_text_in_the_html_part_and_verbatim_in_the_text_part():
    event = group_event(alert(service=HOSTILE))
    message = render_email(event, email_config("127.0.0.1:25"), message_id="msg_abc")
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    parsed = parse_html(html)
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert HOSTILE in "".join(parsed.text)          # shown, as text
    assert HOSTILE in text
    # Only http(s) links are clickable; the silence command is shown as text, a javascript: link not at all.
    assert parsed.hrefs == ["https://grafana.example/d/slo?var-service=ranker", "https://runbooks.example/slo#burn"]
    assert "monitor silence add alertname=SloErrorBudgetBurn --for 1h" in "".join(parsed.text)
    assert "javascript:" not in " ".join(parsed.hrefs)


# -- SMTP ----------------------------------------------------------------------------


def test_the_email_arrives_as_multipart_text_and_html(sender_for):
    event = group_event(alert(service="ranker"), alert(service="search"))
    with SmtpServer() as server:
        sender = sender_for(email_config(server))
        sender.queue(event)
        result, delivery = sender.attempt()
    assert result.outcome is SendOutcome.DELIVERED, result.error
    assert delivery.status is DeliveryStatus.DELIVERED
    [mail] = server.received
    assert mail.mail_from == "monitor@alerts.example.com"
    assert mail.rcpt_tos == ("finance-oncall@example.com", "cost@example.com")
    message = BytesParser(policy=policy.default).parsebytes(mail.raw)
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Subject"] == "[FIRING:2] SloErrorBudgetBurn (ticket)"
    assert message["From"] == "Monitor <monitor@alerts.example.com>"
    assert message["To"] == "Finance On-call <finance-oncall@example.com>, cost@example.com"
    assert message["Date"].datetime.isoformat() == "2026-11-22T21:05:00+00:00"
    assert message["Message-ID"] == f"<{message_id_for('n1', 'finance/email')}@alerts.example.com>"
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for service in ("ranker", "search"):
        assert f"service = {service}" in text
        assert f"<code>{service}</code>" in html
    assert "https://grafana.example/d/slo?var-service=ranker" in text
    assert not mail.tls  # this server offers no STARTTLS and require_tls is false


def test_starttls_is_used_when_offered_and_the_certificate_is_verified(tmp_path, sender_for):
    cert, key = self_signed_certificate(tmp_path)
    with SmtpServer(tls_context=server_tls_context(cert, key)) as server:
        sender = sender_for(email_config(server, require_tls=True, tls_ca_file=str(cert)))
        sender.queue(group_event(alert(service="ranker")))
        result, _ = sender.attempt()
    assert result.outcome is SendOutcome.DELIVERED, result.error
    [mail] = server.received
    assert mail.tls


def test_a_certificate_that_does_not_verify_is_refused(tmp_path, sender_for):
    cert, key = self_signed_certificate(tmp_path)
    with SmtpServer(tls_context=server_tls_context(cert, key)) as server:
        sender = sender_for(email_config(server, require_tls=True))  # system trust store: unknown CA
        sender.queue(group_event(alert(service="ranker")))
        result, delivery = sender.attempt()
    assert result.outcome is SendOutcome.REFUSED
    assert "certificate does not verify" in result.error
    assert delivery.status is DeliveryStatus.EXPIRED and server.received == []


def test_require_tls_refuses_a_server_without_starttls(sender_for):
    with SmtpServer() as server:
        sender = sender_for(email_config(server, require_tls=True))
        sender.queue(group_event(alert(service="ranker")))
        result, delivery = sender.attempt()
    assert result.outcome is SendOutcome.REFUSED
    assert "does not offer STARTTLS" in result.error and "not sending in clear" in result.error
    assert delivery.status is DeliveryStatus.EXPIRED
    assert server.received == []


@pytest.mark.parametrize("mechanism, excluded", [("PLAIN", ("LOGIN",)), ("LOGIN", ("PLAIN",))],
                         ids=["AUTH PLAIN with the password from a file", "AUTH LOGIN with the password from a file"])
def test_auth_with_the_password_from_a_file(tmp_path, sender_for, mechanism, excluded):
    cert, key = self_signed_certificate(tmp_path)
    secret = tmp_path / "smtp-password"
    secret.write_text(PASSWORD + "\n")
    with SmtpServer(tls_context=server_tls_context(cert, key), credentials=("monitor", PASSWORD),
                    exclude_mechanisms=excluded) as server:
        sender = sender_for(email_config(server, require_tls=True, tls_ca_file=str(cert), auth_username="monitor",
                                         auth_password_file=str(secret)))
        sender.queue(group_event(alert(service="ranker")))
        result, _ = sender.attempt()
    assert result.outcome is SendOutcome.DELIVERED, result.error
    [mail] = server.received
    assert (mail.tls, mail.auth_login, mail.auth_mechanism) == (True, "monitor", mechanism)


def test_a_wrong_password_is_refused_without_naming_it(tmp_path, sender_for):
    cert, key = self_signed_certificate(tmp_path)
    secret = tmp_path / "smtp-password"
    secret.write_text("wrong-" + PASSWORD)
    with SmtpServer(tls_context=server_tls_context(cert, key), credentials=("monitor", PASSWORD)) as server:
        sender = sender_for(email_config(server, tls_ca_file=str(cert), auth_username="monitor",
                                         auth_password_file=str(secret)))
        sender.queue(group_event(alert(service="ranker")))
        result, delivery = sender.attempt()
    assert result.outcome is SendOutcome.REFUSED and result.status_code == 535
    assert PASSWORD not in (delivery.last_error or "") and "535" in delivery.last_error
    assert server.auth_attempts and server.received == []


def test_auth_is_never_attempted_in_clear(tmp_path, sender_for):
    secret = tmp_path / "smtp-password"
    secret.write_text(PASSWORD)
    with SmtpServer(credentials=("monitor", PASSWORD)) as server:
        sender = sender_for(email_config(server, auth_username="monitor", auth_password_file=str(secret)))
        sender.queue(group_event(alert(service="ranker")))
        result, _ = sender.attempt()
    assert result.outcome is SendOutcome.REFUSED and "in clear" in result.error
    assert server.auth_attempts == [] and server.received == []


@pytest.mark.parametrize("reply, outcome, status", [
    ("550 5.1.1 mailbox unavailable", SendOutcome.REFUSED, DeliveryStatus.EXPIRED),
    ("450 4.2.1 mailbox busy, try later", SendOutcome.FAILED, DeliveryStatus.PENDING),
], ids=["550 mailbox unavailable for every recipient is refused for good",
        "450 for every recipient is retried"])
def test_recipient_replies(sender_for, reply, outcome, status):
    with SmtpServer() as server:
        server.handler.rcpt_replies.update({"finance-oncall@example.com": reply, "cost@example.com": reply})
        sender = sender_for(email_config(server))
        sender.queue(group_event(alert(service="ranker")))
        result, delivery = sender.attempt()
    assert (result.outcome, delivery.status) == (outcome, status)
    assert reply in result.error
    assert server.received == []


def test_one_recipient_refused_still_delivers_to_the_other(sender_for):
    with SmtpServer() as server:
        server.handler.rcpt_replies["cost@example.com"] = "550 5.1.1 mailbox unavailable"
        sender = sender_for(email_config(server))
        sender.queue(group_event(alert(service="ranker")))
        result, delivery = sender.attempt()
    assert delivery.status is DeliveryStatus.DELIVERED
    assert delivery.progress == {"refused_recipients": {"cost@example.com": "550 5.1.1 mailbox unavailable"}}
    [mail] = server.received
    assert mail.rcpt_tos == ("finance-oncall@example.com",)


def test_a_451_after_data_is_retried(sender_for):
    with SmtpServer() as server:
        server.handler.data_reply = "451 4.3.0 local error, try again"
        sender = sender_for(email_config(server))
        sender.queue(group_event(alert(service="ranker")))
        result, delivery = sender.attempt()
    assert (result.outcome, result.status_code, delivery.status) == (SendOutcome.FAILED, 451, DeliveryStatus.PENDING)


def test_a_down_server_is_retried_and_the_resend_keeps_its_message_id(sender_for):
    port = unused_port()
    sender = sender_for(email_config(f"127.0.0.1:{port}"))
    sender.queue(group_event(alert(service="ranker")))
    result, delivery = sender.attempt()
    assert (result.outcome, delivery.status, delivery.failures) == (SendOutcome.FAILED, DeliveryStatus.PENDING, 1)
    assert "refused" in result.error.lower()
    with SmtpServer(port=port) as server:
        sender.now = delivery.next_attempt_at
        result, delivery = sender.attempt()
        result_again = sender.destination.send(delivery)  # a crash after the 250: the same message again
    assert result.outcome is result_again.outcome is SendOutcome.DELIVERED
    first, second = (mail.message for mail in server.received)
    assert first["Message-ID"] == second["Message-ID"] == f"<{delivery.message_id}@alerts.example.com>"


def test_a_loopback_smarthost_needs_allow_private(sender_for):
    with SmtpServer() as server:
        sender = sender_for(email_config(server, allow_private=False))
        sender.queue(group_event(alert(service="ranker")))
        result, _ = sender.attempt()
    assert result.outcome is SendOutcome.REFUSED and "allow_private" in result.error
    assert server.received == []


def test_send_resolved_false_reports_a_resolve_delivered_without_sending(sender_for):
    with SmtpServer() as server:
        sender = sender_for(email_config(server, send_resolved=False))
        sender.queue(group_event(alert(service="ranker", status="resolved"), kind="resolved"))
        result, delivery = sender.attempt()
    assert delivery.status is DeliveryStatus.DELIVERED and server.received == []


def test_a_missing_password_file_fails_naming_the_file_only(tmp_path, sender_for):
    cert, key = self_signed_certificate(tmp_path)
    with SmtpServer(tls_context=server_tls_context(cert, key), credentials=("monitor", PASSWORD)) as server:
        sender = sender_for(email_config(server, tls_ca_file=str(cert), auth_username="monitor",
                                         auth_password_file=str(tmp_path / "absent")))
        sender.queue(group_event(alert(service="ranker")))
        result, _ = sender.attempt()
    assert result.outcome is SendOutcome.FAILED and str(tmp_path / "absent") in result.error


@pytest.mark.parametrize("smarthost, ok", [("smtp.example.com:587", True), ("[::1]:25", True),
                                           ("smtp.example.com", False), ("smtp.example.com:0", False),
                                           (":25", False), ("smtp.example.com:smtp", False)],
                         ids=["host and port", "a bracketed IPv6 address", "no port", "port 0", "no host",
                              "a service name instead of a port"])
def test_smarthost_must_be_host_and_port(smarthost, ok):
    assert (smarthost_problem(smarthost) is None) is ok


def test_a_non_ascii_password_is_refused_without_echoing_it(tmp_path, sender_for):
    cert, key = self_signed_certificate(tmp_path)
    secret = tmp_path / "smtp-password"
    secret.write_text("pässwörd-ünïcode")
    with SmtpServer(tls_context=server_tls_context(cert, key), credentials=("monitor", PASSWORD)) as server:
        sender = sender_for(email_config(server, tls_ca_file=str(cert), auth_username="monitor",
                                         auth_password_file=str(secret)))
        sender.queue(group_event(alert(service="ranker")))
        result, delivery = sender.attempt()
    assert result.outcome is SendOutcome.REFUSED and "not ASCII" in result.error
    assert "pässwörd" not in delivery.last_error and "ä" not in delivery.last_error


def test_one_groups_firing_and_resolved_emails_share_a_thread_and_differ_in_message_id():
    config = email_config("127.0.0.1:25")
    firing = render_email(group_event(alert(service="ranker")), config, message_id="msg_1")
    resolved = render_email(group_event(alert(service="ranker", status="resolved"), kind="resolved"), config,
                            message_id="msg_2")
    other = render_email(replace(group_event(alert(service="ranker")), group_key="{}:{alertname=\"Other\"}"),
                         config, message_id="msg_3")
    assert firing["References"] == resolved["References"] != other["References"]
    assert re.fullmatch(r"<grp_[0-9a-f]{26}@alerts\.example\.com>", firing["References"])
    assert firing["Message-ID"] != resolved["Message-ID"]


def test_a_server_that_never_answers_fails_at_the_timeout(sender_for):
    with socket.socket() as listener:  # accepts connections (the kernel's backlog) but never says 220
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        sender = sender_for(email_config(f"127.0.0.1:{listener.getsockname()[1]}", timeout=timedelta(seconds=1)))
        sender.queue(group_event(alert(service="ranker")))
        started = time.monotonic()
        result, delivery = sender.attempt()
        took = time.monotonic() - started
    assert (result.outcome, delivery.status) == (SendOutcome.FAILED, DeliveryStatus.PENDING)
    assert "timed out" in result.error and 0.9 < took < 5
