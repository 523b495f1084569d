"""fal's queue protocol on the wire: URLs, status bodies, auth and error responses.

Facts come from the fal fact sheet (docs/emulator.md says which are unconfirmed and what the
emulator chose for those).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send

from runner.emulator.config import EmulatorConfig
from runner.emulator.jobs import COMPLETED, IN_QUEUE, Job

RAW_SEND = "shotgraph.raw_send"

_NGINX_REASONS = {
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}
_TRUE = {"1", "true", "t", "yes", "y", "on"}


def origin(request: Request) -> str:
    """Scheme and host the client used, so returned URLs work however it reached us."""
    return str(request.base_url).rstrip("/")


def app_path(endpoint_id: str) -> str:
    """``owner/alias`` of an endpoint id: fal's polling URLs drop the subpath."""
    return "/".join(endpoint_id.split("/")[:2])


def queue_urls(base: str, job: Job) -> dict[str, str]:
    root = f"{base}/{app_path(job.endpoint)}/requests/{job.id}"
    return {
        "response_url": root,
        "status_url": f"{root}/status",
        "cancel_url": f"{root}/cancel",
    }


def flag(value: str | None) -> bool:
    """``logs=1`` (fal-js) and ``logs=true`` (fal-client) both mean yes."""
    return (value or "").strip().lower() in _TRUE


def status_body(job: Job, base: str, position: int | None, with_logs: bool) -> dict[str, Any]:
    """The JSON of ``GET .../status`` (and of each status-stream event)."""
    body: dict[str, Any] = {"status": job.state, "request_id": job.id, **queue_urls(base, job)}
    if job.state == IN_QUEUE:
        body["queue_position"] = position if position is not None else 0
    body["logs"] = list(job.logs) if with_logs else None
    if job.state == COMPLETED:
        inference = job.inference_time
        body["metrics"] = {"inference_time": inference} if inference is not None else {}
        if job.error is not None:
            body["error"] = job.error.error
            body["error_type"] = job.error.error_type
    return body


def with_origin(value: Any, base: str) -> Any:
    """A stored result with its origin-relative ``/files/`` URLs made absolute."""
    if isinstance(value, dict):
        return {
            key: (base + item)
            if key == "url" and isinstance(item, str) and item.startswith("/files/")
            else with_origin(item, base)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [with_origin(item, base) for item in value]
    return value


# What shotgraph's local backend names a job's pipeline node in (fal never receives it).
NODE_HEADER = "x-shotgraph-node"
_NODE_LIMIT = 80


def node_name(request: Request) -> str | None:
    """The pipeline node a submit renders, if the local backend said: percent-decoded,
    without control characters, at most 80 characters (it is written on the animatic)."""
    raw = request.headers.get(NODE_HEADER)
    if not raw:
        return None
    name = "".join(c for c in unquote(raw) if c.isprintable())[:_NODE_LIMIT].strip()
    return name or None


def request_id_headers(job: Job) -> dict[str, str]:
    return {"x-fal-request-id": job.id}


def detail(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def unauthorized(request: Request, config: EmulatorConfig) -> Response | None:
    """401 unless the request carries a usable ``Authorization: Key id:secret`` (or a
    ``Bearer`` token, as fal's CLI login sends), when the config requires one."""
    if not config.require_auth:
        return None
    api_keys = config.api_keys
    authorization = request.headers.get("authorization") or ""
    scheme, _, credential = authorization.strip().partition(" ")
    credential = credential.strip()
    if not scheme or not credential:
        return detail(401, "Missing authorization header: expected 'Key <key_id>:<key_secret>'")
    if scheme.lower() == "bearer":
        return None
    if scheme.lower() != "key":
        return detail(401, "Invalid authorization scheme: expected 'Key <key_id>:<key_secret>'")
    key_id, colon, secret = credential.partition(":")
    if not colon or not key_id or not secret:
        return detail(
            401, "Invalid Key Authorization header format. Expected '<key_id>:<key_secret>'."
        )
    if api_keys is not None and credential not in api_keys:
        return detail(401, "No user found for Key ID and Secret")
    return None


def rate_limited(retry_after: float) -> JSONResponse:
    seconds = max(0, round(retry_after))
    return detail(429, "Too many requests, please retry later", {"Retry-After": str(seconds)})


def locked() -> JSONResponse:
    return detail(
        403,
        "User is locked. Reason: Exhausted balance. "
        "Top up your balance at fal.ai/dashboard/billing.",
    )


def ingress(status: int) -> HTMLResponse:
    """The page nginx answers with when fal's ingress cannot reach a backend. fal's clients
    retry a 502/503/504 that says nginx and carries no ``x-fal-request-id``."""
    title = f"{status} {_NGINX_REASONS[status]}"
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    return HTMLResponse(page, status_code=status)


class DropConnection(Response):
    """Closes the client's connection without sending anything.

    ASGI has no message for that, so this reaches the server's transport through the
    ``send`` callable uvicorn handed the outermost app (a bound method of its
    request-response cycle, kept in the scope under :data:`RAW_SEND`).
    """

    def __init__(self) -> None:
        super().__init__(status_code=500)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get(RAW_SEND)
        transport = getattr(getattr(raw, "__self__", None), "transport", None)
        if transport is None:
            raise RuntimeError("cannot drop the connection: the server's transport is hidden")
        transport.abort()
        # Wait for the server to notice, so it does not answer 500 on a dead connection.
        while (await receive())["type"] != "http.disconnect":
            await asyncio.sleep(0)
