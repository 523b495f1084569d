"""One generation step on fal: claim, submit, journal, wait, fetch, store. Never twice.

The journal (in the store) is what makes a crash cheap. A step first claims its cache key;
:mod:`runner.run.submission` journals the exact body before the POST and fal's request id the
moment fal answers, before anything waits on it. Whoever finds an entry:

- held by a run that is still going (same host: its process; another host: its heartbeat)
  waits for that run's result to land in the store, and never touches its job;
- held by a run that is gone takes it over (compare-and-swap: one survivor wins) and
  re-attaches to the journaled request; for an entry caught mid-submit, looks for its job in
  fal's request listing (:mod:`runner.run.reconcile`) and re-attaches to it, or, when fal
  has none, sends the journaled body again and says so; for a bare claim (nothing was
  sent), submits.

Only the holder of an entry cancels its job or releases it.

An uploaded input whose URL fal can no longer download (it expired sooner than recorded)
has its upload record dropped; the step uploads it again and is submitted once more.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from runner import media
from runner.compile.steps import Step
from runner.errors import StepFailed, disk_full
from runner.fal import (
    FalError,
    FalJobFailed,
    FalNotFound,
    FalResultExpired,
    FalValidationError,
    JobHandle,
    JobStatus,
)
from runner.fal.config import same_origin
from runner.run.events import NodeDownloading, NodeSubmitted, Notice
from runner.run.job_wait import FalSlot, cancel_if_queued, wait_reporting
from runner.run.submission import GenerationContext, Held, rejected, submit
from runner.store import JournalConflict, ResultRecord, StoredFile
from runner.store.writer import expect_writes

__all__ = ["Generated", "GenerationContext", "generate"]

WAIT_OTHER_RUN = (0.1, 2.0)  # first and longest pause between looks at another run's job
DOWNLOAD_ERROR = "file_download_error"

# How a step's result came to this run: a job it submitted (and paid for), one an earlier
# run submitted (re-attached after a crash), or the result another run recorded.
Provenance = Literal["submitted", "reattached", "received"]


@dataclass(frozen=True)
class Generated:
    """A generation step's result and how this run came by it."""

    record: ResultRecord
    how: Provenance


class _Lost(Exception):
    """The job cannot be collected (its result or output expired, or fal does not know it)."""


class _DeadInputs(Exception):
    """fal could not download some of the job's input URLs."""

    def __init__(self, urls: set[str], message: str, hint: str | None) -> None:
        super().__init__(message)
        self.urls = urls
        self.message = message
        self.hint = hint


async def generate(
    step: Step,
    upstream: Mapping[str, ResultRecord],
    ctx: GenerationContext,
    *,
    slot: FalSlot | None = None,
    again: bool = False,
    renewed: bool = False,
) -> Generated:
    """The step's result: stored by another run, re-attached to, or submitted and waited for;
    downloaded into the store. ``slot`` (held by the caller) is freed once fal is done with
    the job, and taken again before a second submit."""
    assert step.endpoint is not None and step.body is not None
    if slot is not None:
        await slot.take()
    with expect_writes():  # the store's group commits wait a moment for company
        return await _generate(step, upstream, ctx, slot, again=again, renewed=renewed)


async def _generate(
    step: Step,
    upstream: Mapping[str, ResultRecord],
    ctx: GenerationContext,
    slot: FalSlot | None,
    *,
    again: bool,
    renewed: bool,
) -> Generated:
    if slot is not None:
        await slot.take()  # again, after a first job was lost
    found = await _hold(step, upstream, ctx)
    if isinstance(found, ResultRecord):
        return Generated(found, "received")
    try:
        record = await _collect(step, found, ctx, slot)
    except _Lost as lost:
        # fal dropped the job's result or output before we fetched it (a run down for hours),
        # or never knew it: the only way to the video is to render it again.
        await ctx.store.release(step.key, ctx.owner)
        if again:
            raise StepFailed(str(lost)) from None
        ctx.emit(Notice(node=step.name, message=f"{lost}; submitting it again"))
        return await _generate(step, upstream, ctx, slot, again=True, renewed=renewed)
    except _DeadInputs as dead:
        # An uploaded input's URL expired before its record said: upload it again, once.
        if renewed or not await ctx.materializer.forget(dead.urls, step.slots, upstream):
            raise StepFailed(dead.message, dead.hint) from None
        ctx.emit(
            Notice(
                node=step.name,
                message=f"fal could not download {len(dead.urls)} input(s) any more "
                "(their URLs expired); uploading again and submitting once more",
            )
        )
        return await _generate(step, upstream, ctx, slot, again=again, renewed=True)
    return Generated(record, "reattached" if found.reattached else "submitted")


async def _collect(
    step: Step, held: Held, ctx: GenerationContext, slot: FalSlot | None
) -> ResultRecord:
    handle = held.handle
    try:
        status = await wait_reporting(
            step.name,
            handle,
            ctx.client,
            ctx.emit,
            on_cancel=lambda last: _on_cancel(step, handle, last, ctx),
        )
        if slot is not None:
            slot.free()  # fal is done with it: the next ready node may go while we fetch
        result = await ctx.client.result(handle)
    except (FalResultExpired, FalNotFound) as exc:
        raise _Lost(exc.message) from None
    except FalJobFailed as exc:
        if held.reattached and exc.error_type == "client_cancelled":
            # Cancelled at Ctrl-C while still queued: it never ran, so it costs nothing.
            raise _Lost("the job was cancelled before it ran") from None
        await ctx.store.release(step.key, ctx.owner)
        refusal = await _refusal(handle, ctx)
        if refusal is None:
            raise StepFailed(exc.message, exc.hint) from None
        _raise_if_dead_inputs(step, refusal, held, ctx)
        raise StepFailed(rejected(step, refusal, ctx), refusal.hint) from None
    except FalValidationError as exc:
        await ctx.store.release(step.key, ctx.owner)
        _raise_if_dead_inputs(step, exc, held, ctx)
        raise StepFailed(rejected(step, exc, ctx), exc.hint) from None
    except FalError as exc:
        # The job may still be fine at fal: keep the journal so the next run re-attaches.
        raise StepFailed(exc.message, exc.hint or "run again to re-attach to the job") from None
    return await _fetch(step, handle, result, status, held.reattached, ctx)


async def _hold(
    step: Step, upstream: Mapping[str, ResultRecord], ctx: GenerationContext
) -> Held | ResultRecord:
    """The job to wait on, with its journal entry ours; or the result itself, when another
    run that holds the entry stores it first."""
    pause, told = WAIT_OTHER_RUN[0], False
    while True:
        # Its result; else who holds it; else our claim (one trip off the loop, locally).
        look = await ctx.store.first_look(step.key, ctx.backend, ctx.owner)
        if look.result is not None:
            return look.result
        entry = look.entry
        if look.claimed:
            journaled = None
        elif entry is None:
            continue  # another run claimed it a moment ago: look again
        elif entry.owner == ctx.owner:  # ours: an earlier attempt of this run
            if entry.state == "submitted" and entry.handle:
                handle = _reattach(JobHandle.from_dict(entry.handle), ctx)
                return Held(handle, True, entry.body)
            journaled = entry if entry.state == "submitting" else None
        elif await ctx.store.owner_alive(entry.owner):
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
        elif not await ctx.store.take_over(step.key, entry, ctx.owner):
            continue  # another survivor took it first: look again
        elif entry.state == "submitted" and entry.handle:
            handle = _reattach(JobHandle.from_dict(entry.handle), ctx)
            ctx.emit(
                NodeSubmitted(
                    node=step.name,
                    request_id=handle.request_id,
                    endpoint=handle.endpoint_id,
                    reattached=True,
                )
            )
            return Held(handle, True, entry.body)
        else:
            journaled = entry if entry.state == "submitting" else None
        try:
            return await submit(step, upstream, ctx, journaled=journaled)
        except JournalConflict:
            continue  # another run took the key over meanwhile: it submits; we look again


def _reattach(journaled: JobHandle, ctx: GenerationContext) -> JobHandle:
    """The journaled handle, or the same request under the queue we talk to now: a local
    emulator started again listens on another port (fal's own URLs do not move)."""
    if same_origin(journaled.status_url, ctx.client.config.queue_url):
        return journaled
    return ctx.client.handle(journaled.endpoint_id, journaled.request_id)


async def _on_cancel(
    step: Step, handle: JobHandle, last: JobStatus | None, ctx: GenerationContext
) -> None:
    """On Ctrl-C: a job still queued at fal costs nothing yet, so cancel it, and forget it
    once fal confirms it will not run; a running job stays journaled for the next run."""
    if await cancel_if_queued(ctx.client, handle, last):
        await ctx.store.release(step.key, ctx.owner)


async def _refusal(handle: JobHandle, ctx: GenerationContext) -> FalValidationError | None:
    """The model's 422 for a failed job (fal puts it in the job's result), if that is why
    it failed."""
    try:
        await ctx.client.result(handle)
    except FalValidationError as exc:
        return exc
    except FalError:
        pass
    return None


def _raise_if_dead_inputs(
    step: Step, refusal: FalValidationError, held: Held, ctx: GenerationContext
) -> None:
    """Raise _DeadInputs when fal could not download some of the job's inputs."""
    urls: set[str] = set()
    for issue in refusal.issues:
        if issue.type != DOWNLOAD_ERROR:
            continue
        url = issue.input
        if not isinstance(url, str) and held.body is not None:
            url = _at(held.body, issue.field_path)
        if isinstance(url, str):
            urls.add(url)
    if urls:
        raise _DeadInputs(urls, rejected(step, refusal, ctx), refusal.hint)


def _at(body: Any, path: tuple[str | int, ...]) -> Any:
    """The value at ``path`` in ``body``; None when there is none."""
    for part in path:
        try:
            body = body[part]
        except (KeyError, IndexError, TypeError):
            return None
    return body


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
    staging = Path(ctx.store.local.tmp_dir()) / f"{step.key}.{uuid.uuid4().hex}.part"
    try:
        downloaded = await ctx.client.download(
            url, staging, expected_size=expected if isinstance(expected, int) else None
        )
    except FalResultExpired as exc:
        raise _Lost(exc.message) from None
    except FalError as exc:
        raise StepFailed(exc.message, exc.hint or "run again to fetch it") from None
    except OSError as exc:
        raise disk_full(exc, staging) or exc from None
    # LTX-2 renders sound: the lockfile records the output's audio stream. Endpoints that
    # render none are not probed (opening the file costs more than the rest of it).
    sound = await asyncio.to_thread(media.audio_facts, staging) if step.endpoint.sound else None
    extra: dict[str, Any] = {"returned_seed": result.get("seed")}
    if sound is not None:
        extra["audio"] = sound
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
        output=StoredFile(downloaded.sha256, downloaded.size),
        content_type=str(video.get("content_type") or "video/mp4"),
        cost_usd=step.estimate.usd if step.estimate else None,
        result_url=url,
        recorded_at=time.time(),
        extra=extra,
    )
    # Stored, recorded, then our claim released once the result is durable: one trip.
    await ctx.store.keep_result(staging, record, ctx.owner)
    return record
