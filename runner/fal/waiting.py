"""Waiting for a job: the SSE status stream first, polling when the stream lets us down.

The stream (``GET …/requests/{id}/status/stream?logs=1``) delivers each status change as a
``data:`` event the moment fal has it and closes after COMPLETED, so a completion is noticed
within milliseconds rather than a poll interval. When the stream cannot be opened, is not
an event stream, or breaks, one status poll covers the gap (a completion in between is
not missed) and the stream is reopened; after ``stream_attempts`` failures in a row (or at
once if the server has no stream: 404/405/406/501), the wait polls every
``poll_interval`` until the job is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass

import httpx

from runner.fal.config import FalConfig
from runner.fal.errors import FalError, FalHTTPError, FalJobFailed, FalProtocolError
from runner.fal.session import Call, Session
from runner.fal.sse import SSEDecoder, SSEEvent
from runner.fal.status import JobHandle, JobStatus, parse_status

log = logging.getLogger("runner.fal")

#: Receives every new status; may be a plain function or a coroutine function.
UpdateCallback = Callable[[JobStatus], Awaitable[None] | None]
Poll = Callable[[JobHandle, bool], Awaitable[JobStatus]]

_NO_STREAM = frozenset({404, 405, 406, 501})
# Seconds a stream may take to end after its final status before it is closed unread.
STREAM_END = 0.5


@dataclass(slots=True)
class _StreamOutcome:
    progressed: bool = False  # delivered a status not seen before
    unsupported: bool = False  # the server has no stream: do not try again


class Waiter:
    """Follows one job to its end; see the module docstring for the strategy."""

    def __init__(
        self,
        session: Session,
        config: FalConfig,
        auth_for: Callable[[str], httpx.Auth | None],
        poll: Poll,
    ) -> None:
        self._session = session
        self._config = config
        self._auth_for = auth_for
        self._poll = poll

    async def wait(
        self, handle: JobHandle, on_update: UpdateCallback | None, *, logs: bool
    ) -> JobStatus:
        """The final status; :class:`FalJobFailed` if the job completed with an error."""
        notify = _Notifier(on_update)
        streaming = self._config.use_stream and self._config.stream_attempts > 0
        failures = 0
        while True:
            if streaming:
                outcome = _StreamOutcome()
                async with aclosing(self._stream(handle, logs, outcome)) as statuses:
                    async for status in statuses:
                        # Only news counts as progress: a stream that repeats itself and
                        # closes is failing, and must not be reopened in a tight loop.
                        if await notify(status):
                            outcome.progressed = True
                        if status.done:
                            await _finish(statuses)
                            return _final(handle, status)
                failures = 0 if outcome.progressed else failures + 1
                if outcome.unsupported or failures >= self._config.stream_attempts:
                    log.info("fal: status stream of %s unavailable; polling", handle.request_id)
                    streaming = False
            status = await self._poll(handle, logs)
            await notify(status)
            if status.done:
                return _final(handle, status)
            if not streaming:
                await self._config.retry.sleep(self._config.poll_interval)
            elif failures:
                await self._config.retry.sleep(self._config.retry.backoff(failures))

    async def _stream(
        self, handle: JobHandle, logs: bool, outcome: _StreamOutcome
    ) -> AsyncGenerator[JobStatus, None]:
        """Statuses from one stream connection; it ends quietly when the connection does.

        Errors are recorded in ``outcome``, not raised: the caller falls back to polling,
        which reports any real problem (a bad key, an unknown request) with its own error.
        """
        call = Call(
            "GET",
            handle.stream_url,
            "status",
            f"request {handle.request_id}",
            mode="never",
            auth=self._auth_for(handle.stream_url),
            headers={"Accept": "text/event-stream", "Cache-Control": "no-cache"},
            params={"logs": "1" if logs else "0"},
            timeout=self._config.stream_timeout(),
            request_id=handle.request_id,
        )
        try:
            async with self._session.stream(call) as response:
                if "text/event-stream" not in response.headers.get("content-type", ""):
                    outcome.unsupported = True
                    return
                decoder = SSEDecoder()
                async for chunk in response.aiter_text():
                    for event in decoder.feed(chunk):
                        if (status := _event_status(event)) is not None:
                            yield status
                for event in decoder.flush():
                    if (status := _event_status(event)) is not None:
                        yield status
        except FalHTTPError as exc:
            outcome.unsupported = exc.status_code in _NO_STREAM
            log.debug("fal: status stream refused: HTTP %s", exc.status_code)
        except (FalError, httpx.TransportError) as exc:
            # A transport error here comes from reading the body; nothing of it is kept.
            log.debug("fal: status stream of %s broke: %s", handle.request_id, type(exc).__name__)
        except _BadEvent as exc:
            log.debug("fal: status stream of %s sent a bad event: %s", handle.request_id, exc)


async def _finish(statuses: AsyncGenerator[JobStatus, None]) -> None:
    """Read a stream to its end after the final status (fal closes it right after), so
    its connection goes back to the pool: one left half-read is closed, and the next
    request pays for a new connection. A stream that stays open is given up on."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(STREAM_END):
            async for _ in statuses:
                pass


class _BadEvent(Exception):
    pass


def _event_status(event: SSEEvent) -> JobStatus | None:
    if not event.data.strip():
        return None
    try:
        data = json.loads(event.data)
    except ValueError:
        raise _BadEvent(f"not JSON: {event.data[:100]!r}") from None
    try:
        return parse_status(data)
    except FalProtocolError:
        return None  # an event of another kind: not a status


def _final(handle: JobHandle, status: JobStatus) -> JobStatus:
    if not status.failed:
        return status
    kind = f" [{status.error_type}]" if status.error_type else ""
    said = status.error or f"the job ended as {status.state}"
    raise FalJobFailed(
        f"fal job {handle.request_id} on {handle.endpoint_id} failed{kind}: {said}",
        request_id=handle.request_id,
        error_type=status.error_type,
        status=status,
    )


class _Notifier:
    """Passes each status on once: a poll that changed nothing is not news."""

    def __init__(self, callback: UpdateCallback | None) -> None:
        self._callback = callback
        self._last: JobStatus | None = None

    async def __call__(self, status: JobStatus) -> bool:
        """Whether ``status`` was news."""
        if status == self._last:
            return False
        self._last = status
        if self._callback is not None:
            outcome = self._callback(status)
            if inspect.isawaitable(outcome):
                await outcome
        return True
