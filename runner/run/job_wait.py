"""Waiting on a fal job while telling the reporter how it goes, and cancelling it at Ctrl-C."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from runner.fal import FalError, FalNotFound, JobHandle, JobStatus
from runner.run.events import Event, NodeQueued, NodeRunning
from runner.run.queue_client import QueueClient

CANCEL_TIMEOUT = 5.0


class FalSlot:
    """One of a run's places at fal (``-j``, the jobs at fal at once): taken before the
    submit, given back the moment fal says the job is done. Fetching the result,
    downloading and recording it happen after, so a ready node never waits behind them
    while fal has room (fal counts only the jobs it runs)."""

    def __init__(self, slots: asyncio.Semaphore) -> None:
        self._slots = slots
        self._held = False

    async def take(self) -> None:
        if not self._held:
            await self._slots.acquire()
            self._held = True

    def free(self) -> None:
        if self._held:
            self._held = False
            self._slots.release()


async def wait_reporting(
    node: str,
    handle: JobHandle,
    client: QueueClient,
    emit: Callable[[Event], None],
    *,
    on_cancel: Callable[[JobStatus | None], Awaitable[None]],
) -> JobStatus:
    """The final status of the job; queue positions and progress go to ``emit``. On
    cancellation (Ctrl-C), ``on_cancel`` gets the last status seen, then it re-raises."""
    last: list[JobStatus] = []

    def update(status: JobStatus) -> None:
        last[:] = [status]
        if status.state == "IN_QUEUE":
            emit(NodeQueued(node=node, position=status.queue_position))
        elif status.state == "IN_PROGRESS":
            message = status.logs[-1].get("message") if status.logs else None
            emit(NodeRunning(node=node, log=str(message) if message else None))

    try:
        return await client.wait(handle, update)
    except asyncio.CancelledError:
        await on_cancel(last[0] if last else None)
        raise


async def cancel_if_queued(client: QueueClient, handle: JobHandle, last: JobStatus | None) -> bool:
    """Cancel a job last seen waiting in fal's queue (one not polled yet is asked first: a
    job submitted a moment before the signal is most likely queued); True only when fal
    confirms it will not run (fal answers "cancellation requested" for a running job too,
    so its status decides)."""
    if last is None:
        try:
            last = await asyncio.wait_for(client.status(handle), CANCEL_TIMEOUT)
        except (FalError, TimeoutError):  # not found too: a job just sent may not show yet
            return False
    if last.state != "IN_QUEUE":
        return False
    try:
        outcome = await asyncio.wait_for(client.cancel(handle), CANCEL_TIMEOUT)
        if outcome == "NOT_FOUND":
            return True
        if outcome not in ("OK", "CANCELLATION_REQUESTED"):
            return False
        after = await asyncio.wait_for(client.status(handle), CANCEL_TIMEOUT)
    except FalNotFound:
        return True  # removed from the queue
    except (FalError, TimeoutError):
        return False
    return after.state == "COMPLETED" and after.error is not None
