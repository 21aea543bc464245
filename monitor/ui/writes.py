"""Silence writes (create from the /alerts form or the API, expire), behind `monitor.ui.auth`."""

from __future__ import annotations

from werkzeug.routing import Rule

from monitor.ui.app import Endpoint


def routes() -> list[tuple[Rule, Endpoint]]:
    return []
