"""Email over SMTP (`email_configs`): multipart text + HTML, STARTTLS, optional AUTH.

Rendering is pure (`render_email`, `render_report_email`); `EmailDestination` only
sends. The SMTP conversation, as Alertmanager's email notifier holds it:
connect to `smarthost` (its addresses checked by the SSRF guard first, and the
socket opened to the checked address, so DNS cannot change the answer), EHLO
`hello`, STARTTLS when the server offers it, and AUTH when `auth_username` is set.
With `require_tls` (the default) a server that does not offer STARTTLS is never
sent to in clear, and a password is never sent over a connection without TLS.

Outcomes, for the outbox:

| what happened                                                  | outcome   |
|----------------------------------------------------------------|-----------|
| 2xx for every step                                             | DELIVERED |
| connection refused, reset or timed out; the server hung up     | FAILED    |
| a 4xx reply (421 busy, 450/451 try later, 452 full)            | FAILED    |
| a 5xx reply (535 auth failed, 550 mailbox unavailable, 554)    | REFUSED   |
| no STARTTLS with require_tls; AUTH with no TLS or no mechanism | REFUSED   |
| the server's certificate does not verify                       | REFUSED   |
| the smarthost resolves to a refused address (SSRF guard)       | REFUSED   |
| the password cannot be read (`auth_password_env/_file`)        | FAILED    |

SMTP's 4xx/5xx split is its own "transient / permanent" contract (RFC 5321
4.2.1): a 5xx will fail the same way again, so retrying it only delays the
error. Some recipients refused and others accepted is DELIVERED (a re-send would
duplicate the mail to those who got it); the refused ones are kept in the
delivery's progress.

Every message carries a `Message-ID` derived from the delivery's `message_id`,
the same on every attempt, so a re-send after a crash is recognisable as a
duplicate. Errors name the smarthost and the server's reply, never the password.
"""

from __future__ import annotations

import base64
import json
import hashlib
import re
import smtplib
import socket
import ssl
import time
from datetime import datetime
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime, formatdate
from typing import Any, Mapping
from urllib.parse import urljoin

from jinja2.sandbox import SandboxedEnvironment

from monitor.alerting.events import AlertGroupEvent, ReportEvent, event_from_json
from monitor.config import EmailConfig
from monitor.errors import MonitorError
from monitor.outputs import http_transport
from monitor.outputs.address_guard import BlockedAddressError, Resolver, checked_addresses, system_resolver
from monitor.outputs.clock import Clock
from monitor.outputs.message_templates import render_override
from monitor.outputs.outbox import Delivery
from monitor.outputs.results import SendOutcome, SendResult
from monitor.secrets import read_secret, redact
from monitor.timeutil import utc

# A subject is one line a mail client can show; RFC 5322 allows 998 characters a line.
MAX_SUBJECT_CHARS = 255
# The outbox body key holding the report page an announcement email carries.
REPORT_HTML_KEY = "html"
# ... and its images: Content-ID (without <>) -> base64 PNG.
REPORT_IMAGES_KEY = "images"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_SAFE_HREF = re.compile(r"^https?://", re.I)


class EmailRefused(MonitorError):
    """This email cannot be sent as configured (a 5xx, no TLS where required)."""


def _one_line(text: str) -> str:
    """Header-safe text: control characters (CR, LF: header injection) become one space."""
    return _CONTROL.sub(" ", text).strip()


def _sorted_values(labels: Mapping[str, str]) -> list[str]:
    """Label values as Alertmanager's SortedPairs orders them: alertname first, then by name."""
    names = sorted(labels, key=lambda name: (name != "alertname", name))
    return [labels[name] for name in names]


def email_subject(event: AlertGroupEvent) -> str:
    """Alertmanager's default subject: `[FIRING:2] HighLatency ranker (page team-a)`."""
    status = "FIRING" if event.status == "firing" else "RESOLVED"
    prefix = f"[{status}:{event.firing_count}]" if status == "FIRING" else f"[{status}]"
    parts = [prefix, " ".join(_sorted_values(event.group_labels))]
    extra = {k: v for k, v in event.common_labels.items() if k not in event.group_labels}
    if extra:
        parts.append("(" + " ".join(_sorted_values(extra)) + ")")
    subject = _one_line(" ".join(p for p in parts if p))
    return subject if len(subject) <= MAX_SUBJECT_CHARS else subject[:MAX_SUBJECT_CHARS - 1] + "\N{HORIZONTAL ELLIPSIS}"


def _link_items(links: Mapping[str, str]) -> list[tuple[str, str, bool]]:
    """(name, target, is_url): only http(s) targets become links; the rest (a command line) is text."""
    return [(name, target, bool(_SAFE_HREF.match(target))) for name, target in sorted(links.items()) if target]


_HTML_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body style="font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;color:#1d2430;font-size:14px">
<h2 style="margin:0 0 8px;color:{{ '#cf222e' if firing else '#1a7f37' }}">{{ subject }}</h2>
{% if links %}<p>{% for name, target, is_url in links %}{% if is_url %}<a href="{{ target }}">{{ name }}</a>{% else %}{{ name }}: <code>{{ target }}</code>{% endif %}{% if not loop.last %} · {% endif %}{% endfor %}</p>{% endif %}
{% for alert in alerts %}
<table style="border-collapse:collapse;margin:12px 0;width:100%;max-width:760px" cellpadding="4">
<tr><th colspan="2" style="text-align:left;background:#f4f6f9;border-bottom:1px solid #d9dee5">[{{ alert.status | upper }}] {{ alert.alertname }}</th></tr>
{% if alert.annotations.summary %}<tr><td colspan="2"><strong>{{ alert.annotations.summary }}</strong></td></tr>{% endif %}
{% if alert.annotations.description %}<tr><td colspan="2">{{ alert.annotations.description }}</td></tr>{% endif %}
<tr><td style="color:#5b6573;white-space:nowrap">Started</td><td>{{ alert.starts_at or "unknown" }}</td></tr>
{% if not alert.firing and alert.ends_at %}<tr><td style="color:#5b6573">Resolved</td><td>{{ alert.ends_at }}</td></tr>{% endif %}
{% if alert.value is not none %}<tr><td style="color:#5b6573">Value</td><td>{{ alert.value }}</td></tr>{% endif %}
{% for name, value in alert.labels | dictsort %}<tr><td style="color:#5b6573">{{ name }}</td><td><code>{{ value }}</code></td></tr>
{% endfor %}
{% for name, value in alert.annotations | dictsort %}{% if name not in ("summary", "description") %}<tr><td style="color:#5b6573">{{ name }}</td><td>{% if value is match_url %}<a href="{{ value }}">{{ value }}</a>{% else %}{{ value }}{% endif %}</td></tr>
{% endif %}{% endfor %}
</table>
{% endfor %}
<p style="color:#5b6573;font-size:12px">Sent by monitor for receiver {{ receiver }} (group {{ group_key }}).</p>
</body></html>
"""


def _environment() -> SandboxedEnvironment:
    environment = SandboxedEnvironment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    environment.tests["match_url"] = lambda value: isinstance(value, str) and bool(_SAFE_HREF.match(value))
    return environment


_HTML = _environment().from_string(_HTML_TEMPLATE)


def email_text(event: AlertGroupEvent, subject: str) -> str:
    """The text/plain part: what the HTML part says, for clients and filters that read text."""
    lines = [subject, ""]
    for name, target, _ in _link_items(event.links):
        lines.append(f"{name}: {target}")
    if event.links:
        lines.append("")
    for alert in event.alerts:
        lines.append(f"[{alert.status.upper()}] {alert.alertname}")
        for key in ("summary", "description"):
            if alert.annotations.get(key):
                lines.append(f"  {alert.annotations[key]}")
        lines.append(f"  started: {alert.starts_at or 'unknown'}")
        if not alert.firing and alert.ends_at:
            lines.append(f"  resolved: {alert.ends_at}")
        if alert.value is not None:
            lines.append(f"  value: {alert.value}")
        lines += [f"  {name} = {value}" for name, value in sorted(alert.labels.items())]
        lines += [f"  {name}: {value}" for name, value in sorted(alert.annotations.items())
                  if name not in ("summary", "description")]
        lines.append("")
    lines.append(f"Sent by monitor for receiver {event.receiver} (group {event.group_key}).")
    return "\n".join(lines) + "\n"


def email_html(event: AlertGroupEvent, subject: str) -> str:
    """The built-in text/html part: every label and annotation escaped, only http(s) links clickable."""
    return _HTML.render(subject=subject, firing=event.status == "firing", links=_link_items(event.links),
                        alerts=event.alerts, receiver=event.receiver, group_key=event.group_key)


# Python's header folder, at its default 78 columns, breaks a long subject right after
# "Subject:" (a subject starting "[FIRING:1] ModelCostPerMillionTokensIncrease ..."), and
# readers then show it with a leading space. RFC 5322 allows 998: fold only beyond that.
_POLICY = email_policy.default.clone(max_line_length=998)


def _envelope(config: EmailConfig, subject: str, created_at: str, message_id: str | None) -> EmailMessage:
    message = EmailMessage(policy=_POLICY)
    message["Subject"] = subject
    message["From"] = _one_line(config.from_)
    message["To"] = ", ".join(_one_line(address) for address in config.to)
    message["Date"] = _date_header(created_at)
    if message_id:
        message["Message-ID"] = message_id_header(message_id, config)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-responders must not answer
    return message


def render_email(event: AlertGroupEvent, config: EmailConfig, message_id: str | None = None) -> EmailMessage:
    """The email for one alert group notification: multipart/alternative, text then HTML."""
    subject = email_subject(event)
    message = _envelope(config, subject, event.created_at, message_id)
    # One alert group's emails (firing, repeats, resolved) share a References id, so mail
    # clients that thread by it (Thunderbird, Outlook, Apple Mail) show them as one thread.
    message["References"] = group_thread_id(event, config)
    message.set_content(email_text(event, subject))
    html = render_override(config.template, event, integration="email", escape="html",
                           fallback=email_html(event, subject))
    message.add_alternative(html, subtype="html")
    return message


_RELATIVE_HREF = re.compile(r'\s+href="(?![a-z][a-z0-9+.-]*:|#)([^"]*)"', re.I)


def report_html_for_email(html: str, report_url: str | None) -> str:
    """The report page as an email body: its relative links (the archive, report.json) point at
    `report_url` when set, and are dropped otherwise (an email has no directory to be relative to)."""
    def absolute(match: re.Match[str]) -> str:
        if report_url:
            return f' href="{urljoin(report_url if report_url.endswith("/") else report_url + "/", match[1])}"'
        return ""
    return _RELATIVE_HREF.sub(absolute, html)


def render_report_email(event: ReportEvent, config: EmailConfig, html: str | None,
                        message_id: str | None = None, images: Mapping[str, bytes] | None = None) -> EmailMessage:
    """The weekly report announcement: the report page itself as the HTML part, its chart `images`
    (Content-ID -> PNG) as related parts it references by `cid:`, and the headline and link as the
    text part. multipart/alternative [text/plain, multipart/related [text/html, image/png...]]."""
    subject = _one_line(f"ML service review: {event.title or event.week}")
    message = _envelope(config, subject, event.created_at, message_id)
    lines = [subject, ""] + [f"- {sentence}" for sentence in event.headline]
    if event.url:
        lines += ["", f"Full report: {event.url}"]
    if not html:
        lines += ["", "(The report page could not be read when this email was queued.)"]
    message.set_content("\n".join(lines) + "\n")
    if html:
        message.add_alternative(report_html_for_email(html, event.url), subtype="html")
        html_part = message.get_body(("html",))
        for number, (content_id, png) in enumerate(sorted((images or {}).items()), start=1):
            html_part.add_related(png, maintype="image", subtype="png", cid=f"<{content_id}>",
                                  filename=f"chart-{number}.png", disposition="inline")
    return message


def message_id_header(message_id: str, config: EmailConfig) -> str:
    """`<msg_…@domain>` for a delivery's stable id; the domain is the sender's."""
    domain = config.from_.rpartition("@")[2].strip(" >") or config.hello
    domain = re.sub(r"[^A-Za-z0-9.-]", "", domain) or "monitor.invalid"
    return f"<{message_id}@{domain}>"


def group_thread_id(event: AlertGroupEvent, config: EmailConfig) -> str:
    """`<grp_…@domain>`: the same for every notification of one alert group on one receiver."""
    digest = hashlib.sha256(f"{event.receiver}\x00{event.group_key}".encode()).hexdigest()[:26]
    return message_id_header(f"grp_{digest}", config)


def _date_header(created_at: str) -> str:
    try:
        return format_datetime(utc(datetime.fromisoformat(created_at.replace("Z", "+00:00"))))
    except (ValueError, TypeError):
        return formatdate(usegmt=True)


def _split_smarthost(smarthost: str) -> tuple[str, int]:
    host, _, port = smarthost.rpartition(":")
    return (host[1:-1] if host.startswith("[") else host), int(port)


class _PinnedSMTP(smtplib.SMTP):
    """smtplib's client, connected to the address the SSRF guard checked while keeping the host
    name for EHLO and certificate verification (smtplib would resolve the name again)."""

    def __init__(self, host: str, address: str, **kwargs: Any):
        self._address = address
        super().__init__(**kwargs)
        self._host = host  # what starttls() verifies the certificate against (smtplib sets it only here)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((self._address, port), timeout, self.source_address)


class _Deadline:
    """One total deadline over the conversation: each reply waits at most what is left."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.ends = time.monotonic() + seconds

    def left(self) -> float:
        left = self.ends - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no complete SMTP conversation within {self.seconds:g}s")
        return left

    def arm(self, smtp: smtplib.SMTP) -> None:
        if smtp.sock is not None:
            smtp.sock.settimeout(self.left())


class EmailDestination:
    """Sends one receiver's email integration: alert group notifications and report announcements."""

    def __init__(self, name: str, config: EmailConfig, resolver: Resolver = system_resolver,
                 clock: Clock | None = None):
        self.name = name
        self.config = config
        self.resolver = resolver
        self.clock = clock
        self.host, self.port = _split_smarthost(config.smarthost)

    def send(self, delivery: Delivery) -> SendResult:
        try:
            event = event_from_json(delivery.event_type, delivery.body)
        except (ValueError, TypeError, AttributeError) as exc:
            return SendResult(SendOutcome.REFUSED, error=f"email: delivery {delivery.id} cannot be decoded: "
                                                          f"{type(exc).__name__}")
        try:
            message = self._message(delivery, event)
        except (ValueError, TypeError) as exc:  # an address or header the email library will not write
            return SendResult(SendOutcome.REFUSED, error=f"email: cannot build the message: {exc}")
        if isinstance(message, SendResult):
            return message
        return self.send_message(message)

    def _message(self, delivery: Delivery, event: object) -> EmailMessage | SendResult:
        if isinstance(event, ReportEvent):
            payload = json.loads(delivery.body)  # the event plus the email copy of the page
            html = payload.get(REPORT_HTML_KEY)
            try:
                images = {str(cid): base64.b64decode(data, validate=True)
                          for cid, data in (payload.get(REPORT_IMAGES_KEY) or {}).items()}
            except (ValueError, TypeError, AttributeError):
                return SendResult(SendOutcome.REFUSED, error=f"email: delivery {delivery.id}: its chart images "
                                                              f"are not base64")
            return render_report_email(event, self.config, html if isinstance(html, str) else None,
                                       delivery.message_id, images)
        if isinstance(event, AlertGroupEvent):
            if event.status == "resolved" and not self.config.send_resolved:
                return SendResult.delivered(None)  # Alertmanager: not sent, and nothing to retry
            return render_email(event, self.config, delivery.message_id)
        return SendResult(SendOutcome.REFUSED, error=f"email: cannot send a {delivery.event_type} event")

    def send_message(self, message: EmailMessage) -> SendResult:
        """One SMTP conversation delivering `message` to `config.to`."""
        where = f"email {self.config.smarthost}"
        try:
            refused = self._converse(message)
        except BlockedAddressError as exc:
            return SendResult(SendOutcome.REFUSED, error=f"{where}: {exc}")
        except EmailRefused as exc:
            return SendResult(SendOutcome.REFUSED, error=f"{where}: {exc}")
        except MonitorError as exc:  # the password cannot be read: names where, never what
            return SendResult(SendOutcome.FAILED, error=f"{where}: {exc}")
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            outcome = SendOutcome.REFUSED if all(code >= 500 for code in codes) else SendOutcome.FAILED
            replies = "; ".join(f"{rcpt}: {code} {_reply_text(text)}" for rcpt, (code, text)
                                in sorted(exc.recipients.items()))
            return SendResult(outcome, min(codes, default=None),
                              error=redact(f"{where}: recipients refused: {replies}"))
        except smtplib.SMTPResponseException as exc:
            outcome = SendOutcome.REFUSED if exc.smtp_code >= 500 else SendOutcome.FAILED
            return SendResult(outcome, exc.smtp_code,
                              error=redact(f"{where}: {exc.smtp_code} {_reply_text(exc.smtp_error)}"))
        except smtplib.SMTPNotSupportedError as exc:
            return SendResult(SendOutcome.REFUSED, error=redact(f"{where}: {exc}"))
        except ssl.SSLCertVerificationError as exc:
            return SendResult(SendOutcome.REFUSED,
                              error=f"{where}: the server's TLS certificate does not verify: {exc.verify_message}")
        except UnicodeEncodeError:  # smtplib speaks ASCII: never echo the text (it may be the password)
            return SendResult(SendOutcome.REFUSED, error=f"{where}: the user name, password or an address is not "
                                                          f"ASCII, which this SMTP conversation cannot carry")
        except smtplib.SMTPServerDisconnected as exc:
            return SendResult(SendOutcome.FAILED, error=f"{where}: the server closed the connection ({exc})")
        except (OSError, smtplib.SMTPException) as exc:
            reason = http_transport.describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
            return SendResult(SendOutcome.FAILED, error=redact(f"{where}: no answer: {reason}"))
        if refused:
            return SendResult(SendOutcome.DELIVERED, 250, progress={"refused_recipients": refused})
        return SendResult.delivered(250)

    def _converse(self, message: EmailMessage) -> dict[str, str]:
        config = self.config
        addresses = checked_addresses(self.host, self.port, config.allow_private, self.resolver)
        deadline = _Deadline(config.timeout.total_seconds())
        last_error: OSError | None = None
        for address in addresses:
            smtp = _PinnedSMTP(self.host, address, local_hostname=config.hello, timeout=deadline.left())
            try:
                smtp.connect(self.host, self.port)
            except OSError as exc:
                last_error = exc
                smtp.close()
                continue
            try:
                return self._deliver(smtp, message, deadline)
            finally:
                try:
                    smtp.quit()
                except (OSError, smtplib.SMTPException):
                    smtp.close()
        raise last_error or OSError("no address to connect to")

    def _deliver(self, smtp: smtplib.SMTP, message: EmailMessage, deadline: _Deadline) -> dict[str, str]:
        config = self.config
        deadline.arm(smtp)
        smtp.ehlo(config.hello)
        tls = False
        if smtp.has_extn("starttls"):
            deadline.arm(smtp)
            smtp.starttls(context=self._tls_context())
            deadline.arm(smtp)
            smtp.ehlo(config.hello)
            tls = True
        elif config.require_tls:
            raise EmailRefused("the server does not offer STARTTLS and require_tls is set: not sending in clear "
                               "(set require_tls: false only for a relay on a trusted network)")
        if config.auth_username:
            if not tls:
                raise EmailRefused("AUTH over a connection without TLS would send the password in clear: refused")
            if not smtp.has_extn("auth"):
                raise EmailRefused("auth_username is set but the server offers no AUTH")
            password = read_secret(config.auth_password_env, config.auth_password_file, "email auth_password")
            deadline.arm(smtp)
            smtp.login(config.auth_username, password)
        deadline.arm(smtp)
        refused = smtp.send_message(message, from_addr=_bare_address(config.from_),
                                    to_addrs=[_bare_address(a) for a in config.to])
        return {rcpt: f"{code} {_reply_text(text)}" for rcpt, (code, text) in refused.items()}

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.config.tls_ca_file) if self.config.tls_ca_file \
            else ssl.create_default_context()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


def _bare_address(address: str) -> str:
    """The addr-spec of `Name <a@b>` (what MAIL FROM / RCPT TO take)."""
    match = re.search(r"<([^<>]+)>\s*$", address)
    return _one_line(match[1] if match else address)


def _reply_text(text: bytes | str) -> str:
    value = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return _one_line(value)[:300]


__all__ = ["EmailDestination", "render_email", "render_report_email", "email_subject", "report_html_for_email",
           "message_id_header", "REPORT_HTML_KEY", "REPORT_IMAGES_KEY"]
