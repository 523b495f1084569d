"""When and how long to wait before trying a request again, as fal's own clients do.

Retried (fal-client 1.0.3): HTTP 408, 409 and 429; an *ingress* error (502/503/504 with no
``x-fal-request-id`` header and "nginx" in the body: the gateway, not the app, failed); any
transport error or timeout. Never retried: a 504 carrying ``X-Fal-Request-Timeout-Type``
(the caller's own start deadline passed), a timeout of a request that set
``X-Fal-Request-Timeout``. Delay ``min(base·2^(n−1), cap)·U(0.5, 1.5)`` capped again at
``cap``, unless the response says ``Retry-After``. At most ``max_attempts`` tries.

Each request states how it may be retried (:data:`RetryMode`):

``"idempotent"``
    status, result, uploads, downloads: everything above.

``"submit"``
    A submit creates a paid job and fal has no idempotency key, so a second POST after one
    that reached the queue would queue and bill the job twice. A submit is retried only
    when it provably did not reach the queue: the connection was never made (connect
    errors and timeouts, no free pooled connection), fal refused it outright (429 rate
    limit, 408 request-timeout), or the gateway answered 503 by itself (an nginx page, no
    ``x-fal-request-id``: no upstream took it). Not retried: read/write timeouts and
    dropped connections after sending, and ingress 502/504 — nginx sends those after it
    forwarded the request (a bad or late upstream answer), so the job may exist. Those
    raise :class:`~runner.fal.errors.FalSubmitUncertain`. 409 is not retried either: its
    meaning on a submit is undocumented.

``"never"``
    cancel (fal-js never retries it: a cancel that went through but whose answer was lost
    must not be repeated blindly).

A connection that cannot be made because the host name does not resolve or the host
refuses it (:func:`unreachable`) is retried as fal's client retries any connect error, but
only within ``unreachable_window`` seconds of backoff: a machine with no network, a typo in
``SHOTGRAPH_FAL_QUEUE_URL`` or an emulator that is not running is reported in about a
second, not after ten retries and half a minute.
"""

from __future__ import annotations

import asyncio
import errno
import random
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Literal

import httpx

RetryMode = Literal["idempotent", "submit", "never"]

RETRY_STATUSES = frozenset({408, 409, 429})
INGRESS_STATUSES = frozenset({502, 503, 504})
SUBMIT_RETRY_STATUSES = frozenset({408, 429})
REQUEST_TIMEOUT_HEADER = "X-Fal-Request-Timeout"
REQUEST_TIMEOUT_TYPE_HEADER = "X-Fal-Request-Timeout-Type"


class NotSent(httpx.LocalProtocolError):
    """A request this machine refused to write (a method or a header HTTP forbids): not a
    byte of it left, and sending it again would be refused again, so it is neither retried
    nor, for a submit, uncertain."""


# Transport failures that happen before a byte of the request leaves this machine.
_NOT_SENT: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds and timing of retries. ``sleep`` and ``uniform`` are injectable for tests."""

    max_attempts: int = 10
    base_delay: float = 0.1
    max_delay: float = 10.0
    #: A longer ``Retry-After`` is shortened to this (a wait is never unbounded).
    max_retry_after: float = 120.0
    #: Seconds of backoff spent retrying a host that does not resolve or refuses to connect.
    unreachable_window: float = 1.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)
    uniform: Callable[[float, float], float] = field(default=random.uniform, compare=False)
    clock: Callable[[], float] = field(default=time.time, compare=False)

    def backoff(self, retry: int) -> float:
        """Delay before retry number ``retry`` (1-based), with jitter."""
        delay = min(self.base_delay * 2.0 ** (retry - 1), self.max_delay)
        return min(delay * self.uniform(0.5, 1.5), self.max_delay)

    def delay(self, retry: int, headers: Mapping[str, str] | None = None) -> float:
        """``Retry-After`` from ``headers`` when present and readable, else the backoff."""
        after = retry_after(headers, self.clock) if headers is not None else None
        if after is not None:
            return min(after, self.max_retry_after)
        return self.backoff(retry)


def retry_after(headers: Mapping[str, str], clock: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - clock())


def is_ingress_error(status_code: int, headers: Mapping[str, str], text: str) -> bool:
    """A 502/503/504 made by fal's gateway (nginx) rather than by fal's queue or an app."""
    return (
        status_code in INGRESS_STATUSES
        and "x-fal-request-id" not in headers
        and "nginx" in text.lower()
    )


def is_user_timeout(status_code: int, headers: Mapping[str, str]) -> bool:
    """A 504 for the start deadline the caller set: the answer, not a glitch."""
    return status_code == 504 and bool(headers.get(REQUEST_TIMEOUT_TYPE_HEADER))


def should_retry_response(
    mode: RetryMode, status_code: int, headers: Mapping[str, str], text: str
) -> bool:
    """Whether an HTTP error response may be retried under ``mode``."""
    if mode == "never" or is_user_timeout(status_code, headers):
        return False
    ingress = is_ingress_error(status_code, headers, text)
    if mode == "submit":
        return status_code in SUBMIT_RETRY_STATUSES or (ingress and status_code == 503)
    return status_code in RETRY_STATUSES or ingress


def should_retry_exception(
    mode: RetryMode, exc: httpx.TransportError, request_headers: Mapping[str, str]
) -> bool:
    """Whether a transport error may be retried under ``mode``."""
    if mode == "never" or isinstance(exc, (httpx.UnsupportedProtocol, NotSent)):
        return False
    if isinstance(exc, _NOT_SENT):
        return True
    if mode == "submit":
        return False
    # A timeout of a request carrying the caller's own deadline is that deadline: honour it,
    # as fal-client does.
    return not (
        isinstance(exc, httpx.TimeoutException) and REQUEST_TIMEOUT_HEADER in request_headers
    )


def maybe_sent(exc: httpx.TransportError) -> bool:
    """Whether the request may have reached the server before ``exc`` (not provably unsent)."""
    return not isinstance(exc, (*_NOT_SENT, httpx.UnsupportedProtocol, NotSent))


_REFUSED = frozenset({errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH})


def unreachable(exc: BaseException) -> str | None:
    """Why no connection could be made, when ``exc``'s chain says the host name does not
    resolve or the host refuses (or cannot be routed to); else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return "the host name does not resolve (DNS)"
        if isinstance(current, OSError) and current.errno in _REFUSED:
            return (
                "the host refused the connection"
                if current.errno == errno.ECONNREFUSED
                else ("the host cannot be reached")
            )
        current = current.__cause__ or current.__context__
    return None
