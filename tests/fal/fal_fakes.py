"""Helpers for the fal client tests: a marker key, a recording mock transport, instant sleeps."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

# Distinctive enough that finding either half anywhere is a leak.
MARKER_ID = "kid-7Q3ZMARKERX9"
MARKER_SECRET = "sec-MARKERY4W8Vq2"
MARKER_KEY = f"{MARKER_ID}:{MARKER_SECRET}"
EMULATOR_KEY = "local-id:local-secret"  # the emulator takes any well-formed key
QUEUE = "https://queue.test"
REST = "https://rest.test"

Handler = Callable[[httpx.Request], Awaitable[httpx.Response] | httpx.Response]


@dataclass
class Seen:
    """A request as the transport saw it (headers copied before the client scrubs them)."""

    method: str
    url: httpx.URL
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return self.url.path

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Recorder:
    """Wraps a handler; keeps every request it was given."""

    handler: Handler
    seen: list[Seen] = field(default_factory=list)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        self.seen.append(Seen(request.method, request.url, dict(request.headers), body))
        out = self.handler(request)
        if isinstance(out, Awaitable):
            out = await out
        return out

    def paths(self) -> list[str]:
        return [f"{s.method} {s.path}" for s in self.seen]


@dataclass
class Sleeps:
    """An instant ``sleep`` that remembers how long it was asked to wait."""

    delays: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=data, headers=headers)


def submitted(endpoint_app: str = "fal-ai/ltx", request_id: str = "req-1") -> dict[str, Any]:
    base = f"{QUEUE}/{endpoint_app}/requests/{request_id}"
    return {
        "request_id": request_id,
        "response_url": base,
        "status_url": f"{base}/status",
        "cancel_url": f"{base}/cancel",
        "status": "IN_QUEUE",
        "queue_position": 0,
    }


def nginx_page(status: int) -> str:
    """The body fal's gateway sends on an ingress error (what fal's clients look for)."""
    title = {502: "502 Bad Gateway", 503: "503 Service Temporarily Unavailable"}.get(
        status, f"{status} Gateway Time-out"
    )
    return (
        f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1></center>"
        "<hr><center>nginx</center></body></html>"
    )
