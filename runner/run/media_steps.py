"""Local media steps (``frame``, ``stitch``): inputs from the store, work in a thread,
output into the store. Cached by content like every other step."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from runner import media
from runner.compile.sources import LocalFile, MediaSource, Remote, Upstream
from runner.compile.steps import Step
from runner.errors import StepFailed, disk_full
from runner.fal import FalError
from runner.run.queue_client import QueueClient
from runner.store import ResultRecord, Store, StoredFile, TieredStore


async def run_media_step(
    step: Step,
    upstream: Mapping[str, ResultRecord],
    shared: TieredStore,
    client: QueueClient | None,
    backend: str,
    limit: asyncio.Semaphore,
) -> ResultRecord:
    """Run a frame or stitch step and record its output (in the shared store too)."""
    store = shared.local
    lost = await shared.fetch_files(upstream.values())
    if lost:
        names = ", ".join(sorted(r.node for r in upstream.values() if r.key in lost))
        raise StepFailed(f"the output of {names} cannot be had", "run again to render it")
    sources = [await _local_path(slot.source, upstream, store, client) for slot in step.slots]
    suffix, content_type = (".png", "image/png") if step.kind == "frame" else (".mp4", "video/mp4")
    staging = Path(store.tmp_dir()) / f"{step.key}.{uuid.uuid4().hex}{suffix}"
    async with limit:
        try:
            if step.kind == "frame":
                assert step.at is not None
                await asyncio.to_thread(media.extract_frame, sources[0], staging, step.at)
            else:
                await asyncio.to_thread(media.stitch, sources, staging)
        except media.MediaError as exc:
            full = disk_full(exc, staging)
            if full is not None:
                raise full from None
            message = exc.message
            for slot, path in zip(step.slots, sources, strict=True):
                if isinstance(slot.source, Upstream):  # a store path means nothing to a user
                    message = message.replace(str(path), f"the output of '{slot.source.node}'")
            raise StepFailed(message, exc.hint) from None
    extra: dict[str, object] = {"at": str(step.at)} if step.at is not None else {}
    if step.kind == "stitch":  # a cut of clips with sound has sound
        sound = await asyncio.to_thread(media.audio_facts, staging)
        if sound is not None:
            extra["audio"] = sound
    stored = await asyncio.to_thread(store.put_file, staging, move=True)
    record = ResultRecord(
        key=step.key,
        node=step.name,
        kind=step.kind,
        endpoint=None,
        backend=backend,
        request_id=None,
        seed=None,
        output=stored,
        content_type=content_type,
        cost_usd=0.0,
        result_url=None,
        recorded_at=time.time(),
        extra=extra,
    )
    await shared.put_result(record)
    return record


async def _local_path(
    source: MediaSource,
    upstream: Mapping[str, ResultRecord],
    store: Store,
    client: QueueClient | None,
) -> Path:
    if isinstance(source, Upstream):
        return store.file_path(upstream[source.node].output.sha256)
    if isinstance(source, LocalFile):
        # Through the store, so the bytes used are exactly the ones the key was made from.
        stored = await asyncio.to_thread(store.put_file, source.path, expected_sha256=source.sha256)
        return store.file_path(stored.sha256)
    assert isinstance(source, Remote) and client is not None
    staging = Path(store.tmp_dir()) / f"remote.{uuid.uuid4().hex}.part"
    try:
        downloaded = await client.download(source.url, staging)
    except FalError as exc:
        raise StepFailed(f"cannot fetch {source.url}: {exc.message}", exc.hint) from None
    hashed = StoredFile(downloaded.sha256, downloaded.size)
    stored = await asyncio.to_thread(store.adopt_file, staging, hashed)
    return store.file_path(stored.sha256)
