"""Who may write through the web UI and its API, and the CSRF token its forms carry.

Reads are open. A write (creating or expiring a silence) is allowed only when `http.auth` is
configured, and then only to a caller it authenticates:

- `Authorization: Bearer <token>` equal to the configured token (compared in constant time):
  the writer is recorded as "token" (with the form's or the body's author beside it);
- the user header (`http.auth.user_header`, default X-Forwarded-User) on a connection whose
  peer address (REMOTE_ADDR) is one of `http.auth.trusted_proxies`: the writer is that user.
  The header from any other peer is ignored: anyone can send it.

Without `http.auth` every write is refused, on a loopback listener too: the issue says writes
need it, and a daemon on a shared host's loopback is reachable by every local user. The
refusal says what to configure.

CSRF. A browser sends a proxy's session cookie (or any header a proxy adds) with a forged
cross-site form post as readily as with a real one, so forms also carry a token the forging
page cannot know: HMAC-SHA256, under a key drawn at random when the process starts, of the
writer's identity and the time the token was issued (OWASP's HMAC-based token pattern, the
identity standing in for a session). A page fetched by someone else, or anonymously, yields a
token bound to that other identity, useless for forging this user's post. Tokens last
`CSRF_TOKEN_LIFETIME`, and a restart invalidates them (the form says to reload the page).
As defence in depth, a request whose Origin (or, without one, Referer) names another host is
refused. An `Origin: null` (sent by a page under `Referrer-Policy: no-referrer`) says nothing
about the origin, so the token alone decides. API calls with the bearer token need no CSRF
token: a browser never adds that header to a cross-site request by itself, and the API reads
only `application/json` bodies, which no cross-site form can send without a CORS preflight
(this server answers none).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from werkzeug.wrappers import Request

from monitor.addresses import parse_listen
from monitor.config import HttpAuthConfig
from monitor.secrets import SecretError, read_secret

log = logging.getLogger(__name__)

CSRF_TOKEN_LIFETIME_S = 24 * 3600
CSRF_FIELD = "csrf_token"
# A user name a proxy passes on: long enough for any directory, short enough to show.
MAX_USER_LENGTH = 256

# Drawn once per process: restarting the daemon invalidates every open form.
_PROCESS_KEY = secrets.token_bytes(32)


class WriteRefused(Exception):
    """A write the policy refuses: the HTTP status and one line saying why (never a secret)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Via(Enum):
    TOKEN = "token"
    PROXY = "proxy"


@dataclass(frozen=True)
class Writer:
    """The authenticated caller of a write."""

    name: str    # "token" for the bearer token, else the proxy's user
    via: Via

    def recorded_as(self, author: str | None) -> str:
        """What a silence's `created_by` records: the authenticated writer, and the author they
        typed where that says more ("alice via token"; "alice" from a proxy that said alice)."""
        author = (author or "").strip()
        if not author or author == self.name:
            return self.name
        return f"{author} via {self.name}"


def is_loopback_listener(listen: str) -> bool:
    """Whether `listen` (HOST:PORT) binds only a loopback address (`:PORT` binds every interface)."""
    try:
        host, _ = parse_listen(listen)
    except ValueError:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def writes_disabled_message(listen: str) -> str:
    where = "loopback" if is_loopback_listener(listen) else "a non-loopback address"
    return (f"writes are disabled: http.auth is not configured (this UI listens on {where}, {listen}); "
            f"set http.auth.bearer_token_env/bearer_token_file or http.auth.trusted_proxies to create "
            f"or expire silences")


def read_auth_secret(auth: HttpAuthConfig | None) -> None:
    """Read the configured bearer token once, so a missing one stops startup (or a reload) with one
    line, rather than every write later; raises SecretError naming where it was looked for."""
    if auth is not None and (auth.bearer_token_env or auth.bearer_token_file):
        read_secret(auth.bearer_token_env, auth.bearer_token_file, "http.auth bearer_token")


def _peer(request: Request) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address((request.remote_addr or "").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def peer_is_trusted_proxy(auth: HttpAuthConfig, request: Request) -> bool:
    peer = _peer(request)
    if peer is None:
        return False
    return any(peer in ipaddress.ip_network(proxy.strip()) for proxy in auth.trusted_proxies)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def authenticate(auth: HttpAuthConfig, request: Request, *, log_ignored: bool = True) -> Writer:
    """The caller's identity; WriteRefused(401) when there is none, or a wrong token was sent.

    A wrong bearer token is refused even when a trusted proxy also names a user: credentials
    that fail are a mistake (or an attack) to report, not to fall back from."""
    presented = _bearer(request)
    if presented is not None:
        if not (auth.bearer_token_env or auth.bearer_token_file):
            raise WriteRefused(401, "bearer tokens are not accepted here (http.auth has no bearer_token_env "
                                    "or bearer_token_file)")
        try:
            expected = read_secret(auth.bearer_token_env, auth.bearer_token_file, "http.auth bearer_token")
        except SecretError as exc:
            log.error("write refused: %s", exc)
            raise WriteRefused(503, f"writes are unavailable: {exc}") from None
        if not hmac.compare_digest(presented.encode(), expected.encode()):
            raise WriteRefused(401, "the bearer token is not valid")
        return Writer("token", Via.TOKEN)
    user = request.headers.get(auth.user_header)
    if user is not None and auth.trusted_proxies:
        if peer_is_trusted_proxy(auth, request):
            return Writer(_user_name(auth, user), Via.PROXY)
        if log_ignored:  # a write's refusal, not every page view
            log.info("ignored %s from %s: not a trusted proxy", auth.user_header, request.remote_addr)
    raise WriteRefused(401, "authentication required: send Authorization: Bearer <token>"
                       + (f", or come through a trusted proxy that sets {auth.user_header}"
                          if auth.trusted_proxies else ""))


def _user_name(auth: HttpAuthConfig, user: str) -> str:
    user = user.strip()
    if not user:
        raise WriteRefused(401, f"the trusted proxy sent an empty {auth.user_header}")
    if len(user) > MAX_USER_LENGTH or any(ord(ch) < 32 or ord(ch) == 127 for ch in user):
        raise WriteRefused(400, f"{auth.user_header} must be a user name of at most {MAX_USER_LENGTH} "
                                f"printable characters")
    return user


def _identity(auth: HttpAuthConfig | None, request: Request) -> str:
    """What a CSRF token is bound to: the authenticated writer, or "anonymous"."""
    if auth is None:
        return "anonymous"
    try:
        writer = authenticate(auth, request, log_ignored=False)
    except WriteRefused:
        return "anonymous"
    if writer.via is Via.TOKEN:
        # Bound to the token itself (hashed: the MAC input never holds a secret), so a rotated
        # token invalidates the forms issued under the old one.
        return "token:" + hashlib.sha256(_bearer(request).encode()).hexdigest()
    return "user:" + writer.name


def _mac(identity: str, issued: int) -> str:
    return hmac.new(_PROCESS_KEY, f"{identity}\n{issued}".encode(), hashlib.sha256).hexdigest()


def csrf_token(context: Any, request: Request) -> str:
    """The token a form rendered for this request carries in its hidden `csrf_token` field."""
    issued = int(time.time())
    return f"{issued:x}.{_mac(_identity(context.config().http.auth, request), issued)}"


def check_csrf(auth: HttpAuthConfig, request: Request, token: str | None) -> None:
    """WriteRefused(403) unless `token` was issued by this process, for this writer, recently."""
    if not token:
        raise WriteRefused(403, "the form has no CSRF token: submit it from the page this server rendered")
    issued_text, _, mac = token.partition(".")
    try:
        issued = int(issued_text, 16)
    except ValueError:
        raise WriteRefused(403, "the CSRF token is malformed: reload the page and submit again") from None
    expected = _mac(_identity(auth, request), issued)
    if not hmac.compare_digest(mac.encode(), expected.encode()):
        raise WriteRefused(403, "the CSRF token does not match (the daemon restarted, or the page was "
                                "rendered for someone else): reload the page and submit again")
    if not 0 <= time.time() - issued <= CSRF_TOKEN_LIFETIME_S:
        raise WriteRefused(403, "the CSRF token has expired: reload the page and submit again")


def check_origin(auth: HttpAuthConfig, request: Request) -> None:
    """WriteRefused(403) when the browser says the request comes from a page on another host."""
    origin = request.headers.get("Origin")
    if origin is None:
        origin = request.headers.get("Referer")
    if origin is None or origin == "null":
        return  # not a browser, or a browser that keeps the origin to itself: the other checks decide
    hosts = {request.host.lower()}
    if peer_is_trusted_proxy(auth, request):
        hosts.update(h.strip().lower() for h in request.headers.get("X-Forwarded-Host", "").split(",") if h.strip())
    try:
        source = urlsplit(origin).netloc.lower()
    except ValueError:
        source = ""
    if source not in hosts:
        raise WriteRefused(403, "cross-origin write refused: the request comes from a page on another host")


def authorize_write(context: Any, request: Request, *, form: bool) -> Writer:
    """The writer of this request, after every check the policy makes; raises WriteRefused.

    `form`: a browser form post, which must also carry a valid CSRF token in `csrf_token`."""
    auth: HttpAuthConfig | None = context.config().http.auth
    if auth is None:
        raise WriteRefused(403, writes_disabled_message(context.listen))
    writer = authenticate(auth, request)
    check_origin(auth, request)
    if form:
        check_csrf(auth, request, request.form.get(CSRF_FIELD))
    return writer
