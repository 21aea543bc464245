"""Read secrets named by `*_env` / `*_file` config keys, without ever echoing them."""

from __future__ import annotations

import os
from pathlib import Path

from monitor.errors import MonitorError


# Every secret value read in this process, so log formatters can redact it even
# if a library were to echo it (defence in depth: we never log secrets ourselves).
_READ_SECRETS: set[str] = set()


def known_secret_values() -> frozenset[str]:
    return frozenset(_READ_SECRETS)


class SecretError(MonitorError):
    """A secret could not be read; the message names where it was looked for, never a value."""


def read_secret(env: str | None, file: str | None, what: str) -> str:
    """The secret from the environment variable `env` or the file `file` (trailing newline stripped)."""
    if env:
        value = os.environ.get(env)
        if not value:
            raise SecretError(f"{what}: environment variable {env} is not set or empty")
        _READ_SECRETS.add(value)
        return value
    if file:
        try:
            value = Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretError(f"{what}: cannot read secret file {file}: {exc.strerror}") from None
        if not value:
            raise SecretError(f"{what}: secret file {file} is empty")
        _READ_SECRETS.add(value)
        return value
    raise SecretError(f"{what}: no secret configured (set {what}_env or {what}_file)")
