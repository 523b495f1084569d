"""An in-memory fal at the seam of a run: :class:`FakeFal` does what
:class:`runner.run.queue_client.QueueClient` promises, with jobs scripted by the test and no
sockets or processes (as httpx's ``MockTransport`` stands in for a network).

``Executor(..., connect=lambda: fal)``: the fake is its own async context manager, and its
state (jobs, files) outlives a run, as fal's does, so the next run can re-attach.

- Every submission is kept (:attr:`FakeFal.jobs`), with the exact body sent.
- A job ends as its script says (:meth:`FakeFal.script`): done, failed, rejected by the model
  (a 422 in its result), its result expired, refused at submit, or a submit whose answer was
  lost. Unscripted jobs succeed.
- :meth:`FakeFal.pause` holds jobs (some running, the rest queued) until :meth:`resume`.
- Outputs are small real MP4s (or, with ``video=False``, plain bytes) made from the request,
  with inputs by content: the same request gives the same bytes every time, as renders do. A job naming a URL the fake does not serve
  (never uploaded, or dropped with :meth:`FakeFal.expire`) fails as fal fails it:
  ``file_download_error`` at that field.
- :meth:`FakeFal.until` waits for a condition on the fake: what tests synchronise on.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from runner.fal import (
    Downloaded,
    FalConfig,
    FalError,
    FalJobFailed,
    FalNotFound,
    FalResultExpired,
    FalSubmitUncertain,
    FalValidationError,
    JobHandle,
    JobStatus,
    UpdateCallback,
    UploadedFile,
)
from runner.fal.listing import ListedRequest
from runner.fal.status import CancelOutcome

QUEUE = "https://queue.fake.fal"
CDN = "https://cdn.fake.fal"

Kind = Literal["done", "failed", "rejected", "expired", "refused", "uncertain"]


@dataclass(frozen=True)
class Outcome:
    """How the fake answers a submission: ``detail`` is the 422's for "rejected" (in the
    job's result) and "refused" (at submit)."""

    kind: Kind = "done"
    message: str = "the model failed"
    detail: tuple[Mapping[str, Any], ...] = ()


@dataclass
class _Rule:
    outcome: Outcome
    prompt: str | None
    times: int | None

    def take(self, body: Mapping[str, Any]) -> bool:
        if self.times == 0 or (self.prompt is not None and self.prompt not in str(body)):
            return False
        if self.times is not None:
            self.times -= 1
        return True


@dataclass
class FakeJob:
    """One submission as the fake received it."""

    request_id: str
    endpoint: str
    body: dict[str, Any]
    outcome: Outcome
    state: str = "IN_QUEUE"
    cancelled: bool = False
    seen: str | None = None  # the last state a waiter was told
    node: str | None = None  # the node name the local backend sends (fal never sees one)
    sent_at: float = field(default_factory=time.time)

    @property
    def prompt(self) -> str:
        return str(self.body.get("prompt", ""))


@dataclass
class FakeFal:
    """fal in memory; see the module docstring."""

    video: bool = True  # outputs are MP4s a frame or stitch step can read
    name: str = "req"  # request ids are <name>-0001, <name>-0002, ...
    # Its request listing is complete at once: no settle time to wait out.
    config: FalConfig = field(
        default_factory=lambda: FalConfig(queue_url=QUEUE, rest_url=QUEUE, listing_settle=0.0)
    )
    jobs: list[FakeJob] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)  # URLs, in order
    downloads: list[str] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)  # request ids
    opened: int = 0
    on_submit: list[Callable[[FakeJob], None]] = field(default_factory=list)
    cancel_gate: asyncio.Event | None = None  # set: a cancel waits on it (a slow answer)
    _files: dict[str, bytes] = field(default_factory=dict)
    _rules: list[_Rule] = field(default_factory=list)
    _paused: int | None = None  # jobs let run while paused
    _changed: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    # -- what a test does ------------------------------------------------------------------

    def script(self, outcome: Outcome, *, prompt: str | None = None, times: int | None = 1) -> None:
        """Submissions whose body contains ``prompt`` (any, if None) end with ``outcome``,
        the next ``times`` of them (every one, if None)."""
        self._rules.append(_Rule(outcome, prompt, times))

    def pause(self, running: int = 0) -> None:
        """Hold jobs: the first ``running`` run, the others wait in the queue."""
        self._paused = running
        self._notify()

    def resume(self) -> None:
        self._paused = None
        self._notify()

    def expire(self, url: str) -> None:
        """The CDN drops ``url`` (sooner than its uploader was told)."""
        del self._files[url]

    def sent(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """The bodies submitted (to ``endpoint``), in order."""
        return [job.body for job in self.jobs if endpoint in (None, job.endpoint)]

    def bodies_sent_twice(self) -> list[dict[str, Any]]:
        seen: dict[str, int] = {}
        for job in self.jobs:
            key = _canonical([job.endpoint, job.body])
            seen[key] = seen.get(key, 0) + 1
        return [json.loads(key)[1] for key, n in seen.items() if n > 1]

    async def until(self, condition: Callable[[], bool]) -> None:
        """Return once ``condition()`` holds; it is looked at on every change of the fake."""
        while not condition():
            await self._event().wait()

    # -- the client ------------------------------------------------------------------------

    async def __aenter__(self) -> FakeFal:
        self.opened += 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def submit(
        self, endpoint_id: str, body: Mapping[str, Any], *, node: str | None = None
    ) -> JobHandle:
        await asyncio.sleep(0)  # the answer comes back later than the call
        outcome = next((r.outcome for r in self._rules if r.take(body)), Outcome())
        if outcome.kind == "refused":
            raise _validation(outcome.detail)
        job = FakeJob(
            f"{self.name}-{len(self.jobs) + 1:04d}",
            endpoint_id,
            json.loads(json.dumps(body)),
            outcome,
            node=node,
        )
        self.jobs.append(job)
        for hook in self.on_submit:
            hook(job)
        self._notify()
        if outcome.kind == "uncertain":  # fal queued it, and its answer was lost
            raise FalSubmitUncertain("the connection broke during the submit", attempts=1)
        return self.handle(endpoint_id, job.request_id)

    async def list_requests(
        self, endpoint_id: str, since: float, *, payloads: bool = True
    ) -> AsyncIterator[ListedRequest]:
        """fal's request listing: every job sent to ``endpoint_id`` since ``since``."""
        for job in list(self.jobs):
            if job.endpoint == endpoint_id and job.sent_at >= since:
                body = job.body if payloads else None
                yield ListedRequest(job.request_id, endpoint_id, job.sent_at, None, None, body)

    def handle(self, endpoint_id: str, request_id: str) -> JobHandle:
        base = (
            f"{self.config.queue_url}/{'/'.join(endpoint_id.split('/')[:2])}/requests/{request_id}"
        )
        return JobHandle(endpoint_id, request_id, base, f"{base}/status", f"{base}/cancel")

    async def wait(self, handle: JobHandle, on_update: UpdateCallback | None = None) -> JobStatus:
        job = self._job(handle)
        last: JobStatus | None = None
        while True:
            status = self._status(job)
            if on_update is not None and status != last:
                on_update(status)
            last = status
            if job.seen != status.state:
                job.seen = status.state
                self._notify()
            if status.state == "COMPLETED":
                break
            await self._event().wait()
        if status.error is not None:
            raise FalJobFailed(
                status.error, request_id=job.request_id, error_type=status.error_type, status=status
            )
        return status

    async def status(self, handle: JobHandle) -> JobStatus:
        await asyncio.sleep(0)
        return self._status(self._job(handle))

    async def result(self, handle: JobHandle) -> dict[str, Any]:
        await asyncio.sleep(0)
        job = self._job(handle)
        if job.state != "COMPLETED":
            raise FalError("Request is still in progress")
        if job.outcome.kind == "expired":
            raise FalResultExpired(
                f"Result of request {job.request_id} has expired", status_code=404
            )
        dead = self._dead_inputs(job)
        if dead or job.outcome.kind == "rejected":
            raise _validation(dead or job.outcome.detail)
        if job.cancelled or job.outcome.kind == "failed":
            raise FalError(job.outcome.message, status_code=500)
        url = f"{CDN}/outputs/{job.request_id}/output.mp4"
        self._files.setdefault(url, self._render(job))
        video = {"url": url, "content_type": "video/mp4", "file_name": "output.mp4"}
        return {
            "video": {**video, "file_size": len(self._files[url])},
            "seed": job.body.get("seed"),
        }

    async def cancel(self, handle: JobHandle) -> CancelOutcome:
        await asyncio.sleep(0)
        job = self._job(handle)
        self.cancels.append(job.request_id)
        self._notify()
        if self.cancel_gate is not None:
            await self.cancel_gate.wait()
        self._advance()  # the job may have started while the cancel was on its way
        if job.state == "COMPLETED":
            return "ALREADY_COMPLETED"
        if job.state == "IN_QUEUE":
            job.state, job.cancelled = "COMPLETED", True
            self._notify()
        return "CANCELLATION_REQUESTED"

    async def upload(
        self,
        path: Path,
        content_type: str | None = None,
        *,
        file_name: str | None = None,
        lifetime: int | None = None,
    ) -> UploadedFile:
        await asyncio.sleep(0)
        data = Path(path).read_bytes()
        name = file_name or Path(path).name
        url = f"{CDN}/files/{len(self.uploads) + 1}/{name}"
        self._files[url] = data
        self.uploads.append(url)
        self._notify()
        expires = datetime.now(UTC) + timedelta(seconds=lifetime) if lifetime else None
        return UploadedFile(
            url, content_type or "application/octet-stream", name, len(data), expires
        )

    async def download(
        self, url: str, dest: Path, *, expected_size: int | None = None
    ) -> Downloaded:
        await asyncio.sleep(0)
        data = self._files.get(url)
        if data is None:
            raise FalResultExpired(f"{url} is gone", status_code=404)
        Path(dest).write_bytes(data)
        self.downloads.append(url)
        return Downloaded(hashlib.sha256(data).hexdigest(), len(data))

    # -- inside ----------------------------------------------------------------------------

    def _job(self, handle: JobHandle) -> FakeJob:
        for job in self.jobs:
            if job.request_id == handle.request_id and handle.status_url.startswith(
                self.config.queue_url
            ):
                return job
        raise FalNotFound(f"Request {handle.request_id} not found", status_code=404)

    def _status(self, job: FakeJob) -> JobStatus:
        self._advance()
        if job.state == "IN_QUEUE":
            waiting = [j for j in self.jobs if j.state == "IN_QUEUE"]
            return JobStatus("IN_QUEUE", job.request_id, queue_position=waiting.index(job))
        if job.state == "IN_PROGRESS":
            return JobStatus("IN_PROGRESS", job.request_id, logs=({"message": "rendering"},))
        error, error_type = None, None
        if job.cancelled:
            error, error_type = "cancelled while queued", "client_cancelled"
        elif job.outcome.kind in ("failed", "rejected") or self._dead_inputs(job):
            error, error_type = job.outcome.message, "model_error"
        return JobStatus(
            "COMPLETED",
            job.request_id,
            metrics={"inference_time": 0.01},
            error=error,
            error_type=error_type,
        )

    def _advance(self) -> None:
        """Jobs move on: all of them at once, or while paused, up to the ones let run."""
        running = sum(1 for job in self.jobs if job.state == "IN_PROGRESS")
        for job in self.jobs:
            if job.state == "IN_QUEUE" and (self._paused is None or running < self._paused):
                job.state = "IN_PROGRESS"
                running += 1
            if job.state == "IN_PROGRESS" and self._paused is None:
                job.state = "COMPLETED"

    def _dead_inputs(self, job: FakeJob) -> list[dict[str, Any]]:
        return [
            {
                "loc": ["body", *where],
                "msg": "File could not be downloaded",
                "type": "file_download_error",
                "input": url,
            }
            for where, url in _urls(job.body)
            if url not in self._files
        ]

    def _render(self, job: FakeJob) -> bytes:
        """The output of a request: its endpoint and body, inputs by their content."""
        body = json.loads(json.dumps(job.body))
        for where, url in _urls(job.body):
            _set(body, where, "sha256:" + hashlib.sha256(self._files[url]).hexdigest())
        digest = hashlib.sha256(_canonical([job.endpoint, body]).encode()).digest()
        if not self.video:
            return f"output of {job.prompt}\n".encode() + digest.hex().encode()
        from PIL import Image  # only for videos: a process that needs none loads neither

        from runner.media.encode import VideoWriter

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "clip.mp4"
            with VideoWriter(path, 64, 36, 8) as writer:
                for i in range(4):  # its colour says which request it renders
                    writer.write(Image.new("RGB", (64, 36), (digest[0], digest[1], 40 * i)))
            return path.read_bytes()

    def _event(self) -> asyncio.Event:
        # One per loop: each run (asyncio.run) has its own.
        loop = asyncio.get_running_loop()
        if self._changed is None or self._changed[0] is not loop:
            self._changed = (loop, asyncio.Event())
        return self._changed[1]

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed[1].set()
        self._changed = None


def _validation(detail: tuple[Mapping[str, Any], ...] | list[dict[str, Any]]) -> FalValidationError:
    return FalValidationError("fal rejected the request", status_code=422, detail=list(detail))


def _urls(
    body: Any, where: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every URL in a body and where it is."""
    if isinstance(body, Mapping):
        for key, value in body.items():
            yield from _urls(value, (*where, key))
    elif isinstance(body, list):
        for i, value in enumerate(body):
            yield from _urls(value, (*where, i))
    elif isinstance(body, str) and body.startswith(("http://", "https://")):
        yield where, body


def _set(body: Any, where: tuple[str | int, ...], value: Any) -> None:
    for part in where[:-1]:
        body = body[part]
    body[where[-1]] = value


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
