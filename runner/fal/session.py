"""Sending one logical request: retries by :mod:`runner.fal.retry`, errors by
:mod:`runner.fal.translate`, and no httpx exception escaping with the key.

httpx exceptions keep the request (headers included) and a traceback whose frames hold
httpx's and httpcore's copies of the headers. So a transport error is replaced by a fresh
exception of the same class with only its message, and the project error is raised
outside the ``except`` block: neither ``__cause__`` nor ``__context__`` reaches the
original.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from runner.fal.errors import FalConfigError, FalError, FalSubmitUncertain, FalUnavailable
from runner.fal.retry import (
    NotSent,
    RetryMode,
    RetryPolicy,
    is_ingress_error,
    maybe_sent,
    should_retry_exception,
    should_retry_response,
    unreachable,
)
from runner.fal.translate import Operation, Redactor, error_from_response

log = logging.getLogger("runner.fal")

#: A request body that can be produced afresh for every attempt (a file stream).
BodyFactory = Callable[[], AsyncIterator[bytes]]

_DASHBOARD = "https://fal.ai/dashboard/requests"
# The settings that choose where the client connects (docs/running.md, "Settings").
UNREACHABLE_HINT = (
    "check the network connection; the queue is $SHOTGRAPH_FAL_QUEUE_URL or "
    "https://$FAL_QUEUE_RUN_HOST when set (default https://queue.fal.run), uploads go to "
    "$SHOTGRAPH_FAL_REST_URL (default https://rest.fal.ai); for the offline emulator use "
    "--backend local"
)


@dataclass(frozen=True, slots=True)
class Call:
    """One logical request; ``what`` names its object in messages (no secrets in it)."""

    method: str
    url: str
    operation: Operation
    what: str
    mode: RetryMode = "idempotent"
    auth: httpx.Auth | None = None
    json: Any = None
    body: BodyFactory | bytes | None = None
    headers: Mapping[str, str] | None = None
    params: Mapping[str, str] | None = None
    timeout: httpx.Timeout | None = None
    request_id: str | None = None
    follow_redirects: bool = False
    #: Error statuses whose responses the caller reads itself (their body is an answer).
    accept: frozenset[int] = frozenset()


class _Jar(httpx.Cookies):
    """httpx's cookie jar, which reads a response's cookies only when it sets some: the
    standard library's jar builds a request object of its own for every response, a
    twentieth of the runner's CPU per node against fal, which sets none."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers or "set-cookie2" in response.headers:
            super().extract_cookies(response)


class Client(httpx.AsyncClient):
    """``httpx.AsyncClient`` with :class:`_Jar` for its cookies."""

    def __init__(self, **options: Any) -> None:
        self._jar: httpx.Cookies = _Jar(options.get("cookies"))
        super().__init__(**options)

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._jar = _Jar(cookies)


class Session:
    """Sends :class:`Call` objects over one ``httpx.AsyncClient``."""

    def __init__(self, client: httpx.AsyncClient, policy: RetryPolicy, redact: Redactor) -> None:
        self.client = client
        self.policy = policy
        self.redact = redact

    async def send(self, call: Call) -> httpx.Response:
        """The response, body read, once it is a success; otherwise a :class:`FalError`."""
        return await self._send(call, read=True)

    @asynccontextmanager
    async def stream(self, call: Call) -> AsyncIterator[httpx.Response]:
        """A success response whose body is still to be read (retries cover the opening)."""
        response = await self._send(call, read=False)
        try:
            yield response
        finally:
            await response.aclose()

    async def _send(self, call: Call, *, read: bool) -> httpx.Response:
        attempt = 0
        waited_unreachable = 0.0
        while True:
            attempt += 1
            request = self._build(call)
            failure: httpx.TransportError | None = None
            response: httpx.Response | None = None
            own: FalError | None = None
            why_unreachable: str | None = None
            try:
                response = await self.client.send(
                    request,
                    auth=call.auth or httpx.USE_CLIENT_DEFAULT,
                    follow_redirects=call.follow_redirects,
                    stream=True,
                )
                if read or not response.is_success:
                    await response.aread()
            except httpx.TransportError as exc:
                why_unreachable = unreachable(exc)
                failure = type(exc)(self.redact(str(exc)) or type(exc).__name__)
            except FalError as exc:
                own = exc  # raised by a body factory, deep inside httpx's frames
            if own is not None:
                if response is not None:
                    await response.aclose()
                raise own.with_traceback(None)
            if failure is not None:
                if response is not None:
                    await response.aclose()
                if attempt < self.policy.max_attempts and should_retry_exception(
                    call.mode, failure, request.headers
                ):
                    delay = self.policy.delay(attempt)
                    if why_unreachable is None or (
                        waited_unreachable + delay <= self.policy.unreachable_window
                    ):
                        waited_unreachable += delay if why_unreachable else 0.0
                        reason = f"{type(failure).__name__}: {failure}"
                        await self._pause(call, attempt, reason, None, delay)
                        continue
                raise self._transport_error(call, failure, attempt, why_unreachable) from failure
            assert response is not None
            if response.is_success or response.status_code in call.accept:
                return response
            # No locals hold the body or headers: a server that echoes the request would
            # otherwise put the key in this frame, and tracebacks can show frame locals.
            if should_retry_response(
                call.mode, response.status_code, response.headers, response.text
            ):
                if attempt < self.policy.max_attempts:
                    await self._pause(
                        call, attempt, f"HTTP {response.status_code}", response.headers
                    )
                    continue
                raise self._exhausted(call, response.status_code, attempt)
            if call.mode == "submit" and is_ingress_error(
                response.status_code, response.headers, response.text
            ):
                raise self._submit_uncertain(call, response.status_code, attempt)
            raise self.error(call, response)

    def error(self, call: Call, response: httpx.Response) -> FalError:
        """The project error for an error response (body read) to ``call``."""
        return error_from_response(
            response.status_code,
            response.headers,
            response.content,
            operation=call.operation,
            what=call.what,
            redact=self.redact,
            request_id=call.request_id,
        )

    def _build(self, call: Call) -> httpx.Request:
        """``client.build_request`` for an absolute URL, done directly: that method parses
        the URL twice and merges empty defaults (cookies, query) each time, half of its
        cost (tests/fal/test_fal_queue.py compares the two)."""
        body = call.body() if callable(call.body) else call.body
        client = self.client
        headers = httpx.Headers(client.headers)
        if call.headers:
            headers.update(call.headers)
        timeout = call.timeout or client.timeout
        return httpx.Request(
            call.method,
            call.url,
            params=call.params,
            headers=headers,
            cookies=client.cookies or None,
            json=call.json,
            content=body,
            extensions={"timeout": timeout.as_dict()},
        )

    async def _pause(
        self,
        call: Call,
        attempt: int,
        reason: str,
        headers: Mapping[str, str] | None,
        delay: float | None = None,
    ) -> None:
        delay = self.policy.delay(attempt, headers) if delay is None else delay
        log.info(
            "fal %s of %s: %s; retry %d/%d in %.2fs",
            call.operation,
            call.what,
            reason,
            attempt,
            self.policy.max_attempts - 1,
            delay,
        )
        await self.policy.sleep(delay)

    def _transport_error(
        self,
        call: Call,
        failure: httpx.TransportError,
        attempts: int,
        why_unreachable: str | None = None,
    ) -> FalError:
        reason = f"{type(failure).__name__}: {failure}"
        if isinstance(failure, NotSent):
            return FalConfigError(
                f"fal {call.operation} of {call.what}: not sent ({failure})",
                hint="nothing reached fal, so nothing is paid for; a header of the request "
                "holds a character HTTP forbids: check the SHOTGRAPH_* and FAL_* settings",
                request_id=call.request_id,
            )
        if why_unreachable is not None:
            host = httpx.URL(call.url).netloc.decode("ascii", "replace")
            return FalUnavailable(
                f"fal {call.operation} of {call.what}: cannot connect to {host}: "
                f"{why_unreachable} ({reason})",
                attempts=attempts,
                request_id=call.request_id,
                hint=UNREACHABLE_HINT,
            )
        if call.mode == "submit" and maybe_sent(failure):
            return FalSubmitUncertain(
                f"fal submit of {call.what}: the connection failed after the request was sent "
                f"({reason})",
                attempts=attempts,
                hint=f"the job may have been queued; check {_DASHBOARD} before submitting "
                "again (it is not retried automatically so it is never paid for twice)",
            )
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return FalUnavailable(
            f"fal {call.operation} of {call.what}: could not reach fal{tries} ({reason})",
            attempts=attempts,
            request_id=call.request_id,
            hint="check the network connection, or the URL in SHOTGRAPH_FAL_QUEUE_URL / "
            "SHOTGRAPH_FAL_REST_URL / FAL_QUEUE_RUN_HOST if set",
        )

    def _submit_uncertain(self, call: Call, status_code: int, attempts: int) -> FalError:
        return FalSubmitUncertain(
            f"fal submit of {call.what}: the gateway answered HTTP {status_code} after it "
            "may have passed the request on",
            attempts=attempts,
            status_code=status_code,
            hint=f"the job may have been queued; check {_DASHBOARD} before submitting "
            "again (it is not retried automatically so it is never paid for twice)",
        )

    def _exhausted(self, call: Call, status_code: int, attempts: int) -> FalUnavailable:
        hint = None
        if status_code == 429:
            hint = "fal is rate-limiting this account; lower the run's concurrency or try later"
        return FalUnavailable(
            f"fal {call.operation} of {call.what}: still HTTP {status_code} "
            f"after {attempts} attempts",
            attempts=attempts,
            status_code=status_code,
            request_id=call.request_id,
            hint=hint,
        )
