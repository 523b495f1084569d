"""One generation step on fal: claim, submit, journal, wait, fetch, store. Never twice.

The journal (in the store) is what makes a crash cheap. A step first claims its cache key;
the claim becomes a *submitted* entry holding fal's request id the moment fal answers the
submit, before anything waits on it. A later run (or a second run sharing the store) that
finds a submitted entry re-attaches to that request instead of submitting again; one that
finds a live claim waits for its owner; one that finds a dead owner's claim takes it over.

The one window no client can close: a run killed after fal accepted a submit but before
its answer arrived. fal has no idempotency key, so the next run submits again, and says so.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.budget import Budget
from runner.errors import StepFailed
from runner.events import (
    Event,
    NodeDownloading,
    NodeQueued,
    NodeRunning,
    NodeStarted,
    NodeSubmitted,
    Notice,
)
from runner.fal import (
    FalClient,
    FalError,
    FalJobFailed,
    FalResultExpired,
    FalSubmitUncertain,
    FalValidationError,
    JobHandle,
    JobStatus,
)
from runner.fal.config import same_origin
from runner.materialize import Materializer
from runner.steps import Step
from runner.store import JournalEntry, Owner, ResultRecord, Store

POLL_OTHER_RUN = 0.2  # seconds between looks at a job another live run is submitting


@dataclass
class GenerationContext:
    """What every generation step of a run shares."""

    store: Store
    client: FalClient
    materializer: Materializer
    owner: Owner
    backend: str
    budget: Budget
    emit: Callable[[Event], None]
    describe_issue: Callable[[Step, Any], str]


async def generate(
    step: Step, upstream: Mapping[str, ResultRecord], ctx: GenerationContext, *, again: bool = False
) -> ResultRecord:
    """The step's result: re-attached, waited for, or submitted; downloaded into the store."""
    assert step.endpoint is not None and step.body is not None
    found = await _handle_for(step, upstream, ctx)
    if isinstance(found, ResultRecord):
        return found  # another run finished it while we looked
    handle, reattached = found
    try:
        status = await _wait(step, handle, ctx)
        result = await ctx.client.result(handle)
    except FalResultExpired as exc:
        # fal dropped the result before we fetched it (a run down for hours): it is gone,
        # and the only way to the video is to render it again.
        ctx.store.release(step.key)
        if again:
            raise StepFailed(exc.message, exc.hint) from None
        ctx.emit(
            Notice(
                node=step.name, message="fal no longer has this job's result; submitting it again"
            )
        )
        return await generate(step, upstream, ctx, again=True)
    except FalJobFailed as exc:
        ctx.store.release(step.key)
        raise StepFailed(exc.message, exc.hint) from None
    except FalValidationError as exc:
        ctx.store.release(step.key)
        issues = "; ".join(ctx.describe_issue(step, issue) for issue in exc.issues) or exc.message
        raise StepFailed(f"fal rejected the request: {issues}", exc.hint) from None
    except FalError as exc:
        # The job may still be fine at fal: keep the journal so the next run re-attaches.
        raise StepFailed(exc.message, exc.hint or "run again to re-attach to the job") from None
    record = await _fetch(step, handle, result, status, reattached, ctx)
    ctx.store.release(step.key)
    return record


async def _handle_for(
    step: Step, upstream: Mapping[str, ResultRecord], ctx: GenerationContext
) -> tuple[JobHandle, bool] | ResultRecord:
    """A handle to wait on (the journaled one, or a new submission under our claim), or the
    result itself when another run sharing the store finished the job meanwhile."""
    while True:
        entry = ctx.store.journal(step.key)
        if entry is not None and entry.state == "submitted" and entry.handle:
            handle = _reattach(JobHandle.from_dict(entry.handle), ctx.client)
            ctx.emit(
                NodeSubmitted(
                    node=step.name,
                    request_id=handle.request_id,
                    endpoint=handle.endpoint_id,
                    reattached=True,
                )
            )
            return handle, True
        if entry is None:
            if ctx.store.claim(step.key, ctx.owner) is not None:
                continue  # another run claimed it a moment ago: look again
            # Claimed. A run that held the key until just now may have finished the job and
            # released it: its result is in the store, and submitting would pay twice.
            done = ctx.store.get_result(step.key)
            if done is not None:
                ctx.store.release(step.key, ctx.owner)
                return done
            return await _submit(step, upstream, ctx), False
        if entry.owner == ctx.owner:
            return await _submit(step, upstream, ctx), False
        if entry.owner.is_alive():
            await asyncio.sleep(POLL_OTHER_RUN)  # its owner is submitting it right now
            continue
        if ctx.store.take_over(step.key, entry, ctx.owner):
            done = ctx.store.get_result(step.key)
            if done is not None:
                ctx.store.release(step.key, ctx.owner)
                return done
            ctx.emit(Notice(node=step.name, message=_takeover_warning(entry)))
            return await _submit(step, upstream, ctx), False


def _reattach(journaled: JobHandle, client: FalClient) -> JobHandle:
    """The journaled handle, or the same request under the queue we talk to now: a local
    emulator started again listens on another port (fal's own URLs do not move)."""
    if same_origin(journaled.status_url, client.config.queue_url):
        return journaled
    return client.handle(journaled.endpoint_id, journaled.request_id)


def _takeover_warning(entry: JournalEntry) -> str:
    return (
        f"a previous run (pid {entry.owner.pid}) stopped while submitting this job; fal "
        "may have received it, so it can appear twice on https://fal.ai/dashboard/requests"
    )


async def _submit(
    step: Step, upstream: Mapping[str, ResultRecord], ctx: GenerationContext
) -> JobHandle:
    assert step.endpoint is not None and step.body is not None
    try:
        ctx.budget.reserve(step)
    except StepFailed:
        ctx.store.release(step.key, ctx.owner)
        raise
    ctx.emit(NodeStarted(node=step.name, what=f"submitting to {step.endpoint.id}"))
    try:
        body = await ctx.materializer.body(step.body, step.slots, upstream)
        handle = await ctx.client.submit(step.endpoint.id, body)
    except FalSubmitUncertain as exc:
        # Keep the claim: the next run sees a dead owner's claim and warns before resubmitting.
        raise StepFailed(exc.message, exc.hint) from None
    except FalError as exc:
        ctx.store.release(step.key, ctx.owner)
        raise StepFailed(exc.message, exc.hint) from None
    ctx.store.record_submission(step.key, ctx.owner, step.endpoint.id, handle.as_dict())
    ctx.emit(
        NodeSubmitted(node=step.name, request_id=handle.request_id, endpoint=handle.endpoint_id)
    )
    return handle


async def _wait(step: Step, handle: JobHandle, ctx: GenerationContext) -> JobStatus:
    last: list[JobStatus] = []

    def update(status: JobStatus) -> None:
        last[:] = [status]
        if status.state == "IN_QUEUE":
            ctx.emit(NodeQueued(node=step.name, position=status.queue_position))
        elif status.state == "IN_PROGRESS":
            message = status.logs[-1].get("message") if status.logs else None
            ctx.emit(NodeRunning(node=step.name, log=str(message) if message else None))

    try:
        return await ctx.client.wait(handle, update)
    except asyncio.CancelledError:
        await _cancel_if_queued(step, handle, last[0] if last else None, ctx)
        raise


async def _cancel_if_queued(
    step: Step, handle: JobHandle, last: JobStatus | None, ctx: GenerationContext
) -> None:
    """On Ctrl-C: a job still waiting in fal's queue costs nothing yet, so cancel it; one that
    is running stays journaled and the next run collects it."""
    if last is None or last.state != "IN_QUEUE":
        return
    try:
        outcome = await asyncio.wait_for(ctx.client.cancel(handle), timeout=5)
    except (FalError, TimeoutError):
        return
    if outcome in ("OK", "CANCELLATION_REQUESTED"):
        ctx.store.release(step.key)


async def _fetch(
    step: Step,
    handle: JobHandle,
    result: Mapping[str, Any],
    status: JobStatus,
    reattached: bool,
    ctx: GenerationContext,
) -> ResultRecord:
    assert step.endpoint is not None
    video = result.get("video")
    if not isinstance(video, Mapping):
        video = {}
    url = video.get("url")
    if not isinstance(url, str):
        raise StepFailed(
            f"fal's result for {step.name} has no video URL",
            hint="the endpoint's output changed shape; please report it",
        )
    ctx.emit(NodeDownloading(node=step.name))
    expected = video.get("file_size")
    # Unique per run: two runs sharing the store may fetch the same job at once.
    staging = Path(ctx.store.tmp_dir()) / f"{step.key}.{uuid.uuid4().hex}.part"
    try:
        await ctx.client.download(
            url, staging, expected_size=expected if isinstance(expected, int) else None
        )
    except FalError as exc:
        raise StepFailed(exc.message, exc.hint or "run again to fetch it") from None
    stored = ctx.store.put_file(staging, move=True)
    extra: dict[str, Any] = {"returned_seed": result.get("seed")}
    inference = status.metrics.get("inference_time") if status.metrics else None
    if inference is not None:
        extra["inference_time"] = inference
    if reattached:
        extra["reattached"] = True
    record = ResultRecord(
        key=step.key,
        node=step.name,
        kind=step.kind,
        endpoint=step.endpoint.id,
        backend=ctx.backend,
        request_id=handle.request_id,
        seed=step.seed,
        output=stored,
        content_type=str(video.get("content_type") or "video/mp4"),
        cost_usd=step.estimate.usd if step.estimate else None,
        result_url=url,
        recorded_at=time.time(),
        extra=extra,
    )
    ctx.store.put_result(record)
    return record
