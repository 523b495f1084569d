"""A table of JSON objects in one diskcache ``Cache`` (one SQLite database).

Values are stored as JSON text, which diskcache keeps as a plain SQLite TEXT value: nothing is
pickled, so any later version of the code can read them. The settings matter:

- ``eviction_policy="none"`` and ``cull_limit=0``: diskcache's default evicts entries past
  1 GB; a store of paid results must never drop one on its own;
- ``sqlite_synchronous=2`` (FULL) for tables whose writes must survive a power cut once the
  call returns (the journal, results); NORMAL still survives ``kill -9``;
- ``disk_min_file_size`` high, so records stay inside the database instead of side files.

Writes are one statement each on diskcache's own connection, writing the very rows
diskcache writes (see :mod:`runner.store.cache_rows`).

SQLite errors and lock timeouts become :class:`StoreError`; a full disk becomes
:class:`~runner.errors.DiskFull`. ``read_only`` opens the database with plain SQLite in
read-only mode instead (diskcache writes its settings on every open, which a full disk
refuses): what ``cache verify`` and ``cache info`` need on a disk with no space left.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import diskcache

from runner.errors import DiskFull, ShotgraphError, disk_full, free_bytes, mount_point
from runner.store import cache_rows as rows
from runner.store.grouping import Group, current
from runner.store.readonly import ReadOnlyCache, writable
from runner.store.reopen import Reopened, settings_of

# Seconds a call waits for another process's write transaction (they last microseconds).
LOCK_TIMEOUT = 30.0
# What each table's database keeps besides diskcache's defaults (see the module's notes).
_SETTINGS = {"eviction_policy": "none", "cull_limit": 0, "disk_min_file_size": 2**24}
# diskcache's database file in a table's directory; SQLite's write-ahead log beside it.
WAL_NAME = "cache.db-wal"


class StoreError(ShotgraphError):
    """The store cannot be read or written (damaged database, busy lock, disk error)."""


def _failure(path: Path, exc: BaseException) -> StoreError | DiskFull:
    full = disk_full(exc, path)
    if full is None and _nearly_full_sqlite(exc, path):
        # SQLite reports some writes on a full disk (growing the WAL's shared memory) as
        # a plain I/O error, and a group's commit after a write that a full disk rolled
        # back as "no transaction is active": with next to no space left, that is what it is.
        full = DiskFull(path, f"{exc}")
    if full is not None:
        return full
    if isinstance(exc, diskcache.Timeout) or _sqlite_code(exc) == _SQLITE_BUSY:
        # diskcache's own calls raise Timeout; the Table's own statements, SQLITE_BUSY.
        return StoreError(
            f"the store at {path} stayed locked by another process for {LOCK_TIMEOUT:.0f} s",
            hint="another shotgraph may be stuck; stop it and retry",
        )
    if not writable(path):  # nothing is damaged: moving it aside would lose a good store
        hint = (
            "its disk is read-only or not writable by this user (nothing is damaged): "
            "use it where it can be written, or a writable copy of it"
        )
    else:
        hint = "if the store is damaged, move the directory aside; it is rebuilt on the next run"
    return StoreError(f"cannot use the store at {path}: {exc}", hint=hint)


_NEARLY_FULL = 1 << 20
_SQLITE_ERROR = 1
_SQLITE_BUSY = 5
_SQLITE_IOERR = 10


def _sqlite_code(exc: BaseException) -> int | None:
    """SQLite's primary result code for ``exc`` (None: not an SQLite error)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def _nearly_full_sqlite(exc: BaseException, path: Path) -> bool:
    """An SQLite error (an I/O error, or any on a group's commit) with next to no space."""
    if _sqlite_code(exc) not in (_SQLITE_IOERR, _SQLITE_ERROR):
        return False
    return (free_bytes(mount_point(path)) or 0) < _NEARLY_FULL


class Table:
    """Keys (strings) to JSON objects, safe to share between processes."""

    def __init__(self, directory: Path, *, durable: bool, read_only: bool = False) -> None:
        self.directory = directory
        self.durable = durable and not read_only
        # Threads whose connection is at NORMAL since a group: set back to FULL lazily,
        # before that thread's next write outside a group (two statements fewer a group).
        self._normal: set[int] = set()
        self._cache: diskcache.Cache | ReadOnlyCache
        try:
            if read_only:
                self._cache = ReadOnlyCache(directory)
                return
            # A database that holds these settings already is opened without a write.
            final = settings_of({**_SETTINGS, "sqlite_synchronous": 2 if durable else 1})
            reopened = Reopened(str(directory), timeout=LOCK_TIMEOUT, final=final)
            if reopened.opened:
                self._cache = reopened
                return
            self._cache = diskcache.Cache(
                str(directory), timeout=LOCK_TIMEOUT, sqlite_synchronous=1, **_SETTINGS
            )
            if durable:
                # Opening rewrites every setting, each a transaction: at FULL each waits for
                # the disk. Settings need no more than NORMAL; the records need FULL, from
                # here on, on every connection (diskcache applies the stored setting).
                self._cache.reset("sqlite_synchronous", 2)
        except (sqlite3.Error, OSError, diskcache.Timeout) as exc:
            raise _failure(directory, exc) from exc

    def get(self, key: str) -> dict[str, Any] | None:
        """The object under ``key``; None when absent or not a JSON object."""
        try:
            return self.get_strict(key)
        except ValueError:
            return None

    def get_strict(self, key: str) -> dict[str, Any] | None:
        """The object under ``key``; None when absent, ValueError when it is something else."""
        try:
            text = self._read(key)
        except (sqlite3.Error, OSError, diskcache.Timeout) as exc:
            raise _failure(self.directory, exc) from exc
        if text is None:
            return None
        value = json.loads(text) if isinstance(text, str) else None
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
        return value

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The objects under ``keys`` in one query (absent ones and non-objects left out):
        a plan of 5,000 nodes asks once, not 5,000 times."""
        found: dict[str, dict[str, Any]] = {}
        for key, text in self.texts_of(keys).items():
            try:
                value = json.loads(text)
            except ValueError:
                continue
            if isinstance(value, dict):
                found[key] = value
        return found

    def texts_of(self, keys: Iterable[str]) -> dict[str, str]:
        """The JSON texts under ``keys``, as :meth:`get_many` finds them but not parsed:
        for a caller that can tell some rows by their text alone (it parses the rest)."""
        wanted = json.dumps(list(dict.fromkeys(keys)))
        try:
            # Table's own rows only: string keys, JSON text held inline (MODE_RAW).
            found = self._cache._con.execute(
                "SELECT key, value FROM Cache WHERE raw = 1 AND mode = 1"
                " AND (expire_time IS NULL OR expire_time > ?)"
                " AND key IN (SELECT value FROM json_each(?))",
                (time.time(), wanted),
            ).fetchall()
        except (sqlite3.Error, OSError, diskcache.Timeout) as exc:
            raise _failure(self.directory, exc) from exc
        return {key: text for key, text in found if isinstance(text, str)}

    def add(self, key: str, value: Mapping[str, Any]) -> bool:
        """Insert only if ``key`` is absent (atomic); True when inserted."""
        text = rows.encode(value)
        try:
            self._join_group()
            if self._inline(text):
                if self._write(rows.ADD, (key, time.time(), time.time(), text)):
                    return True
                if key in self._cache:  # present: not added (else: a side file, below)
                    return False
            return bool(self._cache.add(key, text))
        except (sqlite3.Error, OSError, diskcache.Timeout) as exc:
            raise _failure(self.directory, exc) from exc

    def set(self, key: str, value: Mapping[str, Any]) -> None:
        text = rows.encode(value)
        try:
            self._join_group()
            now = time.time()
            if not self._inline(text) or not self._write(rows.SET, (key, now, now, text)):
                self._cache.set(key, text)  # a large value, or one replacing a side file
        except (sqlite3.Error, OSError, diskcache.Timeout) as exc:
            raise _failure(self.directory, exc) from exc

    def delete(self, key: str) -> bool:
        try:
            self._join_group()
            if self._write(rows.DELETE, (key, time.time())):
                return True
            # Absent; or held in a side file, whose removal is diskcache's business.
            return key in self._cache and bool(self._cache.delete(key))
        except (sqlite3.Error, OSError, diskcache.Timeout) as exc:
            raise _failure(self.directory, exc) from exc

    def replace_if(self, key: str, value: Mapping[str, Any], match: Mapping[str, Any]) -> bool:
        """Overwrite the object under ``key`` with ``value`` if it is there and ``match``es
        (see :meth:`patch_if`); one statement. False when not (nothing written)."""
        text = rows.encode(value)
        if not self._inline(text):
            return False
        return self._where(match, "value = ?", (text,), key)

    def patch_if(self, key: str, patch: Mapping[str, Any], match: Mapping[str, Any]) -> bool:
        """Set the top-level fields of ``patch`` in the object under ``key`` if it is there
        and, for each field of ``match``, holds that JSON value (None: absent or null); one
        statement, SQLite's JSON functions doing the rest. False when not."""
        paths = ", ".join("?, json(?)" for _ in patch)
        args = tuple(
            part for name, v in patch.items() for part in (rows.path(name), rows.encode(v))
        )
        return self._where(match, f"value = json_set(value, {paths})", args, key)

    def delete_if(self, key: str, match: Mapping[str, Any]) -> bool:
        """Delete the object under ``key`` if it ``match``es (see :meth:`patch_if`)."""
        return self._where(match, None, (), key)

    def _where(
        self, match: Mapping[str, Any], change: str | None, args: tuple[Any, ...], key: str
    ) -> bool:
        statement, values = rows.conditional(key, match, change, args)
        try:
            self._join_group()
            return self._write(statement, values)
        except (sqlite3.Error, OSError, diskcache.Timeout) as exc:
            raise _failure(self.directory, exc) from exc

    def _inline(self, text: str) -> bool:
        """Whether diskcache would keep ``text`` inside the database (not in a side file)."""
        cache = self._cache
        return isinstance(cache, diskcache.Cache) and len(text) < int(cache.disk_min_file_size)

    def _write(self, statement: str, args: tuple[Any, ...]) -> bool:
        """Run one write on this thread's diskcache connection (its own transaction, or
        part of the one :meth:`transact` holds); whether it changed a row."""
        cache = self._cache
        if not isinstance(cache, diskcache.Cache):  # read-only: refused, as its own calls are
            raise sqlite3.OperationalError("attempt to write a readonly database")
        changed: int = cache._con.execute(statement, args).rowcount
        return changed > 0

    def _read(self, key: str) -> Any:
        """The value under ``key`` as diskcache stores it (None when absent)."""
        cache = self._cache
        if not isinstance(cache, diskcache.Cache):
            return cache.get(key)
        row = cache._con.execute(rows.SELECT, (key, time.time())).fetchone()
        if row is None:
            return None
        mode, value = row
        return value if mode == 1 else cache.get(key)  # a side file: diskcache reads it

    @contextmanager
    def transact(self) -> Iterator[None]:
        """Hold the database's write lock: reads and writes inside are one atomic unit.

        Keep the body short and free of I/O other than this table: other processes wait.
        """
        try:
            group = self._join_group()
            if group is None or not group.holds(self):
                with self._cache.transact():
                    yield
                return
            # Inside the group's transaction (which holds the lock already): a savepoint,
            # so that a failure undoes this unit alone, as a transaction of its own would.
            con = self._cache._con
            con.execute("SAVEPOINT unit")
            try:
                yield
            except BaseException:
                con.execute("ROLLBACK TO unit")
                con.execute("RELEASE unit")
                raise
            con.execute("RELEASE unit")
        except (sqlite3.Error, OSError, diskcache.Timeout) as exc:
            raise _failure(self.directory, exc) from exc

    def __iter__(self) -> Iterator[str]:
        """Every key, in sort order, read in pages (entries may come and go meanwhile)."""
        try:
            for key in self._cache.iterkeys():
                if isinstance(key, str):
                    yield key
        except (sqlite3.Error, OSError, diskcache.Timeout) as exc:
            raise _failure(self.directory, exc) from exc

    def __contains__(self, key: str) -> bool:
        try:
            return key in self._cache
        except (sqlite3.Error, OSError, diskcache.Timeout) as exc:
            raise _failure(self.directory, exc) from exc

    def __len__(self) -> int:
        try:
            return len(self._cache)
        except (sqlite3.Error, OSError, diskcache.Timeout) as exc:
            raise _failure(self.directory, exc) from exc

    def close(self) -> None:
        self._cache.close()

    def _join_group(self) -> Group | None:
        """Before a write: inside :func:`grouped_commits` (the group, returned), this
        table's commits on this thread skip their fsync until the group's end (NORMAL,
        which SQLite's log still writes in order; the sync comes at the end), and its
        writes share one transaction until the group commits it (see
        :meth:`Group.hold`). Outside one, every commit is synced on its own (FULL), as the
        table's setting says."""
        if not self.durable:
            return None
        group = current()
        if group is None:
            thread = threading.get_ident()
            if thread in self._normal:
                self._cache._con.execute("PRAGMA synchronous = 2")
                self._normal.discard(thread)
            return None
        if group.holds(self):
            return group
        if self not in group.logs:
            thread = threading.get_ident()
            if thread not in self._normal:
                self._cache._con.execute("PRAGMA synchronous = 1")
                self._normal.add(thread)
            group.logs[self] = None
        # Another connection's transaction (another database, or this one opened twice)
        # is committed before this one waits for its lock, which another process holding
        # this lock and waiting for that one (or that very transaction) would otherwise
        # keep for LOCK_TIMEOUT. A failure fails the group.
        group.commit_held()
        group.hold(self, self._begin())
        return group

    def _begin(self) -> Callable[[bool], None]:
        """Open a write transaction on this thread's connection (diskcache's own, so that
        its calls inside join it); how to end it: commit (True) or roll back (False)."""
        held = self._cache.transact()
        held.__enter__()

        def end(commit: bool) -> None:
            try:
                if commit:
                    held.__exit__(None, None, None)
                else:
                    undone = StoreError("the group of writes failed")
                    held.__exit__(StoreError, undone, None)
            except (sqlite3.Error, OSError, diskcache.Timeout) as exc:
                raise _failure(self.directory, exc) from exc

        return end

    def sync_log(self) -> None:
        """A group's end: one fsync of the log. The connection stays at NORMAL for the
        writer thread's next group (its writes all come in groups)."""
        try:
            try:
                fd = os.open(self.directory / WAL_NAME, os.O_RDONLY)
            except FileNotFoundError:
                return  # checkpointed and removed: SQLite synced the database itself
            try:
                # What SQLite itself uses on Linux: the log's data and its size, without
                # the journal commit an mtime-only change would cost (the log is rewritten
                # in place after each checkpoint, so its size rarely changes).
                # macOS has no fdatasync: fsync there.
                getattr(os, "fdatasync", os.fsync)(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise _failure(self.directory, exc) from exc
