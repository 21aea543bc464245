"""The read pages (/, /slos, /slos/<id>, /alerts, /models/<name>, /reports) and their JSON twins."""

from __future__ import annotations

from werkzeug.routing import Rule

from monitor.ui.app import Endpoint


def routes() -> list[tuple[Rule, Endpoint]]:
    return []
