"""A :class:`~runner.store.remote.Remote` in a local directory: the seam's second
implementation, so the remote tier and the journal over it are tested without a server.

Conditional writes hold an ``flock`` on the directory's lock file, so they are atomic
between threads and processes of one machine (not over NFS). ETags are MD5 digests of the
content, as S3's are for a single-part object. Blocking file work runs in a thread.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

from runner.store.remote import Blob, ObjectInfo, RemoteError

_LOCK = ".lock"


class DirRemote:
    """Objects as files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return self.root.as_uri()

    async def get(self, name: str) -> Blob | None:
        return await asyncio.to_thread(self._get, name)

    async def head(self, name: str) -> ObjectInfo | None:
        found = await self.get(name)
        return None if found is None else found.info

    async def download(self, name: str, dest: Path) -> ObjectInfo | None:
        return await asyncio.to_thread(self._download, name, dest)

    async def put(self, name: str, data: bytes | Path) -> str:
        etag = await asyncio.to_thread(self._put, name, data, None)
        assert etag is not None
        return etag

    async def put_if_absent(self, name: str, data: bytes | Path) -> str | None:
        return await asyncio.to_thread(self._put, name, data, "absent")

    async def put_if_match(self, name: str, data: bytes, etag: str) -> str | None:
        return await asyncio.to_thread(self._put, name, data, etag)

    async def delete(self, name: str) -> None:
        await asyncio.to_thread(self._delete, name)

    async def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        for info in await asyncio.to_thread(lambda: list(self._list(prefix))):
            yield info

    async def close(self) -> None:
        return None

    # -- in a thread -----------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        parts = name.split("/")
        if not name or any(part in ("", ".", "..") for part in parts) or name == _LOCK:
            raise RemoteError(f"{self.url}: not an object name: {name!r}")
        return self.root.joinpath(*parts)

    def _get(self, name: str) -> Blob | None:
        path = self._path(name)
        try:
            data = path.read_bytes()
            modified = path.stat().st_mtime
        except (FileNotFoundError, NotADirectoryError):
            return None
        return Blob(data, ObjectInfo(name, len(data), _etag(data), modified))

    def _download(self, name: str, dest: Path) -> ObjectInfo | None:
        found = self._get(name)
        if found is None:
            return None
        with open(dest, "xb") as out:
            out.write(found.data)
        return found.info

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.root / _LOCK, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _put(self, name: str, data: bytes | Path, condition: str | None) -> str | None:
        path = self._path(name)
        content = data.read_bytes() if isinstance(data, Path) else data
        with self._locked():
            current = self._get(name)
            if condition == "absent" and current is not None:
                return None
            if condition not in (None, "absent") and (
                current is None or current.info.etag != condition
            ):
                return None
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".put-")
            with os.fdopen(fd, "wb") as out:
                out.write(content)
            os.replace(temp, path)
        return _etag(content)

    def _delete(self, name: str) -> None:
        path = self._path(name)
        with self._locked():
            path.unlink(missing_ok=True)

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        for directory, dirs, files in os.walk(self.root):
            dirs.sort()
            for file in sorted(files):
                path = Path(directory, file)
                name = path.relative_to(self.root).as_posix()
                if file == _LOCK or file.startswith(".put-") or not name.startswith(prefix):
                    continue
                found = self._get(name)
                if found is not None:
                    yield found.info


def _etag(data: bytes) -> str:
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
