"""A Table writes with statements of its own on diskcache's database: the rows must be the
ones diskcache writes, so that diskcache itself (older shotgraph versions, ``cache
verify``, ``gc``) reads them, and its counts stay right. And a thread that wrote in a group
(NORMAL) writes at FULL again outside one."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import diskcache
import pytest

from runner.errors import DiskFull
from runner.store import Owner, Store
from runner.store import table as table_module
from runner.store.grouping import grouped_commits
from runner.store.journal import JournalEntry, body_digest
from runner.store.table import StoreError, Table

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


def test_conditional_writes_match_on_json_fields(tmp_path: Path) -> None:
    table = Table(tmp_path / "t", durable=True)
    owner = {"run_id": "r", "pid": 1, "host": 'hé"st', "started": 1.5e9 + 0.1234567}
    table.set("k", {"v": 1, "owner": owner, "state": "claimed", "n": None})
    assert not table.patch_if("k", {"state": "x"}, {"owner": {**owner, "pid": 2}})
    assert not table.patch_if("k", {"state": "x"}, {"state": "submitted"})
    assert not table.patch_if("absent", {"state": "x"}, {"owner": owner})
    assert table.patch_if("k", {"state": "x", "handle": {"id": "é"}}, {"owner": owner, "n": None})
    assert table.get("k") == {
        "v": 1, "owner": owner, "state": "x", "n": None, "handle": {"id": "é"}
    }  # fmt: skip
    assert not table.replace_if("k", {"v": 2}, {"state": "claimed"})
    assert table.replace_if("k", {"v": 2, "owner": owner}, {"state": "x", "gone": None})
    assert table.get("k") == {"v": 2, "owner": owner}
    assert not table.delete_if("k", {"owner": {**owner, "host": "other"}})
    assert table.delete_if("k", {"owner": owner}) and table.get("k") is None
    assert len(table) == 0
    table.close()


def test_the_journal_one_statement_writes_equal_the_long_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    me = Owner.current("run-a")
    body, handle = {"prompt": "a lighthouse", "seed": 7}, {"request_id": "r-1"}

    def walk(store: Store) -> list[JournalEntry | None]:
        seen = [store.claim("k", me)]
        store.begin_submit("k", me, "fal-ai/x", body, body_digest(body))
        seen.append(store.journal("k"))
        store.record_submission("k", me, "fal-ai/x", handle)
        seen.append(store.journal("k"))
        assert store.release("k", me) and not store.release("k", me)
        return [*seen, store.journal("k")]

    taken: list[str] = []
    for name in ("replace_if", "patch_if", "delete_if"):
        method = getattr(Table, name)

        def spy(self: Table, *args: Any, _method: Any = method, _name: str = name) -> bool:
            done: bool = _method(self, *args)
            taken.extend([_name] if done else [])
            return done

        monkeypatch.setattr(Table, name, spy)
    with Store.open(tmp_path / "short") as store:
        short = walk(store)
    assert taken == ["replace_if", "patch_if", "delete_if"]  # each in one statement
    for name in ("replace_if", "patch_if", "delete_if"):
        monkeypatch.setattr(Table, name, lambda *args: False)
    with Store.open(tmp_path / "long") as store:
        long = walk(store)
    assert [_timeless(e) for e in short] == [_timeless(e) for e in long]
    assert short[1] is not None and short[1].state == "submitting"
    assert short[2] is not None and short[2].state == "submitted" and short[2].body == body


def _timeless(entry: JournalEntry | None) -> JournalEntry | None:
    return None if entry is None else replace(entry, at=0.0, attempts=(0.0,) * len(entry.attempts))


def _log_frames(directory: Path) -> int:
    """Pages written to the table's write-ahead log so far (each commit writes every page
    it changed: the row's, the index's, diskcache's counters)."""
    with sqlite3.connect(directory / "cache.db") as con:
        page: int = con.execute("PRAGMA page_size").fetchone()[0]
    size = (directory / "cache.db-wal").stat().st_size
    return max(0, size - 32) // (page + 24)  # the log's header, then frames


def test_a_groups_writes_share_one_commit(tmp_path: Path) -> None:
    alone, grouped = Table(tmp_path / "alone", durable=True), Table(tmp_path / "g", durable=True)
    before = _log_frames(tmp_path / "alone"), _log_frames(tmp_path / "g")
    for i in range(20):
        alone.set(f"k{i}", {"v": i})
    with grouped_commits():
        for i in range(20):
            grouped.set(f"k{i}", {"v": i})
    each = _log_frames(tmp_path / "alone") - before[0]
    once = _log_frames(tmp_path / "g") - before[1]
    assert each >= 40, each  # twenty commits, two pages or more each
    assert once <= 8, once  # one commit: each page changed is written once
    assert rows(tmp_path / "alone") == rows(tmp_path / "g")
    alone.close()
    grouped.close()


def test_a_failed_unit_inside_a_group_is_undone_alone(tmp_path: Path) -> None:
    table = Table(tmp_path / "t", durable=True)
    with grouped_commits():
        table.set("before", {"v": 1})
        with pytest.raises(ValueError), table.transact():
            table.set("inside", {"v": 2})
            raise ValueError("the unit fails after its write")
        table.set("after", {"v": 3})
    assert [row[0] for row in rows(tmp_path / "t")] == ["after", "before"]
    table.close()


def test_a_group_that_fails_writes_nothing_it_had_not_committed(tmp_path: Path) -> None:
    table = Table(tmp_path / "t", durable=True)
    with pytest.raises(RuntimeError), grouped_commits():
        table.set("lost", {"v": 1})
        raise RuntimeError("the group fails before its end")
    assert rows(tmp_path / "t") == [] and table.get("lost") is None
    table.set("later", {"v": 2})  # the connection is usable again, outside a group
    assert table.get("later") == {"v": 2}
    table.close()


def test_a_group_holds_the_lock_only_until_it_commits_what_it_wrote(tmp_path: Path) -> None:
    """The writer commits before it waits for more writes (Group.commit_held): another
    process can write meanwhile; the group's next write takes the lock again."""
    table = Table(tmp_path / "t", durable=True)
    other = sqlite3.connect(tmp_path / "t" / "cache.db", timeout=0, isolation_level=None)

    def other_can_write() -> bool:
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return False
        other.execute("ROLLBACK")
        return True

    with grouped_commits() as group:
        table.set("a", {"v": 1})
        assert not other_can_write()
        assert other.execute("SELECT count(*) FROM Cache").fetchone() == (0,)  # not yet
        group.commit_held()
        assert other_can_write()
        assert other.execute("SELECT count(*) FROM Cache").fetchone() == (1,)
        table.set("b", {"v": 2})
        assert not other_can_write()
    assert other_can_write()
    assert other.execute("SELECT count(*) FROM Cache").fetchone() == (2,)
    other.close()
    table.close()


def test_a_group_never_waits_for_a_lock_while_it_holds_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two stores over one directory in one process share the writer thread: a group that
    held the first's transaction while it took the second's lock waited on itself until
    the lock timeout (and two processes writing two databases in opposite orders, on each
    other). A group holds one database's transaction at a time."""
    monkeypatch.setattr("runner.store.table.LOCK_TIMEOUT", 0.5)
    first, second = Table(tmp_path / "t", durable=True), Table(tmp_path / "t", durable=True)
    other = Table(tmp_path / "o", durable=True)
    with grouped_commits():
        first.set("a", {"v": 1})
        second.set("b", {"v": 2})  # the same database on another connection
        other.set("c", {"v": 3})
        first.set("d", {"v": 4})
    assert [row[0] for row in rows(tmp_path / "t")] == ["a", "b", "d"]
    assert other.get("c") == {"v": 3}
    for table in (first, second, other):
        table.close()


def test_a_group_whose_early_commit_fails_fails_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit made before the group's end (before it waits, or before it takes another
    database's lock) that fails lost writes whose callers have not heard back yet: the
    group fails, even if its later writes commit."""
    first, second = Table(tmp_path / "f", durable=True), Table(tmp_path / "s", durable=True)
    begin = Table._begin

    def failing_commit(table: Table) -> Callable[[bool], None]:
        end = begin(table)

        def fail(commit: bool) -> None:
            end(False)
            raise StoreError("simulated: the commit cannot be written")

        return fail if table is first else end

    monkeypatch.setattr(Table, "_begin", failing_commit)
    with pytest.raises(StoreError), grouped_commits():
        first.set("lost", {"v": 1})
        with contextlib.suppress(StoreError):  # a caller's own failure, handed back to it
            second.set("kept", {"v": 2})
    assert first.get("lost") is None
    first.close()
    second.close()


def test_a_groups_commit_refused_on_a_nearly_full_disk_says_the_disk_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write a full disk rolled back takes the group's transaction with it: the group's
    commit then finds none ("no transaction is active"). With no space left, the user is
    told the disk is full (free some space), not that the store may be damaged."""
    table = Table(tmp_path / "t", durable=True)
    monkeypatch.setattr(table_module, "free_bytes", lambda _: 4096)
    with pytest.raises(DiskFull), grouped_commits():
        table.set("a", {"v": 1})
        table._cache._con.execute("ROLLBACK")  # what SQLite does on SQLITE_FULL
    monkeypatch.undo()
    # With room, the same refusal is what it says (a store error, not a full disk).
    with pytest.raises(Exception) as caught, grouped_commits():
        table.set("b", {"v": 1})
        table._cache._con.execute("ROLLBACK")
    assert not isinstance(caught.value, DiskFull)
    table.close()
