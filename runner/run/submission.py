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

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.compile.steps import Step
from runner.errors import DiskFull, RunStopping, ShotgraphError, StepFailed
from runner.fal import (
    FalError,
    FalProtocolError,
    FalSubmitUncertain,
    FalValidationError,
    JobHandle,
)
from runner.run.budget import Budget
from runner.run.events import Event, NodeStarted, NodeSubmitted, Notice
from runner.run.queue_client import QueueClient
from runner.run.store_thread import off_loop
from runner.run.uploads import Materializer
from runner.store import JournalConflict, JournalEntry, Owner, ResultRecord, Store
from runner.store.journal import body_digest


@dataclass
class GenerationContext:
    """What every generation step of a run shares. ``stopping`` gives the reason the run is
    stopping (a full disk), if it is; ``stop`` tells the run to stop submitting."""

    store: Store
    client: QueueClient
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
        handle = await ctx.client.submit(endpoint, body)
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
    await _record(step, endpoint, handle, ctx)
    ctx.emit(NodeSubmitted(node=step.name, request_id=handle.request_id, endpoint=endpoint))
    return Held(handle, False, body)


async def _record(step: Step, endpoint: str, handle: JobHandle, ctx: GenerationContext) -> None:
    """Journal the accepted job's handle. On a full disk, spend the store's reserve and try
    once more: without the handle the next run would submit the paid job again."""

    def record() -> None:
        ctx.store.record_submission(step.key, ctx.owner, endpoint, handle.as_dict())

    # From fal's answer to this commit is the window in which a kill pays twice. It was
    # written on the event loop once, to keep that window narrow (a thread waits for the GIL
    # at each step of a SQLite write), but the commit fsyncs: about 0.4 ms on a quiet disk,
    # tens of ms on a busy one, during which no other job's answer would be read. On the
    # writer thread the window grows by a hand-over; a cancellation (Ctrl-C) still waits
    # for the commit (see off_loop).
    try:
        try:
            await off_loop(record)
        except DiskFull as full:
            ctx.stop(full)
            await off_loop(ctx.store.reserve.release)
            await off_loop(record)
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
