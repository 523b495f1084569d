"""The content-addressed file store: ``files/<sha[:2]>/<sha>``, read-only once landed.

A file lands by ``os.replace`` of a complete, fsynced temporary file from ``tmp/`` (same
filesystem), followed by an fsync of its directory, so a crash leaves either nothing or the
whole file under its name; at worst a stray temporary that gc removes. Two processes landing
the same content race harmlessly: each rename installs identical bytes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from runner import atomic
from runner.hashing import sha256_file
from runner.store.rows import RecordError, StoredFile, check_sha256
from runner.store.table import StoreError

CHUNK = 1 << 20
_READ_ONLY = 0o444


def fsync_dir(path: Path) -> None:
    """Make a rename or creation in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def hash_path(path: Path) -> StoredFile:
    """SHA-256 and size of a file, read in chunks."""
    return StoredFile(*sha256_file(path))


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` all at once (temp in the same directory, fsync, rename)."""
    atomic.write_text(path, text)
    fsync_dir(path.parent)


class BlobStore:
    """Files by SHA-256 under ``files/``, staged in ``tmp/``."""

    def __init__(self, files: Path, tmp: Path) -> None:
        self.files = files
        self.tmp = tmp
        self._files = str(files)

    def path(self, sha256: str) -> Path:
        try:
            check_sha256(sha256)
        except RecordError as exc:
            raise StoreError(str(exc)) from exc
        return self.files / sha256[:2] / sha256

    def has(self, sha256: str, size: int | None = None) -> bool:
        try:
            check_sha256(sha256)
        except RecordError as exc:
            raise StoreError(str(exc)) from exc
        try:
            # String paths: this sits on the cache-hit path, where pathlib's cost shows.
            st = os.stat(os.path.join(self._files, sha256[:2], sha256))
        except OSError:
            return False
        return size is None or st.st_size == size

    def verify(self, sha256: str) -> bool:
        try:
            return hash_path(self.path(sha256)).sha256 == sha256
        except OSError:
            return False

    def put(
        self, src: Path, *, move: bool = False, expected_sha256: str | None = None
    ) -> StoredFile:
        """Store ``src`` under its hash; with ``move``, ``src`` is consumed (renamed into place
        when on the same filesystem, else copied and deleted)."""
        if move:
            try:
                return self._move(src, expected_sha256)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise _unreadable(src, exc) from exc
            stored = self.put(src, expected_sha256=expected_sha256)
            src.unlink(missing_ok=True)  # ours to consume, like a rename would have
            return stored
        fd, tmp_name = tempfile.mkstemp(prefix="put-", suffix=".part", dir=self.tmp)
        tmp = Path(tmp_name)
        try:
            stored = _copy_hashing(src, fd)
            _check_expected(src, stored, expected_sha256)
            self._land(tmp, stored)
        except BaseException as exc:
            # Only on failure: once renamed, the name may already be another process's temp.
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise _unreadable(src, exc) from exc
            raise
        return stored

    def adopt(self, src: Path, stored: StoredFile) -> StoredFile:
        """Rename ``src`` into place as ``stored``, without reading it again: the caller wrote
        it, hashed it on the way and fsynced it (a download)."""
        try:
            self._land(src, stored)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise _unreadable(src, exc) from exc
            return self.put(src, move=True, expected_sha256=stored.sha256)
        return stored

    def _move(self, src: Path, expected_sha256: str | None) -> StoredFile:
        with open(src, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256")
            stored = StoredFile(digest.hexdigest(), handle.tell())
            # The caller wrote it; its data must be on disk before the rename publishes it.
            os.fsync(handle.fileno())
        _check_expected(src, stored, expected_sha256)
        self._land(src, stored)
        return stored

    def _land(self, staged: Path, stored: StoredFile) -> None:
        """Rename the complete ``staged`` file into place, or drop it if already there."""
        dest = self.path(stored.sha256)
        if self.has(stored.sha256, stored.size):
            # Fresh mtime: gc spares recent files, so a concurrent gc cannot remove this one
            # between our put and the record the caller writes next.
            with contextlib.suppress(OSError):
                os.utime(dest)
            staged.unlink(missing_ok=True)
            return
        os.chmod(staged, _READ_ONLY)
        shard = dest.parent
        if not shard.is_dir():
            shard.mkdir(exist_ok=True)
            fsync_dir(self.files)
        os.replace(staged, dest)
        fsync_dir(shard)

    def remove(self, sha256: str) -> int:
        """Delete a file; the bytes freed (0 if it was not there)."""
        path = self.path(sha256)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def entries(self) -> Iterator[tuple[str, Path]]:
        """Every file under ``files/`` as (name, path); names are not checked here."""
        for shard in sorted(self.files.iterdir()):
            if shard.is_dir():
                for path in sorted(shard.iterdir()):
                    yield path.name, path

    def temps(self) -> Iterator[tuple[Path, float]]:
        """Every file under ``tmp/`` with its mtime."""
        for directory, _, names in os.walk(self.tmp):
            for name in names:
                path = Path(directory, name)
                try:
                    yield path, path.lstat().st_mtime
                except OSError:
                    continue  # renamed into place meanwhile

    def stale_temps(self, older_than: float) -> Iterator[Path]:
        """Temporary files untouched for ``older_than`` seconds (left by crashes)."""
        cutoff = time.time() - older_than
        return (path for path, mtime in self.temps() if mtime < cutoff)


def _copy_hashing(src: Path, fd: int) -> StoredFile:
    """Copy ``src`` into the open temp ``fd``, hashing on the way, and fsync it."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    # fdopen first: it then owns the descriptor and closes it even if ``src`` cannot be opened.
    # Unbuffered source: each readinto is one read() straight into our buffer.
    with os.fdopen(fd, "wb") as out, open(src, "rb", buffering=0) as source:
        while n := source.readinto(buffer):
            digest.update(view[:n])
            out.write(view[:n])
            size += n
        out.flush()
        os.fsync(out.fileno())
    return StoredFile(digest.hexdigest(), size)


def _check_expected(src: Path, stored: StoredFile, expected: str | None) -> None:
    if expected is not None and stored.sha256 != expected.lower():
        raise StoreError(
            f"{src}: content hash {stored.sha256} does not match the expected {expected}",
            hint="the file changed or arrived damaged; nothing was stored",
        )


def _unreadable(src: Path, exc: OSError) -> StoreError:
    return StoreError(f"cannot store {src}: {exc.strerror or exc}")
