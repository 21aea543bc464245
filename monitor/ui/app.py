"""The UI's WSGI application: one routing table, built from the read and write pages.

`make_ui_app(context)` is mounted by the daemon's HTTP server for every path that is not
/metrics, /healthz or /readyz.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from monitor.config import Config
from monitor.store import StateStore
from monitor.timeutil import utc_now

log = logging.getLogger(__name__)


@dataclass
class UiContext:
    """What every page may read: the store, the config in force (it changes on reload) and the clock.

    `listen` is the address the server is bound to: writes are refused on a non-loopback
    listener with no `http.auth` configured."""
    store: StateStore
    config: Callable[[], Config]
    listen: str = "127.0.0.1:9464"
    clock: Callable[[], datetime] = field(default=utc_now)


# An endpoint: (context, request, **url values) -> Response.
Endpoint = Callable[..., Response]


def make_ui_app(context: UiContext) -> Callable:
    """The WSGI app serving every read and write route."""
    from monitor.ui import pages, writes

    routes: list[tuple[Rule, Endpoint]] = [*pages.routes(), *writes.routes()]
    url_map = Map([rule for rule, _ in routes], strict_slashes=False)
    endpoints = {rule.endpoint: endpoint for rule, endpoint in routes}

    @Request.application
    def application(request: Request) -> Response:
        adapter = url_map.bind_to_environ(request.environ)
        try:
            name, values = adapter.match()
            return endpoints[name](context, request, **values)
        except HTTPException as exc:
            # A path no route matches (404), a wrong method (405): the same headers as every page.
            from monitor.ui.render import secured

            return secured(exc.get_response(request.environ))

    return application
