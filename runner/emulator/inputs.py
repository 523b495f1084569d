"""Input URLs to local files, the way a fal app downloads its inputs.

The emulator's own ``/files/...`` URLs are read straight from its disk (whatever loopback
port they were issued on); ``data:`` URIs are decoded; anything else is fetched with httpx,
streamed to a scratch file. Without internet the fetch fails, and the job fails as fal
reports it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path
from urllib.parse import unquote, unquote_to_bytes, urlsplit

import httpx

from runner.emulator.files import FileStore

_LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


class InputUnavailable(Exception):
    """An input URL that could not be turned into a file."""


class InputResolver:
    """Resolves input URLs for one emulator; ``hosts`` are the names it is reached by."""

    def __init__(self, files: FileStore, timeout: float, hosts: set[str]) -> None:
        self._files = files
        self._timeout = timeout
        self._hosts = _LOOPBACK | hosts

    async def resolve(self, url: str, job_dir: Path) -> Path:
        """A local path holding the bytes of ``url``; fetched files go in ``job_dir``."""
        if url.startswith("data:"):
            return _decode_data_uri(url, job_dir)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputUnavailable(f"unsupported URL: {url[:80]}")
        own = self._own_file(parts.hostname, parts.path)
        if own is not None:
            return own
        return await self._fetch(url, job_dir)

    def _own_file(self, host: str, path: str) -> Path | None:
        segments = path.split("/")
        if host not in self._hosts or len(segments) != 4 or segments[1] != "files":
            return None
        # Not found here: maybe another emulator on this machine issued it, or it has
        # expired; a real download says which.
        found = self._files.lookup(segments[2], unquote(segments[3]))
        return found[1] if found is not None else None

    async def _fetch(self, url: str, job_dir: Path) -> Path:
        job_dir.mkdir(parents=True, exist_ok=True)
        target = job_dir / hashlib.sha256(url.encode()).hexdigest()[:16]
        try:
            async with (
                httpx.AsyncClient(timeout=self._timeout, follow_redirects=True) as client,
                client.stream("GET", url) as response,
            ):
                if response.status_code != 200:
                    raise InputUnavailable(f"{url}: HTTP {response.status_code}")
                with target.open("wb") as out:
                    async for chunk in response.aiter_bytes():
                        out.write(chunk)
        except httpx.HTTPError as exc:
            raise InputUnavailable(f"{url}: {type(exc).__name__}") from exc
        return target


def _decode_data_uri(uri: str, job_dir: Path) -> Path:
    header, sep, payload = uri[5:].partition(",")
    if not sep:
        raise InputUnavailable("malformed data: URI")
    try:
        data = (
            base64.b64decode(payload, validate=False)
            if header.endswith(";base64")
            else unquote_to_bytes(payload)
        )
    except (binascii.Error, ValueError) as exc:
        raise InputUnavailable("malformed data: URI") from exc
    job_dir.mkdir(parents=True, exist_ok=True)
    target = job_dir / hashlib.sha256(data).hexdigest()[:16]
    target.write_bytes(data)
    return target
