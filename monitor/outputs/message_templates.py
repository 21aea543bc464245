"""Per-receiver message templates: a user's Jinja2 file overriding an integration's text.

Rendered in the bounded sandbox of monitor.alerting.templates (the same limits as
annotations: no statements that build or recurse, no nested loops, bounded loops,
integers and output), with the escaping of the target format applied to every
`{{ ... }}`: "html" (email) HTML-escapes, "mrkdwn" (Slack) escapes Slack's `&`, `<`
and `>` so a label cannot ping or forge a link, "markdown" (Teams' Adaptive Card text)
escapes markdown as `teams.escape_markdown` does, "none" (PagerDuty's
plain summary) prints values as they are.

A template sees the event as Alertmanager's templates do (`status`, `receiver`,
`alerts` with `labels`/`annotations`/`startsAt`/`endsAt`, `groupLabels`,
`commonLabels`, `commonAnnotations`), plus `links`, `kind`, `groupKey` and the typed
`event`. A file that is missing, does not compile, fails when rendered or prints
more than MAX_OUTPUT_CHARS falls back to `fallback` (the built-in text): the
notification always goes out. Each failure is logged once per file and error, and
every one is counted in `monitor_template_errors_total{integration}`.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, Literal

from jinja2 import Template

from monitor.alerting import templates
from monitor.alerting.events import AlertGroupEvent, Event

log = logging.getLogger(__name__)

Escape = Literal["html", "mrkdwn", "markdown", "none"]
# A message is bigger than an annotation (an HTML email), but still bounded.
MAX_SOURCE_CHARS = 65536
MAX_OUTPUT_CHARS = 65536
# Distinct (file, error) pairs remembered for logging once; past it, failures are logged every time.
_MAX_LOGGED = 1000


def escape_mrkdwn(text: object) -> str:
    """Escape the three characters Slack treats as control sequences in mrkdwn."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _finalize_mrkdwn(value: Any) -> str:
    return escape_mrkdwn("" if value is None else value)


def _finalize_markdown(value: Any) -> str:
    # Teams' Adaptive Card text is a markdown subset: HTML or Slack escaping would still let
    # `[text](url)` in a label render as a link. Imported here: teams imports this module.
    from monitor.outputs.teams import escape_markdown
    return escape_markdown("" if value is None else str(value))


_ENVIRONMENTS = {"html": templates.sandbox(autoescape=True), "mrkdwn": templates.sandbox(finalize=_finalize_mrkdwn),
                 "markdown": templates.sandbox(finalize=_finalize_markdown), "none": templates.sandbox()}


@dataclass(frozen=True)
class _Loaded:
    """A template file as last read: its stat signature, and the compiled template or why not."""

    signature: tuple[int, int]
    compiled: Template | None
    error: str | None


class _TemplateFiles:
    """Compiled template files, re-read when their mtime or size changes; error counts per integration."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, str], _Loaded] = {}
        self._logged: set[tuple[str, str]] = set()
        self.errors: dict[str, int] = {}

    def compiled(self, path: str, escape: Escape) -> Template:
        """The compiled template at `path`; raises _TemplateFailure when it cannot be read or compiled."""
        try:
            stat = os.stat(path)
        except OSError as exc:
            raise _TemplateFailure(f"cannot read the file: {exc.strerror or type(exc).__name__}") from None
        signature = (stat.st_mtime_ns, stat.st_size)
        key = (path, escape)
        with self._lock:
            loaded = self._loaded.get(key)
        if loaded is None or loaded.signature != signature:
            loaded = _load(path, escape, signature)
            with self._lock:
                self._loaded[key] = loaded
        if loaded.compiled is None:
            raise _TemplateFailure(loaded.error or "invalid template")
        return loaded.compiled

    def failed(self, path: str, integration: str, error: str) -> None:
        with self._lock:
            self.errors[integration] = self.errors.get(integration, 0) + 1
            first = (path, error) not in self._logged
            if len(self._logged) < _MAX_LOGGED:  # errors quoting values could otherwise grow it forever
                self._logged.add((path, error))
        if first:
            log.warning("message template %s (%s) failed, the built-in text is sent instead: %s",
                        path, integration, error)


class _TemplateFailure(Exception):
    pass


def _load(path: str, escape: Escape, signature: tuple[int, int]) -> _Loaded:
    try:
        with open(path, encoding="utf-8") as handle:
            source = handle.read(MAX_SOURCE_CHARS + 1)
        return _Loaded(signature, templates.compile_template(source, _ENVIRONMENTS[escape], MAX_SOURCE_CHARS), None)
    except OSError as exc:
        return _Loaded(signature, None, f"cannot read the file: {exc.strerror or type(exc).__name__}")
    except UnicodeDecodeError:
        return _Loaded(signature, None, "the file is not UTF-8 text")
    except Exception as exc:  # noqa: BLE001 - syntax errors, forbidden statements, size bounds
        line = getattr(exc, "lineno", None)
        return _Loaded(signature, None, f"invalid template: {getattr(exc, 'message', None) or exc}"
                                        + (f" (line {line})" if line else ""))


_FILES = _TemplateFiles()


def template_error_counts() -> dict[str, int]:
    """Template failures so far, per integration (for /metrics)."""
    with _FILES._lock:
        return dict(_FILES.errors)


def template_context(event: Event) -> dict[str, Any]:
    """What a template sees: the event's JSON fields (Alertmanager's names) and the typed event."""
    context: dict[str, Any] = {**event.to_dict(), "event": event}
    if isinstance(event, AlertGroupEvent):
        context.update(commonLabels=event.common_labels, commonAnnotations=event.common_annotations)
    return context


def render_override(template_path: str | None, event: Event, *, integration: str, escape: Escape,
                    fallback: str) -> str:
    """The user's template rendered over `event`, or `fallback` when there is none or it fails."""
    if not template_path:
        return fallback
    try:
        compiled = _FILES.compiled(template_path, escape)
        return templates.render_compiled(compiled, template_context(event), MAX_OUTPUT_CHARS)
    except _TemplateFailure as failure:
        _FILES.failed(template_path, integration, str(failure))
    except Exception as exc:  # noqa: BLE001 - a failing template must never stop a notification
        _FILES.failed(template_path, integration, f"fails when rendered: {exc}")
    return fallback


__all__ = ["Escape", "escape_mrkdwn", "render_override", "template_context", "template_error_counts",
           "MAX_OUTPUT_CHARS"]

