"""The seam between a run and fal: what the executor asks of a queue and its files.

:class:`runner.fal.FalClient` is one, over HTTP (to fal, or to the local emulator). Tests
put an in-memory one in its place, as httpx's tests put a ``MockTransport`` under a client:
the executor and the generation protocol are then tested in milliseconds, without sockets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from runner.fal import Downloaded, FalConfig, JobHandle, JobStatus, UpdateCallback, UploadedFile
from runner.fal.listing import ListedRequest
from runner.fal.status import CancelOutcome


class QueueClient(Protocol):
    """fal's queue and storage, as a run uses them (see :class:`runner.fal.FalClient` for
    what each call means and raises). Opened and closed as an async context manager."""

    @property
    def config(self) -> FalConfig:
        """Where the queue is: a journaled handle from elsewhere is re-pointed here."""
        ...

    async def __aenter__(self) -> QueueClient: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def submit(
        self, endpoint_id: str, body: Mapping[str, Any], *, node: str | None = None
    ) -> JobHandle:
        """Queue a job; the handle to journal and wait on. ``node`` names the node for the
        local emulator's animatics (sent only to it, never to fal)."""
        ...

    def list_requests(
        self, endpoint_id: str, since: float, *, payloads: bool = True
    ) -> AsyncIterator[ListedRequest]:
        """fal's request listing of ``endpoint_id`` since ``since`` (Unix seconds): where
        a submit whose answer was lost is looked for (:mod:`runner.run.reconcile`)."""
        ...

    def handle(self, endpoint_id: str, request_id: str) -> JobHandle:
        """The handle of a known request, under this client's queue."""
        ...

    async def wait(self, handle: JobHandle, on_update: UpdateCallback | None = None) -> JobStatus:
        """The final status; raises FalJobFailed for a job that completed with an error."""
        ...

    async def status(self, handle: JobHandle) -> JobStatus: ...

    async def result(self, handle: JobHandle) -> dict[str, Any]: ...

    async def cancel(self, handle: JobHandle) -> CancelOutcome: ...

    async def upload(
        self,
        path: Path,
        content_type: str | None = None,
        *,
        file_name: str | None = None,
        lifetime: int | None = None,
    ) -> UploadedFile: ...

    async def download(
        self, url: str, dest: Path, *, expected_size: int | None = None
    ) -> Downloaded:
        """Stream ``url`` to ``dest`` (whole or not at all); its sha256 and size."""
        ...
