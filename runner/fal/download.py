"""Downloading an output file: streamed, hashed on the way, checked, then moved into place.

The bytes go to a temporary file beside ``dest`` in ``chunk_size`` pieces (memory does not
grow with the file), are hashed as they arrive (the hash is returned: the store need not
read the file again), and the file is renamed onto ``dest`` only once size and hash check
out: ``dest`` never holds a partial file. A
connection that breaks mid-body is resumed with a ``Range`` request when the server
supports it, else the download starts over.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import IO, NamedTuple

import httpx

from runner import atomic
from runner.fal.config import FalConfig
from runner.fal.errors import FalIntegrityError, FalUnavailable
from runner.fal.session import Call, Session


class Downloaded(NamedTuple):
    """What was written: the file's sha256 (hex) and its size in bytes."""

    sha256: str
    size: int


async def download(
    session: Session,
    config: FalConfig,
    url: str,
    dest: Path,
    *,
    auth: httpx.Auth | None,
    expected_size: int | None = None,
    expected_sha256: str | None = None,
) -> Downloaded:
    """Fetch ``url`` into ``dest``; see the module docstring."""
    where = public_url(url)
    # fsync here, in a worker thread, rather than in `replacing` on the event loop
    with atomic.replacing(Path(dest), durable=False) as temp:
        with temp.open("wb") as out:
            sink = _Sink(out, config.chunk_size)
            await _fetch(session, config, url, where, sink, auth)
            await sink.flush(durable=config.fsync_downloads)
        got = Downloaded(sink.digest.hexdigest(), sink.size)
        if expected_size is not None and got.size != expected_size:
            raise FalIntegrityError(
                f"download of {where}: got {got.size} bytes, expected {expected_size}"
            )
        if expected_sha256 is not None and got.sha256 != expected_sha256.lower():
            raise FalIntegrityError(
                f"download of {where}: sha256 {got.sha256}, expected {expected_sha256.lower()}",
                hint="the file at this URL is not the one recorded; render the node again",
            )
    return got


class _Sink:
    """The bytes received, on their way to the file: hashed and written in a thread (hashlib
    releases the GIL on large buffers), ``limit`` bytes at a time, so a small file costs one
    trip to a thread, its fsync included."""

    def __init__(self, out: IO[bytes], limit: int) -> None:
        self.out = out
        self.digest = hashlib.sha256()
        self.size = 0  # received, written or not
        self._limit = limit
        self._pending: list[bytes] = []
        self._held = 0

    async def add(self, chunk: bytes) -> None:
        self._pending.append(chunk)
        self.size += len(chunk)
        self._held += len(chunk)
        if self._held >= self._limit:
            await self.flush()

    async def flush(self, *, durable: bool = False) -> None:
        pending, self._pending, self._held = self._pending, [], 0
        if pending or durable:
            await asyncio.to_thread(_absorb, self.digest, self.out, pending, durable)

    def restart(self) -> None:
        """From the first byte again (the server ignored a range)."""
        self.out.seek(0)
        self.out.truncate()
        self.digest, self.size, self._pending, self._held = hashlib.sha256(), 0, [], 0


async def _fetch(
    session: Session,
    config: FalConfig,
    url: str,
    where: str,
    sink: _Sink,
    auth: httpx.Auth | None,
) -> None:
    attempt = 0
    while True:
        attempt += 1
        failure: str | None = None
        headers = {"Accept-Encoding": "identity"}  # hash the file, not a re-encoding of it
        if sink.size:
            headers["Range"] = f"bytes={sink.size}-"
        call = Call(
            "GET",
            url,
            "download",
            where,
            auth=auth,
            headers=headers,
            timeout=config.request_timeout(),
            follow_redirects=True,
        )
        try:
            async with session.stream(call) as response:
                if sink.size and not _resumes_at(response, sink.size):
                    sink.restart()  # the server ignored the range: from the first byte
                async for chunk in response.aiter_bytes(config.chunk_size):
                    await sink.add(chunk)
            return
        except httpx.TransportError as exc:
            failure = f"{type(exc).__name__}: {session.redact(str(exc))}"
        if attempt >= config.retry.max_attempts:
            raise FalUnavailable(
                f"download of {where} kept failing ({failure}) after {attempt} attempts",
                attempts=attempt,
            )
        await config.retry.sleep(config.retry.backoff(attempt))


def _absorb(digest: hashlib._Hash, out: IO[bytes], pieces: list[bytes], durable: bool) -> None:
    for piece in pieces:
        digest.update(piece)
        out.write(piece)
    if durable:
        out.flush()
        os.fsync(out.fileno())


def _resumes_at(response: httpx.Response, offset: int) -> bool:
    if response.status_code != 206:
        return False
    content_range = str(response.headers.get("content-range", ""))  # "bytes 100-199/200"
    return content_range.startswith(f"bytes {offset}-")


def public_url(url: str) -> str:
    """``url`` without its query: presigned URLs carry credentials there."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(query=None, fragment=None))
