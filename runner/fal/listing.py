"""fal's request listing (platform API): the requests an account sent to an endpoint, with
their input payloads. What the runner reconciles an uncertain submit against.

What fal documents (https://docs.fal.ai/platform-apis/v1/models/requests/by-endpoint, the
``GET /models/requests/by-endpoint`` operation of fal's platform OpenAPI, servers
``https://api.fal.ai/v1``):

- auth: ``Authorization: Key <key>`` ("API key must be prefixed with Key"; a user or
  enterprise key);
- ``endpoint_id`` (required; 1–50 ids, comma-separated or repeated), ``start`` / ``end``
  (ISO 8601; ``end`` exclusive; ``start`` defaults to 24 hours ago, 90 days when
  ``request_id`` is given), ``status`` (``success``, ``error``, ``user_error``),
  ``request_id``, ``expand=payloads`` (adds ``json_input`` and ``json_output``),
  ``sort_by`` (``ended_at``, the default, or ``duration``), ``limit`` (default 50, at most
  100) and ``cursor`` (an opaque cursor that "encodes the page number", e.g. ``"Mg=="``);
- answer ``{"items": [...], "next_cursor": str | null, "has_more": bool}``, an item being
  ``{request_id, endpoint_id, sent_at, started_at, ended_at, status_code, duration,
  json_input?, json_output?}``.

What fal does not document: whether queued or running requests are listed (the status
filter knows only finished outcomes and the sort is by end time, so this client assumes
they may not be), how soon a finished request appears, and whether ``start`` / ``end``
filter on the time sent or ended (a window opening before the first attempt and left open
at the end is right either way). ``api.fal.ai`` also serves
``/v1/serverless/requests/by-endpoint``, the same listing for the apps an account owns.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from runner.fal.errors import FalProtocolError
from runner.fal.session import Call, Session

LISTING_PATH = "/models/requests/by-endpoint"
PAGE_LIMIT = 100  # fal's maximum page size
MAX_PAGES = 50  # 5,000 requests in the window: more is not a crash-recovery look-up


@dataclass(frozen=True, slots=True)
class ListedRequest:
    """One request of the listing. Times are Unix seconds (None when fal gives none);
    ``json_input`` is the payload as fal recorded it (with ``expand=payloads``)."""

    request_id: str
    endpoint_id: str
    sent_at: float | None
    ended_at: float | None
    status_code: int | None
    json_input: Any = None


class ListingIncomplete(FalProtocolError):
    """The listing could not be read to its end (too many pages, or a cursor that does not
    move on): a match found so far cannot be trusted to be the only one."""


async def list_requests(
    session: Session,
    api_url: str,
    auth: httpx.Auth | None,
    endpoint_id: str,
    start: float,
    *,
    payloads: bool = True,
) -> AsyncIterator[ListedRequest]:
    """Every request to ``endpoint_id`` in fal's listing since ``start`` (Unix seconds),
    page by page, to the end of the listing."""
    params = {
        "endpoint_id": endpoint_id,
        "start": iso(start),
        "limit": str(PAGE_LIMIT),
    }
    if payloads:
        params["expand"] = "payloads"
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        page = dict(params, cursor=cursor) if cursor else params
        call = Call(
            "GET",
            api_url + LISTING_PATH,
            "list",
            f"the request listing of {endpoint_id}",
            auth=auth,
            params=page,
        )
        data = _page(await session.send(call), endpoint_id)
        for item in data["items"]:
            yield _item(item, endpoint_id)
        cursor = data["next_cursor"]
        if not data["has_more"] or not cursor:
            return
        if cursor in seen:
            raise ListingIncomplete(f"fal's request listing of {endpoint_id} repeats a cursor")
        seen.add(cursor)
    raise ListingIncomplete(
        f"fal's request listing of {endpoint_id} has more than {MAX_PAGES * PAGE_LIMIT} "
        "requests in the window"
    )


def iso(when: float) -> str:
    """Unix seconds as the ISO 8601 UTC form fal's platform API takes."""
    return (
        datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def parse_time(value: object) -> float | None:
    """An ISO 8601 time of the listing as Unix seconds (a naive one is taken as UTC)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _page(response: httpx.Response, endpoint_id: str) -> dict[str, Any]:
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        data = None
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(items, list):
        raise FalProtocolError(f"fal's request listing of {endpoint_id} is not a page of items")
    cursor = data.get("next_cursor")
    return {
        "items": items,
        "next_cursor": cursor if isinstance(cursor, str) else None,
        "has_more": bool(data.get("has_more")),
    }


def _item(item: object, endpoint_id: str) -> ListedRequest:
    if not isinstance(item, Mapping) or not isinstance(item.get("request_id"), str):
        raise FalProtocolError(f"fal's request listing of {endpoint_id} has an item without id")
    code = item.get("status_code")
    return ListedRequest(
        request_id=item["request_id"],
        endpoint_id=str(item.get("endpoint_id") or endpoint_id),
        sent_at=parse_time(item.get("sent_at")),
        ended_at=parse_time(item.get("ended_at")),
        status_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        json_input=item.get("json_input"),
    )
