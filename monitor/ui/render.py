"""Rendering UI responses: HTML pages from the report's templates, JSON twins, and the headers both carry.

Templates are the report's own directory (`reports/`, `monitor.report.render.template_directory`),
rendered in a sandboxed Jinja2 environment with autoescape forced on whatever the file name,
as the report does: a label value `<script>` renders as text. Pages load no script, style,
font or image from anywhere but this server (the Content-Security-Policy says so to the
browser too), so they work air-gapped.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any, Mapping

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from werkzeug.wrappers import Request, Response

import monitor
from monitor.report.present import FILTERS
from monitor.report.render import period_title, template_directory
from monitor.ui.views import format_burn, format_figure

# Only this server: no inline script at all (the one script is /ui.js), no plugins, no framing,
# forms post only back here. Inline styles are not needed: the page's CSS is /ui.css.
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
# A chart (SVG) or an archived report page carries its own inline styles (matplotlib's SVG,
# the report's self-contained HTML) and never a script.
DOCUMENT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'self'"

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

# Every page the navigation links to: (path, title). Models are listed on the overview.
NAVIGATION = (("/", "Overview"), ("/slos", "SLOs"), ("/alerts", "Alerts"), ("/silences", "Silences"),
              ("/reports/", "Reports"))


@lru_cache(maxsize=4)
def ui_environment(directory: str | None = None) -> jinja2.Environment:
    """The sandboxed environment for UI templates: autoescape on, undefined names are errors."""
    environment = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(directory or str(template_directory())),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(FILTERS)
    environment.filters["period_title"] = period_title
    environment.filters["figure"] = format_figure
    environment.filters["burn"] = format_burn
    return environment


def secured(response: Response, policy: str = PAGE_POLICY) -> Response:
    """`response` with the security headers and `policy` as its Content-Security-Policy."""
    response.headers["Content-Security-Policy"] = policy
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def render_page(context: Any, request: Request, template_name: str, *, status: int = 200,
                **values: Any) -> Response:
    """An HTML page from `template_name` (e.g. "ui/slos.html.j2"), extending "ui/base.html.j2".

    Besides `values`, every template sees `root` (the app's mount point, for links),
    `path` (the page's own), `navigation` and `version`. Never cached: it is live.
    """
    from monitor.ui.auth import csrf_token

    template = ui_environment().get_template(template_name)
    values.setdefault("csrf_token", csrf_token(context, request))
    html = template.render(root=request.script_root, path=request.path, navigation=NAVIGATION,
                           version=monitor.__version__, **values)
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return secured(response)


def render_json(data: Any, status: int = 200) -> Response:
    """A JSON response: NaN and infinities become null ("no data"), never invalid JSON."""
    body = json.dumps(_finite(data), separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    response = Response(body, status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return secured(response)


def render_text(body: str | bytes, mimetype: str, *, policy: str = PAGE_POLICY, status: int = 200,
                cache_seconds: int = 0) -> Response:
    """A static-ish resource (CSS, script, SVG chart) with the security headers."""
    response = Response(body, status=status, mimetype=mimetype)
    response.headers["Cache-Control"] = f"max-age={cache_seconds}" if cache_seconds else "no-store"
    return secured(response, policy)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
