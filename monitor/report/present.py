"""How numbers read on the page: percentages, dollars, durations, times (Jinja2 filters)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

NO_DATA = "no data"


def format_percent(value: float | None, digits: int = 2) -> str:
    return NO_DATA if value is None else f"{value * 100:.{digits}f}%"


def format_signed_percent(value: float | None, digits: int = 1) -> str:
    return NO_DATA if value is None else f"{value * 100:+.{digits}f}%"


def format_usd(value: float | None, digits: int = 2) -> str:
    return NO_DATA if value is None else f"${value:,.{digits}f}"


def format_number(value: float | None, digits: int = 0) -> str:
    return NO_DATA if value is None else f"{value:,.{digits}f}"


def format_time(value: datetime | None) -> str:
    return "\N{EM DASH}" if value is None else value.astimezone(timezone.utc).strftime("%a %d %b %H:%M UTC")


def format_duration_short(value: timedelta | None) -> str:
    """`2h 05m`, `40m`, `3d 4h`: minutes resolution, the largest two units."""
    if value is None:
        return "\N{EM DASH}"
    minutes = round(value.total_seconds() / 60)
    sign = "-" if minutes < 0 else ""
    days, rest = divmod(abs(minutes), 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours}h"
    if hours:
        return f"{sign}{hours}h {mins:02d}m"
    return f"{sign}{mins}m"


FILTERS = {
    "percent": format_percent,
    "signed_percent": format_signed_percent,
    "usd": format_usd,
    "number": format_number,
    "time": format_time,
    "duration": format_duration_short,
}
