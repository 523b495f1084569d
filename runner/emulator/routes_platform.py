"""fal's platform API, the part a client needs after a crash: the request listing,
``GET /v1/models/requests/by-endpoint`` (on fal: ``https://api.fal.ai/v1/...``).

As fal documents it (runner/fal/listing.py has the sources): ``Authorization: Key …``
only; ``endpoint_id`` required (1–50, comma-separated or repeated); ``start``/``end``
(ISO 8601, ``end`` exclusive, ``start`` 24 hours back by default, 90 days with
``request_id``); ``status`` ``success``/``error``/``user_error``; ``request_id``;
``expand=payloads``; ``sort_by`` ``ended_at`` (newest first) or ``duration``; ``limit``
(50, at most 100) and ``cursor`` (base64 of the page number). Where fal is silent the
emulator lists only requests that have ended (``listing_delay`` seconds after), filters
the window on the time a request was sent, and a cancelled request that never ran counts
as a ``user_error`` (its 499).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from runner.emulator import protocol
from runner.emulator.core import Emulator
from runner.emulator.jobs import COMPLETED, Job, fal_time

_STATUSES = ("success", "error", "user_error")
_SORTS = ("ended_at", "duration")
_DAY = 86400.0


async def requests_by_endpoint(request: Request) -> Response:
    emulator: Emulator = request.app.state.emulator
    imposed = await emulator.intercept("listing")
    if imposed is not None:
        return imposed
    denied = _key_only(request, emulator)
    if denied is not None:
        return denied
    query = request.query_params
    endpoints = [e for value in query.getlist("endpoint_id") for e in value.split(",") if e]
    request_id = query.get("request_id")
    now = time.time()
    errors: list[dict[str, Any]] = []
    if not endpoints:
        errors.append(_issue("missing", "endpoint_id", "Field required", None))
    elif len(endpoints) > 50:
        errors.append(_issue("too_long", "endpoint_id", "At most 50 endpoint ids", endpoints))
    default_start = now - (90 * _DAY if request_id else _DAY)
    start = _time(query.get("start"), "start", default_start, errors)
    end = _time(query.get("end"), "end", now, errors)
    status = query.get("status")
    if status is not None and status not in _STATUSES:
        errors.append(_enum("status", status, _STATUSES))
    sort_by = query.get("sort_by", "ended_at")
    if sort_by not in _SORTS:
        errors.append(_enum("sort_by", sort_by, _SORTS))
    limit = _limit(query.get("limit"), errors)
    page = _page(query.get("cursor"), errors)
    if errors:
        return JSONResponse({"detail": errors}, status_code=422)
    expand = {e for value in query.getlist("expand") for e in value.split(",")}
    listed = [
        job
        for job in emulator.queue.all_jobs()
        if job.endpoint in endpoints
        and _listed(job, now, emulator.config.listing_delay)
        and start <= job.submitted_at < end
        and (request_id is None or job.id == request_id)
        and (status is None or _outcome(job) == status)
    ]
    key = (lambda j: j.completed_at or 0.0) if sort_by == "ended_at" else _duration
    listed.sort(key=key, reverse=True)
    chunk = listed[(page - 1) * limit : page * limit]
    more = page * limit < len(listed)
    return JSONResponse(
        {
            "items": [_item(job, protocol.origin(request), "payloads" in expand) for job in chunk],
            "next_cursor": _cursor(page + 1) if more else None,
            "has_more": more,
        }
    )


def _key_only(request: Request, emulator: Emulator) -> Response | None:
    """fal's platform API takes an API key ("must be prefixed with Key"), not a token."""
    if not emulator.config.require_auth:
        return None
    scheme = (request.headers.get("authorization") or "").strip().partition(" ")[0]
    if scheme.lower() == "bearer":
        return protocol.detail(401, "API key must be prefixed with 'Key '")
    return protocol.unauthorized(request, emulator.config)


def _listed(job: Job, now: float, delay: float) -> bool:
    return (
        job.state == COMPLETED and job.completed_at is not None and now >= job.completed_at + delay
    )


def _status_code(job: Job) -> int:
    return 200 if job.error is None else job.error.status


def _outcome(job: Job) -> str:
    code = _status_code(job)
    return "success" if code < 400 else "user_error" if code < 500 else "error"


def _duration(job: Job) -> float:
    return (job.completed_at or job.submitted_at) - job.submitted_at


def _stamp(when: float | None) -> str | None:
    return fal_time(when) if when is not None else None


def _item(job: Job, origin: str, payloads: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "request_id": job.id,
        "endpoint_id": job.endpoint,
        "started_at": _stamp(job.started_at),
        "sent_at": _stamp(job.submitted_at),
        "ended_at": _stamp(job.completed_at),
        "status_code": _status_code(job),
        "duration": round(_duration(job), 3),
    }
    if payloads:
        item["json_input"] = job.body
        output = job.result if job.error is None else job.error.body
        item["json_output"] = protocol.with_origin(output, origin)
    return item


def _issue(kind: str, name: str, msg: str, value: object) -> dict[str, Any]:
    return {"type": kind, "loc": ["query", name], "msg": msg, "input": value}


def _enum(name: str, value: str, options: Iterable[str]) -> dict[str, Any]:
    expected = " or ".join(repr(o) for o in options)
    return _issue("enum", name, f"Input should be {expected}", value)


def _time(value: str | None, name: str, default: float, errors: list[dict[str, Any]]) -> float:
    if value is None:
        return default
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        errors.append(_issue("datetime_parsing", name, "Input should be an ISO 8601 date", value))
        return default
    if when.tzinfo is None:  # a bare date or a naive time: UTC
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _limit(value: str | None, errors: list[dict[str, Any]]) -> int:
    if value is None:
        return 50
    if not value.isdigit() or not 1 <= int(value) <= 100:
        errors.append(_issue("less_than_equal", "limit", "Input should be 1 to 100", value))
        return 50
    return int(value)


def _page(cursor: str | None, errors: list[dict[str, Any]]) -> int:
    if not cursor:
        return 1
    try:
        page = int(base64.b64decode(cursor, validate=True).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        page = 0
    if page < 1:
        errors.append(_issue("value_error", "cursor", "Invalid cursor", cursor))
        return 1
    return page


def _cursor(page: int) -> str:
    return base64.b64encode(str(page).encode()).decode()
