"""Read secrets named by `*_env` / `*_file` config keys, without ever echoing them.

Every value read here is remembered so that `redact()` can scrub it from any text
leaving the process (log lines, error lines, JSON output): defence in depth, since
we never print secrets ourselves but a library might. A secret can surface in
other spellings than its raw one (JSON-escaped in a JSON log line, `repr`-escaped in
an exception, percent-encoded inside a URL), so each spelling is scrubbed, and so is
the userinfo (`user:password@`) of any URL, whether or not it came from a secret.
"""

from __future__ import annotations

import json
import os
import re
import threading
import unicodedata
from pathlib import Path
from urllib.parse import quote, quote_plus

from monitor.errors import MonitorError

REDACTED = "[redacted]"

# A secret shorter than this is not scrubbed from text: replacing every "1" in a log
# line would destroy it and reveal the secret by its absence anyway.
MIN_REDACTABLE_LENGTH = 4

# scheme://userinfo@host: the userinfo is everything up to the last "@" before the
# path, and contains neither "/" nor whitespace nor quotes.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@\"'<>]+@")

_lock = threading.Lock()
_READ_SECRETS: set[str] = set()
_SPELLINGS: tuple[str, ...] = ()


class SecretError(MonitorError):
    """A secret could not be read; the message names where it was looked for, never a value."""


def known_secret_values() -> frozenset[str]:
    return frozenset(_READ_SECRETS)


def remember_secret(value: str) -> None:
    """Scrub `value` (in every spelling) from whatever `redact()` sees from now on."""
    global _SPELLINGS
    if len(value) < MIN_REDACTABLE_LENGTH:
        return
    with _lock:
        if value in _READ_SECRETS:
            return
        _READ_SECRETS.add(value)
        spellings = set(_SPELLINGS)
        spellings.update(_spellings(value))
        # Longest first, so a spelling that contains another is replaced whole.
        _SPELLINGS = tuple(sorted((s for s in spellings if len(s) >= MIN_REDACTABLE_LENGTH), key=len, reverse=True))


def _spellings(value: str) -> set[str]:
    return {
        value,
        json.dumps(value)[1:-1],                      # JSON string body
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],                            # Python repr body (exception text, %r)
        value.encode("unicode_escape").decode("ascii"),
        quote(value, safe=""),                        # percent-encoded, e.g. inside a URL
        quote(value),
        quote_plus(value),
    }


def redact(text: str) -> str:
    """`text` with every known secret (in any spelling) and any URL userinfo replaced."""
    for spelling in _SPELLINGS:
        if spelling in text:
            text = text.replace(spelling, REDACTED)
    return _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)


def _control_character(value: str) -> str | None:
    for char in value:
        if unicodedata.category(char) == "Cc":
            return {"\n": "a newline", "\r": "a carriage return", "\t": "a tab"}.get(
                char, f"control character U+{ord(char):04X}")
    return None


def read_secret(env: str | None, file: str | None, what: str) -> str:
    """The secret from the environment variable `env` or the file `file`.

    Whitespace around a file's value (its trailing newline) is stripped. A value with a
    control character inside (an embedded newline, say) is refused, naming the variable
    or file but never the value: such a value would corrupt an HTTP header, and would
    be echoed in escaped forms by the libraries that reject it.
    """
    if env:
        value = os.environ.get(env)
        if not value:
            raise SecretError(f"{what}: environment variable {env} is not set or empty")
        if (found := _control_character(value)) is not None:
            raise SecretError(f"{what}: environment variable {env} contains {found}; "
                              f"a secret must be one line of printable text")
        remember_secret(value)
        return value
    if file:
        try:
            value = Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretError(f"{what}: cannot read secret file {file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise SecretError(f"{what}: secret file {file} is not UTF-8 text") from None
        if not value:
            raise SecretError(f"{what}: secret file {file} is empty")
        if (found := _control_character(value)) is not None:
            raise SecretError(f"{what}: secret file {file} contains {found} inside its value; "
                              f"a secret must be one line of printable text")
        remember_secret(value)
        return value
    raise SecretError(f"{what}: no secret configured (set {what}_env or {what}_file)")
