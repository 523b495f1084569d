"""Uploading input files to fal's CDN (storage ``fal-cdn-v3``), streamed from disk.

1. ``POST {rest}/storage/auth/token?storage_type=fal-cdn-v3`` with ``{}`` gives a CDN token
   ``{token, token_type, base_url, expires_at}``, cached until shortly before it expires.
2. Up to ``multipart_threshold`` bytes: ``POST {base_url}/files/upload`` with the raw bytes;
   the answer's ``access_url`` is the file's URL.
3. Above it: ``POST {base_url}/files/upload/multipart`` gives ``{access_url, uploadId}``;
   each part goes as ``PUT {access_url}/multipart/{uploadId}/{n}`` (n from 1, at most
   ``multipart_concurrency`` at a time, each part's ETag kept); then ``POST
   {access_url}/multipart/{uploadId}/complete`` with ``{"parts": [{partNumber, etag}]}``.

Bodies are read from disk in ``chunk_size`` pieces, so memory stays flat however large the
file. Re-using an upload by content hash is the store's job: :class:`UploadedFile` gives it
the URL and, when a lifetime was requested, when the URL expires.
"""

from __future__ import annotations

import asyncio
import base64
import json
import mimetypes
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from runner.fal.config import FalConfig
from runner.fal.credentials import Redactor, Secret, SecretAuth
from runner.fal.errors import FalError, FalIntegrityError, FalProtocolError
from runner.fal.session import BodyFactory, Call, Session

TOKEN_PATH = "/storage/auth/token?storage_type=fal-cdn-v3"
#: A token this close to its expiry is renewed first: an upload must not outlive it.
TOKEN_MARGIN = timedelta(seconds=60)
DATA_URI_LIMIT = 1024 * 1024


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file on fal's CDN. ``expires_at`` is known only when a lifetime was requested."""

    url: str
    content_type: str
    file_name: str
    size: int
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class _Token:
    secret: Secret
    token_type: str
    base_url: str
    expires_at: datetime


class Storage:
    """The upload flow; one per client, sharing the client's session and CDN token."""

    def __init__(
        self, session: Session, config: FalConfig, rest_auth: httpx.Auth | None, redact: Redactor
    ) -> None:
        self._session = session
        self._config = config
        self._rest_auth = rest_auth
        self._redact = redact
        self._token: _Token | None = None
        self._lock = asyncio.Lock()

    async def upload(
        self,
        path: Path,
        content_type: str | None = None,
        *,
        file_name: str | None = None,
        lifetime: int | None = None,
    ) -> UploadedFile:
        """Upload ``path``; ``lifetime`` (seconds) asks fal to delete it after that long."""
        path = Path(path)
        size = path.stat().st_size
        content_type = content_type or guess_type(path)
        file_name = file_name or path.name
        headers = {
            "Content-Type": content_type,
            # Header values must be ASCII; fal reads the name back percent-decoded.
            "X-Fal-File-Name": quote(file_name),
        }
        if lifetime is not None:
            headers["X-Fal-Object-Lifecycle-Preference"] = json.dumps(
                {"expiration_duration_seconds": int(lifetime)}
            )
        # Take the time before uploading, so the expiry is never later than fal's.
        expires_at = datetime.now(UTC) + timedelta(seconds=lifetime) if lifetime else None
        if size <= self._config.multipart_threshold:
            url = await self._single(path, size, headers)
        else:
            url = await self._multipart(path, size, headers)
        return UploadedFile(url, content_type, file_name, size, expires_at)

    async def _single(self, path: Path, size: int, headers: dict[str, str]) -> str:
        token = await self._cdn_token()
        response = await self._session.send(
            Call(
                "POST",
                f"{token.base_url}/files/upload",
                "upload",
                path.name,
                auth=SecretAuth(token.token_type, token.secret),
                body=file_body(path, 0, size, self._config.chunk_size),
                headers={**headers, "Content-Length": str(size)},
                timeout=self._config.request_timeout(),
            )
        )
        return _field(response, "access_url")

    async def _multipart(self, path: Path, size: int, headers: dict[str, str]) -> str:
        token = await self._cdn_token()
        auth = SecretAuth(token.token_type, token.secret)
        created = await self._session.send(
            Call(
                "POST",
                f"{token.base_url}/files/upload/multipart",
                "upload",
                path.name,
                auth=auth,
                headers={**headers, "Accept": "application/json"},
            )
        )
        access_url = _field(created, "access_url")
        upload_id = _field(created, "uploadId")
        base = f"{access_url}/multipart/{quote(upload_id, safe='')}"
        part_size = self._config.multipart_part_size
        count = max(1, -(-size // part_size))
        etags: dict[int, str] = {}
        numbers: Iterator[int] = iter(range(1, count + 1))

        async def worker() -> None:
            # Workers share one iterator of part numbers: at most N parts in flight.
            for n in numbers:
                offset = (n - 1) * part_size
                length = min(part_size, size - offset)
                response = await self._session.send(
                    Call(
                        "PUT",
                        f"{base}/{n}",
                        "upload",
                        f"{path.name} part {n}/{count}",
                        auth=auth,
                        body=file_body(path, offset, length, self._config.chunk_size),
                        headers={
                            "Content-Type": headers["Content-Type"],
                            "Content-Length": str(length),
                            "Accept-Encoding": "identity",  # proxies drop ETags when encoding
                        },
                        timeout=self._config.request_timeout(),
                    )
                )
                etag = response.headers.get("etag")
                if not etag:
                    raise FalProtocolError(f"fal upload of {path.name}: part {n} has no ETag")
                etags[n] = etag

        await _all(worker() for _ in range(min(self._config.multipart_concurrency, count)))
        await self._session.send(
            Call(
                "POST",
                f"{base}/complete",
                "upload",
                path.name,
                auth=auth,
                json={"parts": [{"partNumber": n, "etag": etags[n]} for n in sorted(etags)]},
            )
        )
        return access_url

    async def _cdn_token(self) -> _Token:
        async with self._lock:  # concurrent uploads share one token request
            now = datetime.now(UTC)
            if self._token is None or self._token.expires_at - TOKEN_MARGIN <= now:
                self._token = await self._fetch_token()
            return self._token

    async def _fetch_token(self) -> _Token:
        response = await self._session.send(
            Call(
                "POST",
                f"{self._config.rest_url}{TOKEN_PATH}",
                "upload",
                "a storage token",
                auth=self._rest_auth,
                json={},
                headers={"Accept": "application/json"},
            )
        )
        secret = Secret(_field(response, "token"))
        self._redact.add(secret)
        expires = _value(response, "expires_at")
        return _Token(
            secret,
            _field(response, "token_type"),
            _field(response, "base_url").rstrip("/"),
            _parse_time(expires),
        )


def file_body(path: Path, offset: int, length: int, chunk_size: int) -> BodyFactory:
    """A factory of async byte streams over ``length`` bytes of ``path`` from ``offset``.

    A factory, because a retried request must read the bytes again from the start.
    """

    async def chunks() -> AsyncIterator[bytes]:
        with path.open("rb") as f:
            f.seek(offset)
            left = length
            while left > 0:
                data = await asyncio.to_thread(f.read, min(chunk_size, left))
                if not data:
                    raise FalIntegrityError(f"{path} shrank while it was being uploaded")
                left -= len(data)
                yield data

    return chunks


def data_uri(path: Path, content_type: str | None = None, *, limit: int = DATA_URI_LIMIT) -> str:
    """``data:<type>;base64,…`` for a small file: an input sent inline, with no upload."""
    path = Path(path)
    size = path.stat().st_size
    if size > limit:
        raise FalError(
            f"{path} is {size} bytes, too large for a data: URI (limit {limit})",
            hint="upload it instead",
        )
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:{content_type or guess_type(path)};base64,{encoded}"


def guess_type(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


async def _all(coroutines: Iterator[Any]) -> None:
    """Run them together; on the first error cancel the rest and raise that error."""
    try:
        async with asyncio.TaskGroup() as group:
            for coroutine in coroutines:
                group.create_task(coroutine)
    except BaseExceptionGroup as grouped:
        first = grouped.exceptions[0]
    else:
        return
    raise first


def _field(response: httpx.Response, name: str) -> str:
    value = _value(response, name)
    if not isinstance(value, str) or not value:
        raise FalProtocolError(f"fal's answer from {response.url.path} has no {name!r}")
    return value


def _value(response: httpx.Response, name: str) -> object:
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        data = None
    value = data.get(name) if isinstance(data, dict) else None
    if value is None:
        raise FalProtocolError(f"fal's answer from {response.url.path} has no {name!r}")
    return value


def _parse_time(value: object) -> datetime:
    """``expires_at`` as ISO 8601 (naive means UTC) or epoch seconds."""
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        when = datetime.fromisoformat(str(value))
    except (ValueError, OverflowError, OSError):
        raise FalProtocolError(f"fal sent an unreadable token expiry {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
