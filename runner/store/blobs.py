"""The content-addressed file store: ``files/<sha[:2]>/<sha>``, read-only once landed.

A file lands by ``os.replace`` of a complete, fsynced temporary file from ``tmp/`` (same
filesystem), followed by an fsync of its directory, so a crash leaves either nothing or the
whole file under its name; at worst a stray temporary. Two processes landing the same
content race harmlessly: each rename installs identical bytes.

Each process stages in a directory of its own, ``tmp/run-<pid>-<random>/``, on which it
holds an ``flock`` for as long as it lives. The kernel drops the lock when the process
dies however it dies (``kill -9`` included), so the next run, or gc, can tell a dead
process's leftovers (lock free: removed) from a live writer's (lock held: never touched),
with no clock and no grace period.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import itertools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from runner import atomic
from runner.errors import DiskFull, disk_full
from runner.hashing import sha256_file
from runner.store.grouping import sync_dir_later
from runner.store.rows import RecordError, StoredFile, check_sha256
from runner.store.table import StoreError

CHUNK = 1 << 20
STAGING_PREFIX = "run-"
# Beside a staging directory: copies of stored content, about to be unlinked (_discard).
_ASIDE = ".discard-"
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
        self._staging: Path | None = None
        self._staging_fd: int | None = None
        self._remover: ThreadPoolExecutor | None = None  # see _discard
        self._discarded = itertools.count()
        # Pool threads (bucket fetches, media steps) may be the first to stage or discard:
        # one staging directory and one remover per store, whoever comes first.
        self._first_use = threading.Lock()

    def staging(self) -> Path:
        """This process's staging directory under ``tmp/``, created and locked on first use."""
        if self._staging is not None and self._staging_fd is not None:
            return self._staging
        with self._first_use:
            return self._staging_made()

    def _staging_made(self) -> Path:
        if self._staging is not None and self._staging_fd is not None:
            return self._staging  # made by another thread meanwhile
        try:
            # Created under a name the sweep ignores, locked, then renamed: a sweep never
            # sees it unlocked.
            fresh = Path(tempfile.mkdtemp(prefix=".new-", dir=self.tmp))
            fd = os.open(fresh, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            final = self.tmp / f"{STAGING_PREFIX}{os.getpid()}-{fresh.name[len('.new-') :]}"
            os.rename(fresh, final)
        except OSError as exc:
            raise _unwritable(self.tmp, exc) from exc
        self._staging, self._staging_fd = final, fd
        return final

    def close(self) -> None:
        """Remove this process's staging directory (whatever is left in it is garbage)."""
        if self._remover is not None:
            self._remover.shutdown(wait=True)
            self._remover = None
        if self._staging is None or self._staging_fd is None:
            return
        shutil.rmtree(self.tmp / f"{_ASIDE}{self._staging.name}", ignore_errors=True)
        shutil.rmtree(self._staging, ignore_errors=True)
        os.close(self._staging_fd)
        self._staging = self._staging_fd = None

    def sweep_dead_staging(self, *, dry_run: bool = False) -> int:
        """Remove the staging directories of processes that are gone; how many. One whose
        lock is held belongs to a live process and is left alone."""
        removed = 0
        try:
            names = [n for n in os.listdir(self.tmp) if n.startswith((STAGING_PREFIX, ".new-"))]
        except OSError:
            return 0
        for name in names:
            path = self.tmp / name
            if path == self._staging or (name.startswith(".new-") and _younger(path, 60.0)):
                continue  # ours, or one being created right now (locked a moment later)
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue  # removed meanwhile
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue  # alive
            try:
                if not dry_run:
                    shutil.rmtree(path, ignore_errors=True)
                    # With the copies it set aside (_discard): garbage too, whole videos.
                    shutil.rmtree(self.tmp / f"{_ASIDE}{name}", ignore_errors=True)
                removed += 1
            finally:
                os.close(fd)
        if not dry_run:
            self._sweep_orphaned_asides()
        return removed

    def _sweep_orphaned_asides(self) -> None:
        """Remove the aside directories whose staging directory is gone (swept by a build
        that left them): a live process makes its aside after its staging directory and
        removes it first, so one without it is nobody's."""
        with contextlib.suppress(OSError):
            for name in os.listdir(self.tmp):
                if name.startswith(_ASIDE) and not (self.tmp / name[len(_ASIDE) :]).exists():
                    shutil.rmtree(self.tmp / name, ignore_errors=True)

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
                    raise _unreadable(src, exc, self.files) from exc
            stored = self.put(src, expected_sha256=expected_sha256)
            src.unlink(missing_ok=True)  # ours to consume, like a rename would have
            return stored
        staging = self.staging()
        try:
            fd, tmp_name = tempfile.mkstemp(prefix="put-", suffix=".part", dir=staging)
        except OSError as exc:
            raise _unwritable(staging, exc) from exc
        tmp = Path(tmp_name)
        try:
            stored = _copy_hashing(src, fd)
            _check_expected(src, stored, expected_sha256)
            self._land(tmp, stored)
        except BaseException as exc:
            # Only on failure: once renamed, the name may already be another process's temp.
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise _unreadable(src, exc, tmp) from exc
            raise
        return stored

    def adopt(self, src: Path, stored: StoredFile) -> StoredFile:
        """Rename ``src`` into place as ``stored``, without reading it again: the caller wrote
        it, hashed it on the way and fsynced it (a download)."""
        try:
            self._land(src, stored)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise _unreadable(src, exc, self.files) from exc
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
        shard = dest.parent
        if self.has(stored.sha256, stored.size) and _touched(dest):
            # Touched: a gc spares (or puts back) a file landed since it looked (gone: ours
            # lands below). Its rename may not be durable yet (another process, or thread,
            # landing the same content): the caller's result, synced next, must not outlive
            # the file. The copy is dropped only once it is.
            if not self._sync_later(shard, then=functools.partial(self._discard, staged)):
                fsync_dir(shard)
                self._discard(staged)
            return
        os.chmod(staged, _READ_ONLY)
        if not shard.is_dir():
            # At once, even inside a group: another thread or process that finds the shard
            # lands its file there, syncs the shard alone and is answered (once a shard).
            shard.mkdir(exist_ok=True)
            fsync_dir(self.files)
        os.replace(staged, dest)
        if not self._sync_later(shard):
            fsync_dir(shard)

    def _sync_later(self, directory: Path, then: Callable[[], None] | None = None) -> bool:
        """On the store's writer thread, inside its group of writes: ``directory`` is synced
        at the group's end, once for all the files the group landed there, beside the
        logs' syncs, before any caller hears back and before any release of a claim is
        written (see :mod:`runner.store.grouping`); then ``then`` runs. The result
        recorded in the same group is synced no earlier, and a row that does reach the
        disk without its file (another process's sync of the log) is read as absent: the
        claim, released only after both, re-attaches to the job. True; False elsewhere
        (a thread of its own, a pool's): the caller syncs now."""
        return sync_dir_later(directory, functools.partial(self._sync_dir, directory), then)

    def _sync_dir(self, directory: Path) -> None:
        try:
            fsync_dir(directory)
        except OSError as exc:
            full = disk_full(exc, directory)
            raise full or StoreError(f"cannot sync {directory}: {exc.strerror or exc}") from exc

    def _discard(self, staged: Path) -> None:
        """Remove ``staged``, a copy of content stored already. Unlinking a file just
        fsynced frees its blocks, which waits on the filesystem's journal (a millisecond
        or more while another process syncs): the store's writer thread, which lands
        downloads, must not wait for that. So it is renamed aside at once (gone from where
        the caller put it) and unlinked by a thread of its own; what a dead process left
        aside, if any, gc removes as a stray temporary."""
        try:
            aside = self.tmp / f"{_ASIDE}{self.staging().name}"
            if self._remover is None:  # first use: the directory too
                aside.mkdir(exist_ok=True)
            moved = aside / f"{next(self._discarded)}"
            os.rename(staged, moved)
        except (OSError, StoreError):
            staged.unlink(missing_ok=True)  # another filesystem (or no staging): at once
            return
        with self._first_use:
            if self._remover is None:
                self._remover = ThreadPoolExecutor(1, thread_name_prefix="shotgraph-discard")
            self._remover.submit(_unlink, moved)

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
        """Temporary files outside any process's staging directory (an older layout, or
        the private state of an emulator whose run died) untouched for ``older_than``
        seconds. Staging directories are judged by their lock instead (see the sweep)."""
        cutoff = time.time() - older_than
        for path, mtime in self.temps():
            top = path.relative_to(self.tmp).parts[0]
            if mtime < cutoff and not top.startswith(STAGING_PREFIX):
                yield path


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):  # removed with the staging directory meanwhile
        path.unlink()


def _touched(path: Path) -> bool:
    """Give ``path`` a fresh mtime; False if it is gone (a gc removed it meanwhile). One
    we may not touch (another user's, in a shared store) is there: True."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    except OSError:
        pass
    return True


def _younger(path: Path, seconds: float) -> bool:
    try:
        return path.lstat().st_mtime > time.time() - seconds
    except OSError:
        return True


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


def _unreadable(src: Path, exc: OSError, writing: Path) -> StoreError | DiskFull:
    """Storing ``src`` failed: a full disk (``writing`` is what was being written), or
    ``src`` could not be read."""
    full = disk_full(exc, writing)
    if full is not None:
        return full
    return StoreError(f"cannot store {src}: {exc.strerror or exc}")


def _unwritable(where: Path, exc: OSError) -> StoreError | DiskFull:
    return disk_full(exc, where) or StoreError(
        f"cannot write in {where}: {exc.strerror or exc}",
        hint="check the permissions of the store directory",
    )
