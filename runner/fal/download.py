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
    # fsync here, in a worker thread, rather than in `replacing` on the event loop
    with atomic.replacing(Path(dest), durable=False) as temp:
        with temp.open("wb") as out:
            got = await _fetch(session, config, url, out, auth)
            if config.fsync_downloads:
                await asyncio.to_thread(os.fsync, out.fileno())
        where = public_url(url)
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


async def _fetch(
    session: Session, config: FalConfig, url: str, out: IO[bytes], auth: httpx.Auth | None
) -> Downloaded:
    digest = hashlib.sha256()
    size = 0
    attempt = 0
    while True:
        attempt += 1
        failure: str | None = None
        headers = {"Accept-Encoding": "identity"}  # hash the file, not a re-encoding of it
        if size:
            headers["Range"] = f"bytes={size}-"
        call = Call(
            "GET",
            url,
            "download",
            public_url(url),
            auth=auth,
            headers=headers,
            timeout=config.request_timeout(),
            follow_redirects=True,
        )
        try:
            async with session.stream(call) as response:
                if size and not _resumes_at(response, size):
                    # The server ignored the range: start again from the first byte.
                    out.seek(0)
                    out.truncate()
                    digest, size = hashlib.sha256(), 0
                async for chunk in response.aiter_bytes(config.chunk_size):
                    # hashlib releases the GIL on large buffers: hash and write off the loop.
                    await asyncio.to_thread(_absorb, digest, out, chunk)
                    size += len(chunk)
            return Downloaded(digest.hexdigest(), size)
        except httpx.TransportError as exc:
            failure = f"{type(exc).__name__}: {session.redact(str(exc))}"
        if attempt >= config.retry.max_attempts:
            raise FalUnavailable(
                f"download of {public_url(url)} kept failing ({failure}) after {attempt} attempts",
                attempts=attempt,
            )
        await config.retry.sleep(config.retry.backoff(attempt))


def _absorb(digest: hashlib._Hash, out: IO[bytes], chunk: bytes) -> None:
    digest.update(chunk)
    out.write(chunk)


def _resumes_at(response: httpx.Response, offset: int) -> bool:
    if response.status_code != 206:
        return False
    content_range = str(response.headers.get("content-range", ""))  # "bytes 100-199/200"
    return content_range.startswith(f"bytes {offset}-")


def public_url(url: str) -> str:
    """``url`` without its query: presigned URLs carry credentials there."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(query=None, fragment=None))
