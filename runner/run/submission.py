"""Submitting one generation job under the journal, so that a crash never costs a job twice.

The order is the whole point (see :mod:`runner.store.journal`):

1. under our claim, the slow work: budget, uploads, the request body with its URLs;
2. the journal entry "submitting": the exact body, its sha256, the endpoint, the time;
   durable before anything is sent. If it cannot be written (a full disk), nothing is
   sent and the run stops;
3. the POST, right after: nothing slow (no upload, no hashing) sits between 2 and 3;
4. fal's answer turns the entry into "submitted" with the job's handle.

A run killed between 2 and 4 leaves the body it was sending. The run that takes the entry
over looks for its job in fal's request listing (:mod:`runner.run.reconcile`) and
re-attaches to it; only when fal has none does it send that very body again (never one
rebuilt with fresh upload URLs), and say so. An answer lost within a run (a dropped
connection or a read timeout after sending) is looked up the same way before the one
further POST.
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
from runner.run import reconcile
from runner.run.budget import Budget
from runner.run.events import Event, NodeStarted, NodeSubmitted, Notice
from runner.run.queue_client import QueueClient
from runner.run.uploads import Materializer
from runner.store import JournalConflict, JournalEntry, Owner, RemoteError, ResultRecord
from runner.store.journal import body_digest
from runner.store.tiered import TieredStore
from runner.store.writer import off_loop


@dataclass
class GenerationContext:
    """What every generation step of a run shares. ``stopping`` gives the reason the run is
    stopping (a full disk), if it is; ``stop`` tells the run to stop submitting."""

    store: TieredStore
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
    """Submit under our claim, or, for a ``journaled`` "submitting" entry we took over,
    find its job in fal's request listing and re-attach to it, else send that very body
    again. Until the entry says "submitting", giving up drops the claim (nothing was sent);
    from then on the entry stays, for the next run to look up.

    Raises JournalConflict when another run took the key over meanwhile (nothing sent).
    """
    assert step.endpoint is not None and step.body is not None
    endpoint = step.endpoint.id
    if journaled is not None and journaled.body is not None:
        found = await _look_up(step, journaled, ctx)
        if found is not None:
            ctx.emit(
                NodeSubmitted(
                    node=step.name, request_id=found.request_id, endpoint=endpoint, reattached=True
                )
            )
            return Held(found, True, journaled.body)
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
        await ctx.store.begin_submit(step.key, ctx.owner, endpoint, body, digest)
        sent = True
        handle = await _post(step, endpoint, body, digest, ctx)
    except (FalSubmitUncertain, FalProtocolError) as exc:
        if not sent:  # once sent, fal may have queued it: the entry stays for the next run
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


async def _post(
    step: Step, endpoint: str, body: dict[str, Any], digest: str, ctx: GenerationContext
) -> JobHandle:
    """POST the journaled body. When fal's answer is lost (the job may exist), look for the
    job in fal's request listing; send again, once, only when it is not there."""
    for attempt in (1, 2):
        try:
            return await ctx.client.submit(endpoint, body, node=step.name)
        except (FalSubmitUncertain, FalProtocolError) as exc:
            uncertain = exc
        entry = await ctx.store.journal(step.key)
        if entry is None or entry.state != "submitting" or entry.body_sha256 != digest:
            raise uncertain  # not ours any more: leave it to whoever holds it
        ctx.emit(
            Notice(
                node=step.name,
                message=f"fal's answer to the submit was lost ({uncertain.message}); "
                "looking for the job in fal's request listing",
            )
        )
        try:
            found = await reconcile.find_job(ctx.client, entry, waiting=_waiting(step, ctx))
        except reconcile.ListingUnavailable as failed:
            uncertain.hint = (
                f"fal's request listing could not be read ({failed.reason}); the job may "
                "have been queued: run again to look it up once more"
            )
            raise uncertain from None
        if found is not None:
            ctx.emit(Notice(node=step.name, message=reconcile.found_it(found)))
            return ctx.client.handle(endpoint, found.request_id)
        if attempt == 2:
            raise uncertain
        ctx.emit(Notice(node=step.name, message=reconcile.missing(ctx.client.config)))
        await ctx.store.begin_submit(step.key, ctx.owner, endpoint, body, digest)
    raise AssertionError("unreachable")


async def _look_up(step: Step, entry: JournalEntry, ctx: GenerationContext) -> JobHandle | None:
    """The job of a "submitting" entry a run left behind, from fal's request listing, now
    journaled as ours; None when fal has none (the caller sends the body again)."""
    assert step.endpoint is not None
    ctx.emit(Notice(node=step.name, message=takeover_warning(entry)))
    try:
        found = await reconcile.find_job(ctx.client, entry, waiting=_waiting(step, ctx))
    except reconcile.ListingUnavailable as failed:
        ctx.emit(
            Notice(
                node=step.name,
                message=f"fal's request listing could not be read ({failed.reason}), so the "
                "job cannot be looked up; sending the very same request again: it may "
                "appear twice on https://fal.ai/dashboard/requests",
            )
        )
        return None
    if found is None:
        ctx.emit(Notice(node=step.name, message=reconcile.missing(ctx.client.config)))
        return None
    ctx.emit(Notice(node=step.name, message=reconcile.found_it(found)))
    handle = ctx.client.handle(step.endpoint.id, found.request_id)
    await _record(step, step.endpoint.id, handle, ctx)
    return handle


def _waiting(step: Step, ctx: GenerationContext) -> Callable[[float], None]:
    def tell(seconds: float) -> None:
        ctx.emit(Notice(node=step.name, message=reconcile.still_looking(seconds)))

    return tell


async def _record(step: Step, endpoint: str, handle: JobHandle, ctx: GenerationContext) -> None:
    """Journal the accepted job's handle. On a full disk, spend the store's reserve and try
    once more: without the handle the next run would submit the paid job again. A shared
    store that cannot be reached stops the run; the handle is kept on this machine."""

    async def record() -> None:
        await ctx.store.record_submission(step.key, ctx.owner, endpoint, handle.as_dict())

    # From fal's answer to this commit is the window in which a kill pays twice. A local
    # journal once committed it on the event loop, to keep that window narrow (a thread
    # waits for the GIL at each step of a SQLite write), but the commit fsyncs: about 0.4 ms
    # on a quiet disk, tens of ms on a busy one, during which no other job's answer would
    # be read. On the writer thread (TieredStore.record_submission) the window grows by a
    # hand-over; a cancellation (Ctrl-C) still waits for the commit (see off_loop).
    try:
        try:
            await record()
        except DiskFull as full:
            ctx.stop(full)
            await off_loop(ctx.store.local.reserve.release)
            await record()
    except RemoteError as lost:
        ctx.stop(lost)
        ctx.emit(
            Notice(
                node=step.name,
                message=f"fal accepted request {handle.request_id}, but {lost.message}; it "
                "is journaled on this machine, and the next run here hands it to the store",
            )
        )
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
        await ctx.store.release(step.key, ctx.owner)


def _check_stopping(ctx: GenerationContext) -> None:
    reason = ctx.stopping()
    if reason is not None:
        raise RunStopping(f"not submitted: the run is stopping ({reason.message})")


def takeover_warning(entry: JournalEntry) -> str:
    return (
        f"{entry.owner.describe()} stopped while submitting this job, before fal's answer "
        "was journaled; looking for the job in fal's request listing before paying again"
    )


def rejected(step: Step, exc: FalValidationError, ctx: GenerationContext) -> str:
    issues = "; ".join(ctx.describe_issue(step, issue) for issue in exc.issues)
    return f"fal rejected the request: {issues or exc.message}"
