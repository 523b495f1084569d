"""The seam between the store and shared object storage: :class:`Remote`.

A remote store needs only what S3 has offered since 2024 and every S3-compatible server
worth sharing a team's renders on (R2, MinIO, Ceph, SeaweedFS, GCS's XML API) offers too:
reads, listings, plain writes, and two conditional writes:

- ``put_if_absent``: create only if nothing is there (``If-None-Match: *``), for claims and
  content-addressed files;
- ``put_if_match``: replace only what we read (``If-Match: <etag>``), the compare-and-swap
  every later change of a claim goes through.

There is no conditional delete: object_store (under :mod:`obstore`) has none, and nothing
needs one. A claim is released by swapping in a tombstone, so a delete never races a claim.

Two implementations: :class:`runner.store.s3.S3Remote` (S3 through obstore) and
:class:`runner.store.dir_remote.DirRemote` (a directory, for tests through the seam). Names
are ``/``-separated and relative to the remote's own prefix.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from runner.errors import ShotgraphError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """An object's name, size, ETag and when it was last written, by the server's clock
    (Unix time): the clock leases are judged by, whatever the clocks of the machines."""

    name: str
    size: int
    etag: str
    modified: float


@dataclass(frozen=True, slots=True)
class Blob:
    """A small object read whole (a record, a claim) with what the server said of it."""

    data: bytes
    info: ObjectInfo


class RemoteError(ShotgraphError):
    """The remote store cannot be reached, or refused a request. The message names the store
    by its URL (never by anything that could carry a credential)."""


class Remote(Protocol):
    """Object storage under one prefix, with conditional writes."""

    @property
    def url(self) -> str:
        """The store as a user names it (``s3://bucket/prefix``), for messages."""
        ...

    async def get(self, name: str) -> Blob | None:
        """The object, or None when there is none."""
        ...

    async def head(self, name: str) -> ObjectInfo | None: ...

    async def download(self, name: str, dest: Path) -> ObjectInfo | None:
        """Stream the object into the new file ``dest``; None (and no file) when absent."""
        ...

    async def put(self, name: str, data: bytes | Path) -> str:
        """Write the object whatever is there; its new ETag."""
        ...

    async def put_if_absent(self, name: str, data: bytes | Path) -> str | None:
        """Create the object only if there is none; its ETag, or None when one exists."""
        ...

    async def put_if_match(self, name: str, data: bytes, etag: str) -> str | None:
        """Replace the object only if its ETag is still ``etag``; the new ETag, or None when
        it changed or is gone."""
        ...

    async def delete(self, name: str) -> None:
        """Remove the object (no error when it is not there)."""
        ...

    def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Every object whose name starts with ``prefix`` (a ``/``-ended folder)."""
        ...

    async def close(self) -> None: ...


async def each(items: list[Any], call: Callable[[Any], Awaitable[T]], width: int) -> list[T]:
    """``call`` on every item, ``width`` at a time (requests in flight to a remote at
    once); the results in order."""
    slots = asyncio.Semaphore(width)

    async def limited(item: Any) -> T:
        async with slots:
            return await call(item)

    return list(await asyncio.gather(*(limited(item) for item in items)))
