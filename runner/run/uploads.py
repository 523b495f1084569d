"""Turning a step's media placeholders into what fal can fetch: URLs.

A project file is uploaded once per content hash and backend, and uploaded again only when
its URL has expired. Another node's output is passed by the URL fal returned for it while
that is fresh, else its bytes are uploaded from the store like any file.

fal keeps an uploaded file as long as the account's storage settings say, which a client
cannot know; so every upload asks for a lifetime (``X-Fal-Object-Lifecycle-Preference``)
and its record expires with it. A URL fal can no longer download anyway (a job failed with
``file_download_error``) is forgotten (:meth:`Materializer.forget`) and uploaded again.
"""

from __future__ import annotations

import asyncio
import mimetypes
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from runner.compile.sources import LocalFile, MediaSource, Remote, Upstream
from runner.compile.steps import Slot, fill_slots
from runner.errors import StepFailed
from runner.fal.config import same_origin
from runner.run.queue_client import QueueClient
from runner.store import UPLOAD_MARGIN, ResultRecord, TieredStore, UploadRecord

# How long a result URL fal returned is trusted to stay fetchable.
RESULT_URL_TTL = 3600.0
# The lifetime every upload asks fal for (one of fal's presets, "7d"): long enough to serve
# a week of reruns, short enough not to keep a studio's keyframes on a public CDN forever.
UPLOAD_LIFETIME = 7 * 24 * 3600


class Materializer:
    """Resolves slots for one backend, sharing uploads between the steps of a run."""

    def __init__(self, store: TieredStore, client: QueueClient, backend: str) -> None:
        self.store = store
        self.client = client
        self.backend = backend
        self.started = time.time()
        self._uploads: dict[str, asyncio.Future[UploadRecord]] = {}  # this run's, by hash
        self._dead: set[str] = set()  # URLs fal could not download from

    async def body(
        self, body: Mapping[str, Any], slots: tuple[Slot, ...], upstream: Mapping[str, ResultRecord]
    ) -> dict[str, Any]:
        """A copy of ``body`` with every slot replaced by a URL."""
        urls = {slot.pointer: await self.url(slot.source, upstream) for slot in slots}
        return fill_slots(body, urls)

    async def url(self, source: MediaSource, upstream: Mapping[str, ResultRecord]) -> str:
        if isinstance(source, Remote):
            return source.url
        if isinstance(source, Upstream):
            record = upstream[source.node]
            if record.result_url and self._reusable(record):
                return record.result_url
            sha256 = record.output.sha256
            return await self._upload_once(sha256, lambda: self._upload_output(record))
        assert isinstance(source, LocalFile)
        return await self._upload_once(source.sha256, lambda: self._upload_project_file(source))

    async def forget(
        self, urls: set[str], slots: tuple[Slot, ...], upstream: Mapping[str, ResultRecord]
    ) -> bool:
        """Stop using ``urls`` (fal could not download them) for the sources of ``slots``:
        their upload records are dropped and an upstream's result URL is no longer passed
        on, so the next :meth:`body` uploads them again. False when none of them is ours to
        renew (only URLs the pipeline names itself)."""
        named = {slot.source.url for slot in slots if isinstance(slot.source, Remote)}
        ours = urls - named
        if not ours:
            return False
        self._dead |= ours
        for slot in slots:
            source = slot.source
            if isinstance(source, Upstream):
                sha256 = upstream[source.node].output.sha256
            elif isinstance(source, LocalFile):
                sha256 = source.sha256
            else:
                continue
            for url in ours:
                # Only a record still naming the dead URL: another step may have renewed it.
                await self.store.forget_upload(self.backend, sha256, url)
        return True

    def _reusable(self, record: ResultRecord) -> bool:
        """Whether the URL fal returned for an upstream output can be passed on as is."""
        assert record.result_url is not None
        if record.result_url in self._dead:
            return False
        if record.backend != self.backend or time.time() - record.recorded_at >= RESULT_URL_TTL:
            return False
        # A loopback URL (the local emulator's) lives only as long as the server that made
        # it: trusted within this run, from this server.
        if _loopback(record.result_url):
            return record.recorded_at >= self.started and same_origin(
                record.result_url, self.client.config.queue_url
            )
        return True

    def _servable(self, url: str) -> bool:
        """Whether a recorded upload URL can be handed to the backend we talk to: a loopback
        one (the local emulator's, perhaps recorded by another machine sharing the store)
        only if it is this very server's."""
        return url not in self._dead and (
            not _loopback(url) or same_origin(url, self.client.config.queue_url)
        )

    async def _upload_once(self, sha256: str, upload: Callable[[], Awaitable[UploadRecord]]) -> str:
        """The URL of a file by its hash: uploaded by this run (or being uploaded for another
        of its steps: steps that start together share one upload), remembered in the store,
        or uploaded now."""
        task = self._this_runs(sha256)
        if task is None:
            known = await self.store.get_upload(self.backend, sha256)
            if known is not None and self._servable(known.url):
                return known.url
            # Looked up again: another step's upload may have started, or ended, while the
            # store was read (a read that began before its record was written misses it).
            task = self._this_runs(sha256)
            if task is None:
                task = asyncio.ensure_future(upload())
                self._uploads[sha256] = task
        uploaded = await asyncio.shield(task)  # one step cancelled must not cancel the others'
        return uploaded.url

    def _this_runs(self, sha256: str) -> asyncio.Future[UploadRecord] | None:
        """This run's upload of a file: under way, or done with a URL fal can still fetch,
        by the store's rule (a failed one is tried again by the next step that needs it)."""
        task = self._uploads.get(sha256)
        if task is None or not task.done():
            return task
        if task.cancelled() or task.exception() is not None:
            return None
        uploaded = task.result()
        usable = uploaded.url not in self._dead and uploaded.usable(time.time(), UPLOAD_MARGIN)
        return task if usable else None

    async def _upload_project_file(self, source: LocalFile) -> UploadRecord:
        # Through the store: the bytes sent must be the ones the cache key was made from, even
        # if the file is edited while the run goes on (that fails the node instead).
        stored = await asyncio.to_thread(
            self.store.local.put_file, source.path, expected_sha256=source.sha256
        )
        return await self._upload(stored.sha256, _content_type(source.path))

    async def _upload_output(self, record: ResultRecord) -> UploadRecord:
        # Another machine's output may still be only in the shared store: fetch it first.
        if await self.store.fetch_files([record]):
            raise StepFailed(f"the output of '{record.node}' cannot be had to upload")
        return await self._upload(record.output.sha256, record.content_type)

    async def _upload(self, sha256: str, content_type: str) -> UploadRecord:
        """Upload a stored file (named for fal by its hash) and remember its URL."""
        path = self.store.local.file_path(sha256)
        suffix = mimetypes.guess_extension(content_type) or ""
        uploaded = await self.client.upload(
            path, content_type, file_name=f"{sha256[:16]}{suffix}", lifetime=UPLOAD_LIFETIME
        )
        expiry = uploaded.expires_at
        expires = expiry.timestamp() if expiry is not None else None
        record = UploadRecord(self.backend, sha256, uploaded.url, expires)
        # A loopback URL means nothing on another machine: it stays in the local store.
        await self.store.put_upload(record, share=not _loopback(uploaded.url))
        return record


def _loopback(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


def _content_type(path: Path) -> str:
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"
