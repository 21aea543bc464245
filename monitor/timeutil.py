"""The one time helper: aware UTC datetimes in, RFC 3339 `...Z` strings out.

Every module takes `now` as an argument (pure core); these only normalise and format.
"""

from __future__ import annotations

from datetime import datetime, timezone


def utc(at: datetime) -> datetime:
    """`at` as an aware UTC datetime; a naive datetime is taken to be UTC already."""
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


def utc_now() -> datetime:
    """The current time, aware, in UTC (inject a clock where tests need one)."""
    return datetime.now(timezone.utc)


def iso_z(at: datetime) -> str:
    """RFC 3339 with a `Z` suffix, e.g. 2026-12-01T18:00:00Z (microseconds kept when present)."""
    return utc(at).isoformat().replace("+00:00", "Z")


def from_unix(unix_s: float) -> datetime:
    """An aware UTC datetime from Unix seconds."""
    return datetime.fromtimestamp(unix_s, timezone.utc)
