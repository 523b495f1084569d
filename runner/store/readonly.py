"""Reading a diskcache table without writing a byte: for a store on a full disk.

diskcache writes its settings every time it opens a database, and SQLite in WAL mode
creates the shared-memory file beside it, so on a disk with no space left a store cannot
even be opened the usual way. ``cache verify`` and ``cache info`` only read, so they read
through this instead: the database opened read-only (``mode=ro``, which still sees the
changes of runs writing at the same moment), or, when even that needs space it cannot get,
as an immutable file (a run writing meanwhile is not seen) when its WAL is empty: commits
still in a WAL would not be seen either, so one that holds any stops the look.

Only what :class:`~runner.store.table.Table` stores is read: string keys (diskcache's
``raw`` keys) whose values are JSON text held inline (``mode`` 1, MODE_RAW).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from urllib.parse import quote

_DB = "cache.db"
_MODE_RAW = 1
_PAGE = 1000


class ReadOnlyCache:
    """The subset of ``diskcache.Cache`` that :class:`Table` reads, on a read-only database."""

    def __init__(self, directory: Path) -> None:
        path = quote(str((directory / _DB).absolute()))
        if not (directory / _DB).is_file():
            if directory.parent.is_dir():
                # A table this store's version did not have yet: read as empty.
                self._con = sqlite3.connect(":memory:")
                self._con.execute("CREATE TABLE Cache (key, raw, value, mode, expire_time)")
                return
            raise sqlite3.OperationalError(f"no database at {directory / _DB}")
        self._con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            self._con.execute("SELECT count(*) FROM Cache").fetchone()
        except sqlite3.OperationalError:
            self._con.close()
            wal = directory / f"{_DB}-wal"
            if wal.is_file() and wal.stat().st_size > 0:
                # Commits may sit in the WAL, which only a connection that can make the
                # shared memory reads: an immutable look would answer without them.
                raise sqlite3.OperationalError(
                    f"{wal} holds writes not yet in the database; they cannot be read "
                    "without writing beside it"
                ) from None
            self._con = sqlite3.connect(f"file:{path}?immutable=1", uri=True)

    def get(self, key: str) -> object:
        row = self._con.execute(
            "SELECT value, mode FROM Cache WHERE key = ? AND raw = 1", (key,)
        ).fetchone()
        if row is None or row[1] != _MODE_RAW:
            return None
        return row[0]

    def iterkeys(self) -> Iterator[object]:
        last = ""
        while True:
            rows = self._con.execute(
                "SELECT key FROM Cache WHERE raw = 1 AND key > ? ORDER BY key LIMIT ?",
                (last, _PAGE),
            ).fetchall()
            if not rows:
                return
            for (key,) in rows:
                yield key
            last = rows[-1][0]

    def __contains__(self, key: str) -> bool:
        found = self._con.execute(
            "SELECT 1 FROM Cache WHERE key = ? AND raw = 1", (key,)
        ).fetchone()
        return found is not None

    def __len__(self) -> int:
        ((count,),) = self._con.execute("SELECT count(*) FROM Cache").fetchall()
        return int(count)

    def close(self) -> None:
        self._con.close()

    # Writes: refused, as SQLite refuses them on a read-only connection.

    def add(self, key: str, value: object) -> bool:
        raise _refused()

    def set(self, key: str, value: object) -> bool:
        raise _refused()

    def delete(self, key: str) -> bool:
        raise _refused()

    def transact(self) -> AbstractContextManager[None]:
        raise _refused()


def _refused() -> sqlite3.OperationalError:
    return sqlite3.OperationalError("attempt to write a readonly database")


def writable(path: Path) -> bool:
    """Whether this process may write in ``path`` (or the nearest part of it that exists):
    not on a read-only mount, and permitted."""
    for where in (path, *path.parents):
        try:
            read_only = bool(os.statvfs(where).f_flag & os.ST_RDONLY)
        except OSError:
            continue  # not there (yet): its parent decides
        return not read_only and os.access(where, os.W_OK)
    return True
