"""Silences from the web UI and its API: list, create, expire, behind `monitor.ui.auth`.

- `GET /silences`: active and expired silences, an expire button on each active one and a
  form for a new one; `POST /silences` (the /alerts page's form: matchers, duration, comment,
  author, csrf_token) creates one and redirects (303) back to /silences;
  `POST /silences/<id>/expire` (a form with its csrf_token) ends one now.
- `GET /api/v1/silences[/<id>]`, `POST /api/v1/silences` (a JSON body: `matchers` list,
  `duration` or `ends_at`, `comment`, `created_by`), `DELETE /api/v1/silences/<id>`
  (or `POST /api/v1/silences/<id>/expire`).

Silences go through the same code and table as `monitor silence add|list|expire`
(`monitor.alerting.silences.new_silence`, `AlertRepository`), so one made here is listed
there and mutes matching alerts from the next cycle on. A silence starts at the UI's clock,
which is the daemon's evaluation clock (the replayed time under `--replay-from`). Bad input
is a 400 with one line and writes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.routing import Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from monitor.alerting.repository import AlertRepository
from monitor.ha import unfenced
from monitor.alerting.silences import Silence, SilenceError, format_matcher, new_silence
from monitor.commands.arguments import instant_range_problem
from monitor.durations import parse_duration
from monitor.timeutil import iso_z, utc
from monitor.ui.app import Endpoint, UiContext
from monitor.ui.auth import WriteRefused, authorize_write, writes_disabled_message
from monitor.ui.render import render_json, render_page

log = logging.getLogger(__name__)

# A silence form or body is a few hundred bytes; this leaves room for long regexes and a
# long comment, and bounds what an anonymous client can make us parse.
MAX_BODY_BYTES = 64 * 1024
MAX_MATCHERS = 64
MAX_COMMENT_LENGTH = 10_000
MAX_AUTHOR_LENGTH = 256
# Expired silences are kept for the record; the page shows the most recent.
EXPIRED_SHOWN = 100
API_FIELDS = {"matchers", "duration", "ends_at", "comment", "created_by"}


class InvalidSilence(Exception):
    """Input that cannot become a silence: one line for a 400."""


def routes() -> list[tuple[Rule, Endpoint]]:
    return [
        (Rule("/silences", methods=["GET"], endpoint="silences"), silences_page),
        (Rule("/silences", methods=["POST"], endpoint="silence_create"), create_from_form),
        (Rule("/silences/<silence_id>/expire", methods=["POST"], endpoint="silence_expire"), expire_from_form),
        (Rule("/api/v1/silences", methods=["GET"], endpoint="api_silences"), api_list),
        (Rule("/api/v1/silences", methods=["POST"], endpoint="api_silence_create"), api_create),
        (Rule("/api/v1/silences/<silence_id>", methods=["GET"], endpoint="api_silence"), api_get),
        (Rule("/api/v1/silences/<silence_id>", methods=["DELETE"], endpoint="api_silence_delete"), api_expire),
        (Rule("/api/v1/silences/<silence_id>/expire", methods=["POST"], endpoint="api_silence_expire"),
         api_expire),
    ]


# -- the page and its forms ------------------------------------------------------------


def silences_page(context: UiContext, request: Request, *, status: int = 200, error: str | None = None,
                  form: dict[str, str] | None = None) -> Response:
    now = context.clock()
    silences = AlertRepository(context.store).silences()
    current = [s for s in silences if s.state(now) != "expired"]
    expired = sorted((s for s in silences if s.state(now) == "expired"), key=lambda s: s.ends_at, reverse=True)
    auth = context.config().http.auth
    return render_page(
        context, request, "ui/silences.html.j2", status=status,
        active=[_row(s, now) for s in sorted(current, key=lambda s: s.ends_at)],
        expired=[_row(s, now) for s in expired[:EXPIRED_SHOWN]], expired_total=len(expired),
        now=now, error=error, form=form or {"matchers": "", "duration": "2h", "comment": "", "author": ""},
        writes_note=None if auth is not None else writes_disabled_message(context.listen))


def create_from_form(context: UiContext, request: Request) -> Response:
    request.max_content_length = MAX_BODY_BYTES
    try:
        values = {key: request.form.get(key, "") for key in ("matchers", "duration", "comment", "author")}
        writer = authorize_write(context, request, form=True)
        now = context.clock()
        silence = _silence(
            [line for line in values["matchers"].splitlines() if line.strip()],
            ends_at=now + _duration(values["duration"]), comment=values["comment"],
            author=values["author"], recorded_as=writer.recorded_as, now=now)
    except RequestEntityTooLarge:
        return silences_page(context, request, status=413, error=f"the form is larger than {MAX_BODY_BYTES} bytes")
    except WriteRefused as exc:
        _log_refused(request, exc)
        return silences_page(context, request, status=exc.status, error=exc.message, form=values)
    except InvalidSilence as exc:
        return silences_page(context, request, status=400, error=str(exc), form=values)
    _save(context, silence)
    return redirect(f"{request.script_root}/silences", code=303)


def expire_from_form(context: UiContext, request: Request, silence_id: str) -> Response:
    request.max_content_length = MAX_BODY_BYTES
    try:
        writer = authorize_write(context, request, form=True)
        _expire(context, silence_id, writer.name)
    except RequestEntityTooLarge:
        return silences_page(context, request, status=413, error=f"the form is larger than {MAX_BODY_BYTES} bytes")
    except WriteRefused as exc:
        _log_refused(request, exc)
        return silences_page(context, request, status=exc.status, error=exc.message)
    except LookupError as exc:
        return silences_page(context, request, status=404, error=str(exc.args[0]))
    return redirect(f"{request.script_root}/silences", code=303)


# -- the JSON API --------------------------------------------------------------------------


def api_list(context: UiContext, request: Request) -> Response:
    now = context.clock()
    return render_json({"silences": [silence_json(s, now) for s in AlertRepository(context.store).silences()]})


def api_get(context: UiContext, request: Request, silence_id: str) -> Response:
    now = context.clock()
    found = [s for s in AlertRepository(context.store).silences() if s.id == silence_id]
    if not found:
        return render_json({"error": f"no silence with id {silence_id!r}"}, status=404)
    return render_json(silence_json(found[0], now))


def api_create(context: UiContext, request: Request) -> Response:
    request.max_content_length = MAX_BODY_BYTES
    try:
        writer = authorize_write(context, request, form=False)
        body = _json_body(request)
        now = context.clock()
        silence = _silence(body["matchers"], ends_at=_api_end(body, now), comment=body.get("comment", ""),
                           author=body.get("created_by", ""), recorded_as=writer.recorded_as, now=now)
    except WriteRefused as exc:
        _log_refused(request, exc)
        return _api_refusal(exc)
    except InvalidSilence as exc:
        return render_json({"error": str(exc)}, status=400)
    except RequestEntityTooLarge:
        return render_json({"error": f"the body is larger than {MAX_BODY_BYTES} bytes"}, status=413)
    _save(context, silence)
    return render_json(silence_json(silence, context.clock()), status=201)


def api_expire(context: UiContext, request: Request, silence_id: str) -> Response:
    try:
        writer = authorize_write(context, request, form=False)
        silence = _expire(context, silence_id, writer.name)
    except WriteRefused as exc:
        _log_refused(request, exc)
        return _api_refusal(exc)
    except LookupError as exc:
        return render_json({"error": str(exc.args[0])}, status=404)
    return render_json(silence_json(silence, context.clock()))


def silence_json(silence: Silence, now: datetime) -> dict[str, Any]:
    """A silence as `monitor silence list --json` prints it."""
    return {"id": silence.id, "matchers": [format_matcher(m) for m in silence.matchers],
            "startsAt": iso_z(silence.starts_at), "endsAt": iso_z(silence.ends_at),
            "createdBy": silence.created_by, "comment": silence.comment, "status": silence.state(now)}


# -- shared --------------------------------------------------------------------------------


def _silence(matchers: Any, *, ends_at: datetime, comment: Any, author: Any, recorded_as, now: datetime) -> Silence:
    """A new silence from untrusted input, or InvalidSilence saying (in one line) what is wrong."""
    if not isinstance(matchers, list) or not all(isinstance(m, str) for m in matchers):
        raise InvalidSilence("matchers must be a list of strings such as 'alertname=\"SLOErrorBudgetBurnPage\"'")
    if len(matchers) > MAX_MATCHERS:
        raise InvalidSilence(f"at most {MAX_MATCHERS} matchers, got {len(matchers)}")
    comment = _text("comment", comment, MAX_COMMENT_LENGTH, multiline=True)
    if not comment:
        raise InvalidSilence("comment: say why (it is shown to whoever sees the silence)")
    author = _text("author", author, MAX_AUTHOR_LENGTH, multiline=False)
    try:
        return new_silence([m.strip() for m in matchers], starts_at=now, ends_at=ends_at,
                           created_by=recorded_as(author), comment=comment, created_at=now)
    except SilenceError as exc:
        raise InvalidSilence(_one_line(str(exc))) from None


def _text(name: str, value: Any, limit: int, *, multiline: bool) -> str:
    if not isinstance(value, str):
        raise InvalidSilence(f"{name} must be a string")
    value = value.strip()
    if len(value) > limit:
        raise InvalidSilence(f"{name} is longer than {limit} characters")
    allowed = "\n\r\t" if multiline else ""
    if any((ord(ch) < 32 and ch not in allowed) or ord(ch) == 127 for ch in value):
        raise InvalidSilence(f"{name} must not contain control characters")
    return value


def _duration(text: Any) -> timedelta:
    if not isinstance(text, str) or not text.strip():
        raise InvalidSilence("duration: how long the silence lasts, e.g. 2h or 30m")
    try:
        duration = parse_duration(text)
    except ValueError as exc:
        raise InvalidSilence(f"duration: {exc}") from None
    if duration <= timedelta(0):
        raise InvalidSilence(f"duration: must be longer than 0s, got {text.strip()!r}")
    return duration


def _api_end(body: dict[str, Any], now: datetime) -> datetime:
    if ("duration" in body) == ("ends_at" in body):
        raise InvalidSilence("give exactly one of duration (e.g. \"2h\") or ends_at (ISO 8601)")
    if "duration" in body:
        return now + _duration(body["duration"])
    text = body["ends_at"]
    if not isinstance(text, str):
        raise InvalidSilence("ends_at must be an ISO 8601 time such as 2026-12-02T03:00:00Z")
    try:
        ends_at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidSilence(f"ends_at: not an ISO 8601 time: {text!r}") from None
    ends_at = utc(ends_at)
    problem = instant_range_problem(ends_at)
    if problem:
        raise InvalidSilence(f"ends_at: {problem}")
    return ends_at


def _json_body(request: Request) -> dict[str, Any]:
    if request.mimetype != "application/json":
        raise InvalidSilence("send the silence as a JSON body (Content-Type: application/json)")
    try:
        body = request.get_json(force=False, silent=False)
    except BadRequest:
        raise InvalidSilence("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidSilence("the body must be a JSON object with matchers, duration or ends_at, comment")
    unknown = sorted(set(body) - API_FIELDS)
    if unknown:
        raise InvalidSilence(f"unknown field {unknown[0]!r} (known: {', '.join(sorted(API_FIELDS))})")
    if "matchers" not in body:
        raise InvalidSilence("matchers: a list of label matchers is required")
    return body


def _save(context: UiContext, silence: Silence) -> None:
    # An operator's write: any replica's UI takes it, not only the leader's (the fence is for cycles).
    with unfenced():
        AlertRepository(context.store).add_silence(silence)
    log.info("silence %s created by %s until %s: %s", silence.id, silence.created_by, iso_z(silence.ends_at),
             " ".join(format_matcher(m) for m in silence.matchers))


def _expire(context: UiContext, silence_id: str, by: str) -> Silence:
    """End the silence with exactly this id now (the CLI's id prefixes are for typing, not for URLs)."""
    repository = AlertRepository(context.store)
    if not any(s.id == silence_id for s in repository.silences()):
        raise LookupError(f"no silence with id {silence_id!r}")
    with unfenced():
        silence = repository.expire_silence(silence_id, context.clock())
    log.info("silence %s expired by %s", silence.id, by)
    return silence


def _row(silence: Silence, now: datetime) -> dict[str, Any]:
    return {"id": silence.id, "matchers": [format_matcher(m) for m in silence.matchers],
            "starts_at": silence.starts_at, "ends_at": silence.ends_at, "state": silence.state(now),
            "remaining": silence.ends_at - now, "created_by": silence.created_by, "comment": silence.comment}


def _api_refusal(exc: WriteRefused) -> Response:
    response = render_json({"error": exc.message}, status=exc.status)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="monitor"'
    return response


def _log_refused(request: Request, exc: WriteRefused) -> None:
    log.info("write refused (%d) %s %s from %s: %s", exc.status, request.method, request.path,
             request.remote_addr, exc.message)


def _one_line(text: str, limit: int = 400) -> str:
    """One line, cut short: a parse error quotes its input, which may be a 10 KB matcher."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "\N{HORIZONTAL ELLIPSIS}"
