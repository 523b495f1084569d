"""The rows of diskcache's ``Cache`` table that :class:`~runner.store.table.Table` writes
with statements of its own: exactly the row diskcache's ``set`` writes for a string key
(``raw`` 1) and a JSON text held inline (``mode`` 1, MODE_RAW; size 0, no tag, no expiry),
so that diskcache, older versions, ``cache verify`` and ``gc`` read them as their own, and
its triggers keep its counts. One statement where diskcache runs four and a transaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

# diskcache's columns for a string key and a JSON text value held inline (MODE_RAW = 1).
INSERT = (
    "INSERT INTO Cache(key, raw, store_time, expire_time, access_time, access_count,"
    " tag, size, mode, filename, value) VALUES (?, 1, ?, NULL, ?, 0, NULL, 0, 1, NULL, ?)"
    " ON CONFLICT(key, raw) DO UPDATE SET store_time = excluded.store_time,"
    " expire_time = NULL, access_time = excluded.access_time, access_count = 0, tag = NULL,"
    " size = 0, mode = 1, filename = NULL, value = excluded.value"
)
# An existing row is replaced only where diskcache itself would without more work: one
# with no side file (set), or one that has expired (add: diskcache treats it as absent).
SET = INSERT + " WHERE Cache.filename IS NULL"
ADD = INSERT + " WHERE Cache.filename IS NULL AND Cache.expire_time <= excluded.store_time"
DELETE = (
    "DELETE FROM Cache WHERE key = ? AND raw = 1 AND filename IS NULL"
    " AND (expire_time IS NULL OR expire_time > ?)"
)
SELECT = (
    "SELECT mode, value FROM Cache WHERE key = ? AND raw = 1"
    " AND (expire_time IS NULL OR expire_time > ?)"
)

# Only a live row held inline, as a Table writes them.
_ROW = (
    " WHERE key = ? AND raw = 1 AND mode = 1 AND filename IS NULL"
    " AND (expire_time IS NULL OR expire_time > ?)"
)


# allow_nan=False: NaN is not JSON and other readers would reject the record. One encoder
# for every write: json.dumps with these options builds a new one each call (a journal
# write encodes up to five values).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode(value: Mapping[str, Any]) -> str:
    """The JSON text a Table stores."""
    return _ENCODER.encode(value)


def path(name: str) -> str:
    """The JSON path of the top-level field ``name``: quoted, so that a dot or a bracket in
    a name stays part of it (as in the read-decide-write this replaces)."""
    if '"' in name or "\\" in name:
        raise ValueError(f"a field name SQLite's JSON paths cannot quote: {name!r}")
    return f'$."{name}"'


def conditional(
    key: str, match: Mapping[str, Any], change: str | None, args: tuple[Any, ...]
) -> tuple[str, tuple[Any, ...]]:
    """The statement and its arguments that apply ``change`` (an ``UPDATE``'s assignments
    taking ``args``; None: delete) to the row of ``key`` if, for each field of ``match``,
    the stored object holds that JSON value (None: absent or null). A row that is not a
    JSON object (damaged, or another tool's) matches nothing, nor does a value of another
    JSON type (a string holding an object's text is not that object): the caller's long
    way reads such a row and decides, as before."""
    tests, facts = "", []
    for name, expected in match.items():
        field = path(name)
        if expected is None:
            tests += " AND json_extract(value, ?) IS NULL"
            facts.append(field)
        else:
            tests += (
                " AND json_type(value, ?) = json_type(?, '$')"
                " AND json_extract(value, ?) = json_extract(?, '$')"
            )
            text = encode(expected)
            facts.extend([field, text, field, text])
    # CASE: SQLite's JSON functions fail on a row that is not JSON; they must not run there.
    where = (
        _ROW + " AND CASE WHEN typeof(value) = 'text' AND json_valid(value)"
        f" THEN json_type(value) = 'object'{tests} ELSE 0 END"
    )
    now = time.time()
    if change is None:
        return "DELETE FROM Cache" + where, (key, now, *facts)
    # What diskcache's set writes besides the value: no expiry, no tag, never read.
    statement = (
        "UPDATE Cache SET store_time = ?, access_time = ?, expire_time = NULL,"
        f" access_count = 0, tag = NULL, {change}" + where
    )
    return statement, (now, now, *args, key, now, *facts)
