"""Submitting one generation job under the journal, so that a crash never costs a job twice.

The order is the whole point (see :mod:`runner.store.journal`):

1. under our claim, the slow work: budget, uploads, the request body with its URLs;
2. the journal entry "submitting": the exact body, its sha256, the endpoint, the time;
   durable before anything is sent. If it cannot be written (a full disk), nothing is
   sent and the run stops;
3. the POST, right after: nothing slow (no upload, no hashing) sits between 2 and 3;
4. fal's answer turns the entry into "submitted" with the job's handle.

A run killed between 2 and 4 leaves the body it was sending; the run that takes the entry
over sends that very body again (fal may have received the first: it warns), never one
rebuilt with fresh upload URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from runner.compile.steps import Step
from runner.errors import DiskFull, RunStopping, ShotgraphError, StepFailed
from runner.fal import (
    FalClient,
    FalError,
    FalProtocolError,
    FalSubmitUncertain,
    FalValidationError,
    JobHandle,
)
from runner.run.budget import Budget
from runner.run.events import Event, NodeStarted, NodeSubmitted, Notice
from runner.run.uploads import Materializer
from runner.store import JournalConflict, JournalEntry, Owner, ResultRecord, Store
from runner.store.journal import body_digest

T = TypeVar("T")


class _Writer:
    """One thread running the store's writes in order.

    One thread, because several would contend for SQLite's write lock, and SQLite's busy
    handler backs off by sleeping (up to 100 ms at a time).
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]]
        self._queue = queue.SimpleQueue()
        self._started = False
        self._lock = threading.Lock()

    def submit(self, call: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((call, future))
        with self._lock:
            if not self._started:
                # A daemon: every write is awaited by the step that asked for it, so none
                # is pending when the run ends.
                threading.Thread(target=self._run, name="shotgraph-store", daemon=True).start()
                self._started = True
        return future

    def _run(self) -> None:
        while True:
            call, future = self._queue.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:  # handed to the awaiting step, whatever it is
                future.set_exception(exc)


_WRITER = _Writer()


async def off_loop(call: Callable[..., T], *args: Any) -> T:
    """``call(*args)`` on the store's writer thread: a journal write fsyncs, and meanwhile
    the event loop must go on reading the other jobs' answers. A cancellation waits for the
    write to finish, so the task unwinds with the entry in a known state."""
    work = asyncio.wrap_future(_WRITER.submit(functools.partial(call, *args)))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait([work])
        raise


@dataclass
class GenerationContext:
    """What every generation step of a run shares. ``stopping`` gives the reason the run is
    stopping (a full disk), if it is; ``stop`` tells the run to stop submitting."""

    store: Store
    client: FalClient
    materializer: Materializer
    owner: Owner
    backend: str
    budget: Budget
    emit: Callable[[Event], None]
    describe_issue: Callable[[Step, Any], str]
    stopping: Callable[[], ShotgraphError | None] = lambda: None
    stop: Callable[[ShotgraphError], None] = lambda reason: None


@dataclass(frozen=True)
class Held:
    """A job we hold the journal entry of; whether an earlier run submitted it; the body
    it was submitted with, when known (an entry of an older version has none)."""

    handle: JobHandle
    reattached: bool
    body: Mapping[str, Any] | None = None


async def submit(
    step: Step,
    upstream: Mapping[str, ResultRecord],
    ctx: GenerationContext,
    *,
    journaled: JournalEntry | None = None,
) -> Held:
    """Submit under our claim, or send again the body of a ``journaled`` "submitting" entry
    we took over. Until the entry says "submitting", giving up drops the claim (nothing was
    sent); from then on the entry stays, for the next run to send again and warn about.

    Raises JournalConflict when another run took the key over meanwhile (nothing sent).
    """
    assert step.endpoint is not None and step.body is not None
    endpoint = step.endpoint.id
    sent = False
    cost = 0.0
    try:
        _check_stopping(ctx)
        cost = ctx.budget.reserve(step)
        ctx.emit(NodeStarted(node=step.name, what=f"submitting to {endpoint}"))
        if journaled is not None and journaled.body is not None:
            body: dict[str, Any] = dict(journaled.body)
        else:
            body = await ctx.materializer.body(step.body, step.slots, upstream)
        digest = body_digest(body)
        _check_stopping(ctx)
        # Durable first, then straight to the POST. A cancellation (Ctrl-C) during the
        # write unwinds before the POST, and the entry is dropped with the claim.
        await off_loop(ctx.store.begin_submit, step.key, ctx.owner, endpoint, body, digest)
        sent = True
        handle = await ctx.client.submit(endpoint, body, node=step.name)
    except (FalSubmitUncertain, FalProtocolError) as exc:
        if sent:  # fal may have queued it: the "submitting" entry stays for the next run
            raise StepFailed(exc.message, exc.hint) from None
        await _give_up(step, ctx, cost)
        raise StepFailed(exc.message, exc.hint) from None
    except FalValidationError as exc:
        await _give_up(step, ctx, cost)
        raise StepFailed(rejected(step, exc, ctx), exc.hint) from None
    except (FalError, StepFailed, RunStopping) as exc:
        await _give_up(step, ctx, cost)
        if isinstance(exc, FalError):
            raise StepFailed(exc.message, exc.hint) from None
        raise
    except JournalConflict:
        ctx.budget.refund(cost)  # the key is another run's now: it submits, not us
        raise
    except DiskFull as full:
        await _give_up(step, ctx, cost)  # the entry could not be written: nothing was sent
        ctx.stop(full)
        raise
    except BaseException:
        if not sent:
            await _give_up(step, ctx, cost)
        raise
    _record(step, endpoint, handle, ctx)
    ctx.emit(NodeSubmitted(node=step.name, request_id=handle.request_id, endpoint=endpoint))
    return Held(handle, False, body)


def _record(step: Step, endpoint: str, handle: JobHandle, ctx: GenerationContext) -> None:
    """Journal the accepted job's handle. On a full disk, spend the store's reserve and try
    once more: without the handle the next run would submit the paid job again."""

    def record() -> None:
        ctx.store.record_submission(step.key, ctx.owner, endpoint, handle.as_dict())

    # Right here on the event loop, not queued for the writer thread: from fal's answer to
    # this commit is the window in which a kill pays twice, and a thread waits for the GIL
    # (5 ms at a time while the loop is busy) at every step of a SQLite write.
    try:
        try:
            record()
        except DiskFull as full:
            ctx.stop(full)
            ctx.store.reserve.release()
            record()
    except JournalConflict as conflict:
        # Another run judged us gone and took the key: both jobs exist now. Ours is paid
        # for and in hand, so it is still worth collecting.
        ctx.emit(Notice(node=step.name, message=conflict.message))
    except DiskFull:
        ctx.emit(
            Notice(
                node=step.name,
                message=f"fal accepted request {handle.request_id}, but the disk is too full "
                "to journal it; this run still collects it if it can, else the next run "
                "sends the same request again",
            )
        )


async def _give_up(step: Step, ctx: GenerationContext, cost: float) -> None:
    """Nothing was sent: give the budget back and drop our claim (best effort on a full
    disk: a dead run's bare claim is taken over without a warning anyway)."""
    ctx.budget.refund(cost)
    with contextlib.suppress(ShotgraphError):
        await off_loop(ctx.store.release, step.key, ctx.owner)


def _check_stopping(ctx: GenerationContext) -> None:
    reason = ctx.stopping()
    if reason is not None:
        raise RunStopping(f"not submitted: the run is stopping ({reason.message})")


def takeover_warning(entry: JournalEntry) -> str:
    return (
        f"{entry.owner.describe()} stopped while submitting this job; fal may have "
        "received it, so it can appear twice on https://fal.ai/dashboard/requests; "
        "sending the very same request again"
    )


def rejected(step: Step, exc: FalValidationError, ctx: GenerationContext) -> str:
    issues = "; ".join(ctx.describe_issue(step, issue) for issue in exc.issues)
    return f"fal rejected the request: {issues or exc.message}"
