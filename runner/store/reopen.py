"""Opening a table's diskcache database again without writing to it.

``diskcache.Cache`` rewrites every one of its settings each time it opens a database: some
440 statements, 176 of them write transactions of their own, about 10 ms a table, and a
store has six. A database that already holds exactly the settings a :class:`Table` would
write, with all of diskcache's tables, indexes and triggers, has nothing to gain from that:
:class:`Reopened` then sets up the cache object as diskcache's own opening leaves it (the
settings read back, the per-connection pragmas applied from them as diskcache applies them
on every new connection), without a write. Anything else (a new database, other settings,
a schema cut short by a crash, an unreadable file) takes diskcache's usual way, so its own
repairs and errors stay what they were.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import diskcache
from diskcache.core import DEFAULT_SETTINGS, METADATA

# What diskcache's opening creates (with tag_index off, as Table keeps it).
_SCHEMA = frozenset(
    {
        ("table", "Settings"),
        ("table", "Cache"),
        ("index", "Cache_key_raw"),
        ("index", "Cache_expire_time"),
        ("trigger", "Settings_count_insert"),
        ("trigger", "Settings_count_delete"),
        ("trigger", "Settings_size_insert"),
        ("trigger", "Settings_size_update"),
        ("trigger", "Settings_size_delete"),
    }
)
# Schema objects whose presence means the settings were changed outside Table.
_FOREIGN = frozenset({("index", "Cache_tag_rowid"), ("index", "Cache_access_time")})


def settings_of(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings diskcache keeps for ``settings`` passed on top of its defaults."""
    kept = {**DEFAULT_SETTINGS, **settings}
    for key in METADATA:
        kept.pop(key, None)
    return kept


class Reopened(diskcache.Cache):  # type: ignore[misc]
    """A ``diskcache.Cache`` opened on a database whose settings are already ``final``
    (as :func:`settings_of` gives them): no write is made. ``opened`` says whether that
    shortcut was taken; when it was not, the caller opens the usual way."""

    def __init__(self, directory: str, *, timeout: float, final: dict[str, Any]) -> None:
        self.opened = False
        self._directory = directory
        self._timeout = timeout
        self._local = threading.local()
        self._txn_id = None
        try:
            stored = self._stored(final)
            # The pragmas again, from the rows just compared: the connection applied them
            # from Settings as they read when it opened, and a full opening elsewhere may
            # have changed them since (a durable table's sits at NORMAL for a moment).
            for key, value in (stored or {}).items():
                if key[:7] == "sqlite_":
                    self.reset(key, value, update=False)
        except sqlite3.Error:
            stored = None
        if stored is None:
            self.close()
            return
        self._disk = diskcache.Disk(
            directory, **{key[5:]: value for key, value in final.items() if key[:5] == "disk_"}
        )
        for key, value in stored.items():  # the settings, and the counters beside them
            setattr(self, key, value)
        ((self._page_size,),) = self._sql("PRAGMA page_size").fetchall()
        self.opened = True

    def _stored(self, final: dict[str, Any]) -> dict[str, Any] | None:
        """The Settings rows when they and the schema are as Table's opening leaves them;
        None otherwise. Read on this thread's connection, whose opening applies the
        stored pragmas as diskcache's does on every connection (and as its full opening
        would: nothing here writes what that would not)."""
        sql = self._sql
        schema = set(sql("SELECT type, name FROM sqlite_master").fetchall())
        if not schema >= _SCHEMA or _FOREIGN & schema:
            return None
        stored = dict(sql("SELECT key, value FROM Settings").fetchall())
        if {k: v for k, v in stored.items() if k not in METADATA} != final:
            return None
        if any(key not in stored for key in METADATA):
            return None
        return stored
