"""A real SMTP server on loopback for the email receiver's tests: aiosmtpd on its own event loop thread.

Not a stand-in: aiosmtpd speaks SMTP (EHLO, STARTTLS, AUTH PLAIN/LOGIN, the
reply codes) as a mail server does. Each accepted message is kept as received
(raw bytes), with what the session looked like: TLS or not, who authenticated
and with which mechanism. A test can make recipients answer a code (550) or DATA
answer one (451), and can generate a self-signed certificate for STARTTLS.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    tls: bool
    auth_login: str | None
    auth_mechanism: str | None

    @property
    def message(self) -> EmailMessage:
        return BytesParser(policy=policy.default).parsebytes(self.raw)  # type: ignore[return-value]


@dataclass
class _Handler:
    received: list[ReceivedMail]
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd's name)
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.data_reply:
            return self.data_reply
        auth = session.auth_data if isinstance(session.auth_data, dict) else {}
        self.received.append(ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos),
                                          bytes(envelope.original_content), bool(session.ssl), auth.get("login"),
                                          auth.get("mechanism")))
        return "250 Message accepted for delivery"


class SmtpServer:
    """`with SmtpServer(...) as server:` an SMTP server on 127.0.0.1:`server.port`."""

    def __init__(self, *, tls_context: ssl.SSLContext | None = None, credentials: tuple[str, str] | None = None,
                 exclude_mechanisms: tuple[str, ...] = (), port: int = 0):
        self.received: list[ReceivedMail] = []
        self.handler = _Handler(self.received)
        self.tls_context = tls_context
        self.credentials = credentials
        self.exclude_mechanisms = exclude_mechanisms
        self.auth_attempts: list[tuple[str, str]] = []  # (mechanism, login)
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="smtp-server", daemon=True)
        self._server: asyncio.AbstractServer | None = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if not isinstance(auth_data, LoginPassword) or self.credentials is None:
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.auth_attempts.append((mechanism, login))
        if (login, password) == self.credentials:
            return AuthResult(success=True, auth_data={"login": login, "mechanism": mechanism})
        return AuthResult(success=False, handled=False)

    def _protocol(self) -> SMTP:
        kwargs = {}
        if self.credentials is not None:
            kwargs.update(authenticator=self._authenticate, auth_exclude_mechanism=list(self.exclude_mechanisms))
        return SMTP(self.handler, hostname="smtp.test", tls_context=self.tls_context, auth_require_tls=True,
                    loop=self._loop, **kwargs)

    def __enter__(self) -> "SmtpServer":
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            self._loop.create_server(self._protocol, "127.0.0.1", self.port, reuse_address=True), self._loop)
        self._server = future.result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc_info) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            await self._server.wait_closed()
        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    @property
    def smarthost(self) -> str:
        return f"127.0.0.1:{self.port}"


def unused_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """(cert.pem, key.pem) for 127.0.0.1 and localhost, valid for a day; the cert is its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "monitor test SMTP server")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                               x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context
