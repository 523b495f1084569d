"""One generation step on fal: claim, submit, journal, wait, fetch, store. Never twice.

The journal (in the store) is what makes a crash cheap. A step first claims its cache key;
the claim becomes a *submitted* entry holding fal's request id the moment fal answers the
submit, before anything waits on it. Whoever finds an entry:

- held by a run that is still going (same host: its process; another host: its heartbeat)
  waits for that run's result to land in the store, and never touches its job;
- held by a run that is gone takes it over (compare-and-swap: one survivor wins) and
  re-attaches to the journaled request, or, for a bare claim, submits with a warning.

Only the holder of an entry cancels its job or releases it. The one window no client can
close: a run killed after fal accepted a submit but before its answer arrived. fal has no
idempotency key, so the next run submits again, and says so.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.compile.steps import Step
from runner.errors import StepFailed
from runner.fal import (
    FalClient,
    FalError,
    FalJobFailed,
    FalNotFound,
    FalResultExpired,
    FalSubmitUncertain,
    FalValidationError,
    JobHandle,
    JobStatus,
)
from runner.fal.config import same_origin
from runner.run.budget import Budget
from runner.run.events import Event, NodeDownloading, NodeStarted, NodeSubmitted, Notice
from runner.run.job_wait import cancel_if_queued, wait_reporting
from runner.run.uploads import Materializer
from runner.store import (
    JournalConflict,
    JournalEntry,
    Owner,
    ResultRecord,
    Store,
    StoredFile,
)

WAIT_OTHER_RUN = (0.1, 2.0)  # first and longest pause between looks at another run's job


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


@dataclass(frozen=True)
class Held:
    """A job we hold the journal entry of, and whether an earlier run submitted it."""

    handle: JobHandle
    reattached: bool


class _Lost(Exception):
    """The job cannot be collected (its result or output expired, or fal does not know it)."""


async def generate(
    step: Step, upstream: Mapping[str, ResultRecord], ctx: GenerationContext, *, again: bool = False
) -> ResultRecord:
    """The step's result: stored by another run, re-attached to, or submitted and waited for;
    downloaded into the store."""
    assert step.endpoint is not None and step.body is not None
    found = await _hold(step, upstream, ctx)
    if isinstance(found, ResultRecord):
        return found
    try:
        return await _collect(step, found, ctx)
    except _Lost as lost:
        # fal dropped the job's result or output before we fetched it (a run down for hours),
        # or never knew it: the only way to the video is to render it again.
        ctx.store.release(step.key, ctx.owner)
        if again:
            raise StepFailed(str(lost)) from None
        ctx.emit(Notice(node=step.name, message=f"{lost}; submitting it again"))
        return await generate(step, upstream, ctx, again=True)


async def _collect(step: Step, held: Held, ctx: GenerationContext) -> ResultRecord:
    handle = held.handle
    try:
        status = await wait_reporting(
            step.name,
            handle,
            ctx.client,
            ctx.emit,
            on_cancel=lambda last: _on_cancel(step, handle, last, ctx),
        )
        result = await ctx.client.result(handle)
    except (FalResultExpired, FalNotFound) as exc:
        raise _Lost(exc.message) from None
    except FalJobFailed as exc:
        if held.reattached and exc.error_type == "client_cancelled":
            # Cancelled at Ctrl-C while still queued: it never ran, so it costs nothing.
            raise _Lost("the job was cancelled before it ran") from None
        ctx.store.release(step.key, ctx.owner)
        raise StepFailed(await _failure(step, handle, exc, ctx), exc.hint) from None
    except FalValidationError as exc:
        ctx.store.release(step.key, ctx.owner)
        raise StepFailed(_rejected(step, exc, ctx), exc.hint) from None
    except FalError as exc:
        # The job may still be fine at fal: keep the journal so the next run re-attaches.
        raise StepFailed(exc.message, exc.hint or "run again to re-attach to the job") from None
    record = await _fetch(step, handle, result, status, held.reattached, ctx)
    ctx.store.release(step.key, ctx.owner)
    return record


async def _hold(
    step: Step, upstream: Mapping[str, ResultRecord], ctx: GenerationContext
) -> Held | ResultRecord:
    """The job to wait on, with its journal entry ours; or the result itself, when another
    run that holds the entry stores it first."""
    pause, told = WAIT_OTHER_RUN[0], False
    while True:
        done = ctx.store.result_for(step.key, ctx.backend)
        if done is not None:
            return done
        entry = ctx.store.journal(step.key)
        if entry is None:
            if ctx.store.claim(step.key, ctx.owner) is not None:
                continue  # another run claimed it a moment ago: look again
            done = ctx.store.result_for(step.key, ctx.backend)  # finished and released?
            if done is not None:
                ctx.store.release(step.key, ctx.owner)
                return done
            return await _submit(step, upstream, ctx)
        if entry.owner == ctx.owner:  # ours: an earlier attempt of this run
            if entry.state == "submitted" and entry.handle:
                return Held(_reattach(JobHandle.from_dict(entry.handle), ctx.client), True)
            return await _submit(step, upstream, ctx)
        if ctx.store.owner_alive(entry.owner):
            if not told:
                ctx.emit(
                    Notice(
                        node=step.name,
                        message=f"waiting for {entry.owner.describe()}"
                        ", which is rendering this node",
                    )
                )
                told = True
            await asyncio.sleep(pause)
            pause = min(pause * 2, WAIT_OTHER_RUN[1])
            continue
        if not ctx.store.take_over(step.key, entry, ctx.owner):
            continue  # another survivor took it first: look again
        if entry.state == "submitted" and entry.handle:
            handle = _reattach(JobHandle.from_dict(entry.handle), ctx.client)
            ctx.emit(
                NodeSubmitted(
                    node=step.name,
                    request_id=handle.request_id,
                    endpoint=handle.endpoint_id,
                    reattached=True,
                )
            )
            return Held(handle, True)
        ctx.emit(Notice(node=step.name, message=_takeover_warning(entry)))
        return await _submit(step, upstream, ctx)


def _reattach(journaled: JobHandle, client: FalClient) -> JobHandle:
    """The journaled handle, or the same request under the queue we talk to now: a local
    emulator started again listens on another port (fal's own URLs do not move)."""
    if same_origin(journaled.status_url, client.config.queue_url):
        return journaled
    return client.handle(journaled.endpoint_id, journaled.request_id)


def _takeover_warning(entry: JournalEntry) -> str:
    return (
        f"{entry.owner.describe()} stopped while submitting this job; fal may have "
        "received it, so it can appear twice on https://fal.ai/dashboard/requests"
    )


async def _submit(step: Step, upstream: Mapping[str, ResultRecord], ctx: GenerationContext) -> Held:
    """Submit under our claim. Until the POST starts, giving up drops the claim (nothing was
    sent); once it has started, the claim stays, for the next run to warn about."""
    assert step.endpoint is not None and step.body is not None
    sent = False
    cost = 0.0
    try:
        cost = ctx.budget.reserve(step)
        ctx.emit(NodeStarted(node=step.name, what=f"submitting to {step.endpoint.id}"))
        body = await ctx.materializer.body(step.body, step.slots, upstream)
        sent = True
        handle = await ctx.client.submit(step.endpoint.id, body)
    except FalSubmitUncertain as exc:
        raise StepFailed(exc.message, exc.hint) from None
    except FalValidationError as exc:
        ctx.budget.refund(cost)
        ctx.store.release(step.key, ctx.owner)
        raise StepFailed(_rejected(step, exc, ctx), exc.hint) from None
    except (FalError, StepFailed) as exc:
        ctx.budget.refund(cost)
        ctx.store.release(step.key, ctx.owner)
        if isinstance(exc, StepFailed):
            raise
        raise StepFailed(exc.message, exc.hint) from None
    except BaseException:
        if not sent:
            ctx.store.release(step.key, ctx.owner)
        raise
    try:
        ctx.store.record_submission(step.key, ctx.owner, step.endpoint.id, handle.as_dict())
    except JournalConflict as conflict:
        # Another run judged us gone and took the key: both jobs exist now. Ours is paid
        # for and in hand, so it is still worth collecting.
        ctx.emit(Notice(node=step.name, message=conflict.message))
    ctx.emit(
        NodeSubmitted(node=step.name, request_id=handle.request_id, endpoint=handle.endpoint_id)
    )
    return Held(handle, False)


async def _on_cancel(
    step: Step, handle: JobHandle, last: JobStatus | None, ctx: GenerationContext
) -> None:
    """On Ctrl-C: a job still queued at fal costs nothing yet, so cancel it, and forget it
    once fal confirms it will not run; a running job stays journaled for the next run."""
    if await cancel_if_queued(ctx.client, handle, last):
        ctx.store.release(step.key, ctx.owner)


async def _failure(
    step: Step, handle: JobHandle, failed: FalJobFailed, ctx: GenerationContext
) -> str:
    """fal's message for a failed job; when the model rejected the request (a 422 in its
    result), each problem at the pipeline key it came from."""
    try:
        await ctx.client.result(handle)
    except FalValidationError as exc:
        return _rejected(step, exc, ctx)
    except FalError:
        pass
    return failed.message


def _rejected(step: Step, exc: FalValidationError, ctx: GenerationContext) -> str:
    issues = "; ".join(ctx.describe_issue(step, issue) for issue in exc.issues)
    return f"fal rejected the request: {issues or exc.message}"


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
        downloaded = await ctx.client.download(
            url, staging, expected_size=expected if isinstance(expected, int) else None
        )
    except FalResultExpired as exc:
        raise _Lost(exc.message) from None
    except FalError as exc:
        raise StepFailed(exc.message, exc.hint or "run again to fetch it") from None
    stored = await asyncio.to_thread(
        ctx.store.adopt_file, staging, StoredFile(downloaded.sha256, downloaded.size)
    )
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
