"""A Table writes with statements of its own on diskcache's database: the rows must be the
ones diskcache writes, so that diskcache itself (older shotgraph versions, ``cache
verify``, ``gc``) reads them, and its counts stay right. And a thread that wrote in a group
(NORMAL) writes at FULL again outside one."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import diskcache

from runner.store.table import Table, grouped_commits

COLUMNS = "key, raw, expire_time, access_count, tag, size, mode, filename, value"


def rows(directory: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(directory / "cache.db") as con:
        return con.execute(f"SELECT {COLUMNS} FROM Cache ORDER BY key").fetchall()


def test_rows_are_the_ones_diskcache_writes(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    table = Table(ours, durable=True)
    reference = Table(theirs, durable=True)
    for key, value in (("a", {"v": 1}), ("b", {"v": 2, "é": "ü"}), ("a", {"v": 3})):
        table.set(key, value)
        _cache(reference).set(key, _text(value))  # diskcache's own set, the same JSON
    assert table.add("c", {"v": 4}) and not table.add("c", {"v": 5})
    assert _cache(reference).add("c", _text({"v": 4}))
    assert table.delete("b") and not table.delete("b") and not table.delete("never")
    assert _cache(reference).delete("b")
    assert rows(ours) == rows(theirs)
    table.close()
    reference.close()
    # diskcache reads them, and counts them, as its own.
    cache = diskcache.Cache(str(ours))
    assert cache.get("a") == '{"v":3}' and cache.get("c") == '{"v":4}'
    assert len(cache) == 2 and cache.volume() > 0
    assert sorted(cache.iterkeys()) == ["a", "c"]
    cache.close()


def test_an_expired_row_is_absent_to_add_and_get(tmp_path: Path) -> None:
    table = Table(tmp_path / "t", durable=False)
    _cache(table).set("old", '{"v":1}', expire=-1)  # expired already
    assert table.get("old") is None and not table.delete("old")
    assert table.add("old", {"v": 2})
    assert table.get("old") == {"v": 2}
    assert len(table) == 1
    table.close()


def test_a_value_too_large_to_keep_inline_goes_through_diskcache(tmp_path: Path) -> None:
    table = Table(tmp_path / "t", durable=False)
    _cache(table).reset("disk_min_file_size", 64)  # side files from 64 characters
    table.set("big", {"text": "x" * 100})
    (_, _, _, _, _, _, mode, filename, _), *_ = rows(tmp_path / "t")
    assert mode != 1 and filename  # a side file, written by diskcache
    table.set("big", {"v": 1})  # a short value replacing a side file: diskcache's way
    assert table.get("big") == {"v": 1}
    assert table.delete("big") and len(table) == 0
    assert not list((tmp_path / "t").rglob("*.val"))  # its side file removed
    table.close()


def test_a_thread_writes_at_full_again_after_a_group(tmp_path: Path) -> None:
    table = Table(tmp_path / "t", durable=True)
    con = table._cache._con

    def synchronous() -> int:
        level: int = con.execute("PRAGMA synchronous").fetchone()[0]
        return level

    with grouped_commits():
        table.set("a", {"v": 1})
        assert synchronous() == 1  # NORMAL: the group syncs once at its end
    table.set("b", {"v": 2})  # outside a group: this commit is synced on its own
    assert synchronous() == 2
    # Another thread's connection is its own: our group's setting never reaches it.
    seen: list[int] = []

    def other() -> None:
        with grouped_commits():
            table.set("c", {"v": 3})
        seen.append(table._cache._con.execute("PRAGMA synchronous").fetchone()[0])

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen == [1] and synchronous() == 2
    table.close()


def _cache(table: Table) -> diskcache.Cache:
    cache = table._cache
    assert isinstance(cache, diskcache.Cache)
    return cache


def _text(value: Mapping[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
