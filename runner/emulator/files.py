"""The emulated CDN: uploads (raw and multipart), rendered outputs, expiry, upload tokens.

A file lives in ``files/<id>/`` as ``data`` plus ``meta.json``; its URL is
``/files/<id>/<name>``. Bodies are streamed to disk chunk by chunk and only renamed into
place once complete, so memory never holds a whole file and a crash never leaves a
half-written one visible.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import mimetypes
import os
import secrets
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from runner import atomic

TOKEN_LIFETIME = 3600.0


@dataclass(frozen=True)
class StoredFile:
    """A file the emulator serves. Its ``lifetime`` (seconds; None: forever) starts when
    it is published, complete: ``expires_at`` is set then."""

    id: str
    name: str
    content_type: str
    size: int
    expires_at: float | None
    lifetime: float | None = None

    @property
    def url_path(self) -> str:
        return f"/files/{self.id}/{quote(self.name)}"

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


class MultipartError(ValueError):
    """A multipart upload that cannot be completed as asked."""


class FileStore:
    """Files under ``root/files``; ``default_ttl`` bounds every URL's life (None: forever).

    A lifetime asked for with fal's ``X-Fal-Object-Lifecycle-Preference`` header is
    honoured, as fal honours it, within that bound: the bound plays a CDN that drops files
    sooner than a client was told (an account's storage settings, a deletion), which is
    what a client must survive. Lifetimes are counted on ``clock`` (tests move it on
    instead of waiting).
    """

    def __init__(
        self, root: Path, default_ttl: float | None, clock: Callable[[], float] = time.time
    ) -> None:
        self.dir = root / "files"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.default_ttl = default_ttl
        self.clock = clock
        self._secret = _secret(root / "token-secret")

    # Tokens: signed, so that they stay valid across a restart on the same state dir.

    def issue_token(self, origin: str) -> dict[str, str]:
        expires = int(time.time() + TOKEN_LIFETIME)
        token = f"{expires}.{self._sign(str(expires))}"
        stamp = datetime.fromtimestamp(expires, UTC).isoformat()
        return {"token": token, "token_type": "Bearer", "base_url": origin, "expires_at": stamp}

    def token_valid(self, authorization: str | None) -> bool:
        scheme, _, token = (authorization or "").partition(" ")
        expires, _, signature = token.partition(".")
        if scheme.lower() != "bearer" or not expires.isdigit():
            return False
        return hmac.compare_digest(signature, self._sign(expires)) and int(expires) > time.time()

    def _sign(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()

    # Writing.

    def create(self, name: str | None, content_type: str, ttl: float | None) -> StoredFile:
        """A new, still empty file record; its lifetime starts when it is published."""
        file_id = uuid.uuid4().hex
        name = _clean_name(name, content_type)
        bounds = [t for t in (ttl, self.default_ttl) if t is not None]
        lifetime = min(bounds) if bounds else None
        stored = StoredFile(file_id, name, content_type, 0, None, lifetime)
        (self.dir / file_id).mkdir()
        return stored

    async def receive(self, stored: StoredFile, chunks: AsyncIterator[bytes]) -> StoredFile:
        """Stream ``chunks`` into ``stored``'s data and publish it."""
        part = self.dir / stored.id / "data.part"
        size = 0
        try:
            with part.open("wb") as out:
                async for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
            return self.publish(stored, part, size)
        except BaseException:
            shutil.rmtree(self.dir / stored.id, ignore_errors=True)  # no half-file left
            raise

    def publish(self, stored: StoredFile, data: Path, size: int) -> StoredFile:
        """Move ``data`` into place and write the metadata that makes the file visible. Its
        lifetime starts now: a render or an upload that took long is not born expired."""
        os.replace(data, self.dir / stored.id / "data")
        lifetime = stored.lifetime
        expires = self.clock() + lifetime if lifetime is not None else None
        final = replace(stored, size=size, expires_at=expires)
        _write_json(self.dir / stored.id / "meta.json", asdict(final))
        return final

    def output_path(self, stored: StoredFile) -> Path:
        """Where a renderer should write ``stored``'s bytes (then :meth:`publish`)."""
        return self.dir / stored.id / "render.mp4"

    # Multipart uploads: parts are files of their own until ``complete`` joins them.

    def part_path(self, stored_id: str, upload_id: str, number: int) -> Path | None:
        pending = self.dir / stored_id / "pending.json"
        if not pending.is_file() or json.loads(pending.read_text())["upload_id"] != upload_id:
            return None
        parts = self.dir / stored_id / "parts"
        parts.mkdir(exist_ok=True)
        return parts / str(number)

    async def receive_part(self, path: Path, chunks: AsyncIterator[bytes]) -> str:
        """Stream one part to ``path``; returns its ETag."""
        digest = hashlib.md5(usedforsecurity=False)
        partial = path.with_name(path.name + ".part")
        with partial.open("wb") as out:
            async for chunk in chunks:
                out.write(chunk)
                digest.update(chunk)
        os.replace(partial, path)
        return digest.hexdigest()

    def start_multipart(
        self, name: str | None, content_type: str, ttl: float | None
    ) -> tuple[StoredFile, str]:
        stored = self.create(name, content_type, ttl)
        upload_id = uuid.uuid4().hex
        _write_json(
            self.dir / stored.id / "pending.json", {"upload_id": upload_id, **asdict(stored)}
        )
        return stored, upload_id

    def complete_multipart(
        self, stored_id: str, upload_id: str, parts: Sequence[Any]
    ) -> StoredFile:
        """Join the listed parts in order, checking each ETag, and publish the file."""
        folder = self.dir / stored_id
        pending = folder / "pending.json"
        if not pending.is_file():
            raise MultipartError("no such multipart upload")
        meta = json.loads(pending.read_text())
        if meta.pop("upload_id") != upload_id:
            raise MultipartError("no such multipart upload")
        stored = StoredFile(**meta)
        joined = folder / "data.part"
        size = 0
        with joined.open("wb") as out:
            for number, etag in _part_list(parts):
                path = folder / "parts" / str(number)
                if not path.is_file():
                    raise MultipartError(f"part {number} was never uploaded")
                if etag.strip('"') != file_etag(path):
                    raise MultipartError(f"part {number}: ETag does not match")
                with path.open("rb") as source:
                    shutil.copyfileobj(source, out, 1 << 20)
                size += path.stat().st_size
        final = self.publish(stored, joined, size)
        shutil.rmtree(folder / "parts", ignore_errors=True)
        pending.unlink()
        return final

    # Reading.

    def lookup(self, file_id: str, name: str | None = None) -> tuple[StoredFile, Path] | None:
        """A published, unexpired file and the path of its bytes."""
        if not file_id.isalnum():
            return None
        meta = self.dir / file_id / "meta.json"
        try:
            stored = StoredFile(**json.loads(meta.read_text()))
        except (OSError, ValueError, TypeError):
            return None
        if (name is not None and name != stored.name) or stored.expired(self.clock()):
            return None
        return stored, self.dir / file_id / "data"


def file_etag(path: Path) -> str:
    """The ETag of a stored part: the MD5 of its bytes, as S3-style stores use."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _part_list(parts: Sequence[Any]) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for part in parts:
        if not isinstance(part, dict) or not isinstance(part.get("partNumber"), int):
            raise MultipartError("each part needs an integer partNumber and an etag")
        out.append((part["partNumber"], str(part.get("etag", ""))))
    if not out:
        raise MultipartError("no parts listed")
    return sorted(out)


def _clean_name(name: str | None, content_type: str) -> str:
    base = os.path.basename((name or "").replace("\\", "/")).strip()
    if base and base not in (".", ".."):
        return base
    extension = mimetypes.guess_extension(content_type.split(";")[0].strip()) or ".bin"
    return f"file{extension}"


def _secret(path: Path) -> bytes:
    if not path.exists():
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_bytes(secrets.token_bytes(32))
        # link, not replace: when two emulators start on one fresh state dir, the first
        # secret wins and both use it.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        tmp.unlink()
    return path.read_bytes()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    atomic.write_text(path, json.dumps(data), durable=False)
