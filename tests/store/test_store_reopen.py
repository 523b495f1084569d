"""A table opened again without diskcache's rewrite of its settings: no write is made, and
the cache object is as diskcache's own opening leaves it. A database that is anything else
(other settings, a schema cut short) takes diskcache's way and is repaired as before."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import diskcache
import pytest
from diskcache.core import DEFAULT_SETTINGS, METADATA

from runner.store import Store
from runner.store import reopen as reopen_module
from runner.store import table as table_module
from runner.store.reopen import Reopened
from runner.store.table import Table

PRAGMAS = ("synchronous", "journal_mode", "cache_size", "mmap_size", "auto_vacuum", "page_size")


def _cache(table: Table) -> diskcache.Cache:
    cache = table._cache
    assert isinstance(cache, diskcache.Cache)
    return cache


def _written(directory: Path) -> tuple[int, int, int]:
    """Size and mtime of the database, and the size of its log: a write changes one of
    them (a connection opening creates an empty log; a commit appends to it)."""
    db, wal = directory / "cache.db", directory / "cache.db-wal"
    return (db.stat().st_size, db.stat().st_mtime_ns, wal.stat().st_size if wal.exists() else 0)


def _state(cache: diskcache.Cache) -> dict[str, Any]:
    """What the rest of the code sees of an opened cache."""
    sql = cache._sql
    return {
        "settings": {key: getattr(cache, key) for key in (*DEFAULT_SETTINGS, *METADATA)},
        "disk": (cache.disk.min_file_size, cache.disk.pickle_protocol),
        "pragmas": {name: sql(f"PRAGMA {name}").fetchall() for name in PRAGMAS},
        "page_size": cache._page_size,
        "timeout": cache._timeout,
    }


@pytest.mark.parametrize("durable", [True, False])
def test_a_table_opened_again_writes_nothing_and_is_as_diskcache_leaves_it(
    tmp_path: Path, durable: bool
) -> None:
    first = Table(tmp_path / "t", durable=durable)
    first.set("a", {"v": 1})
    first.close()
    # What diskcache's own opening leaves, as Table used to open (the count read back: 1).
    full = diskcache.Cache(
        str(tmp_path / "t"), timeout=30.0, sqlite_synchronous=1, **table_module._SETTINGS
    )
    if durable:
        full.reset("sqlite_synchronous", 2)
    expected = _state(full)
    full.close()
    before = _written(tmp_path / "t")
    again = Table(tmp_path / "t", durable=durable)
    assert isinstance(_cache(again), Reopened)
    assert _written(tmp_path / "t") == before
    assert _state(_cache(again)) == expected
    assert expected["settings"]["sqlite_synchronous"] == (2 if durable else 1)
    # And it works as any: a write counted by diskcache's triggers, read back by diskcache.
    again.set("b", {"v": 2})
    assert _cache(again).reset("count") == 2 and again.get("a") == {"v": 1}
    again.close()


def test_a_table_opened_by_another_durability_is_set_the_usual_way(tmp_path: Path) -> None:
    Table(tmp_path / "t", durable=False).close()
    durable = Table(tmp_path / "t", durable=True)
    assert not isinstance(_cache(durable), Reopened)
    assert _cache(durable).sqlite_synchronous == 2
    assert _cache(durable)._sql("PRAGMA synchronous").fetchall() == [(2,)]
    durable.close()


def test_a_database_with_other_settings_gets_the_tables_own(tmp_path: Path) -> None:
    # diskcache's defaults evict past 1 GB: opening it as a Table must set them right.
    diskcache.Cache(str(tmp_path / "t")).close()
    table = Table(tmp_path / "t", durable=True)
    assert not isinstance(_cache(table), Reopened)
    assert (_cache(table).eviction_policy, _cache(table).cull_limit) == ("none", 0)
    table.close()
    assert isinstance(_cache(Table(tmp_path / "t", durable=True)), Reopened)


@pytest.mark.parametrize(
    "damage",
    [
        "DROP TRIGGER Settings_count_insert",
        "DROP INDEX Cache_key_raw",
        "CREATE INDEX Cache_tag_rowid ON Cache(tag, rowid)",
        "DELETE FROM Settings WHERE key = 'hits'",
    ],
)
def test_a_schema_not_as_diskcache_leaves_it_is_repaired_by_diskcache(
    tmp_path: Path, damage: str
) -> None:
    Table(tmp_path / "t", durable=True).close()
    with sqlite3.connect(tmp_path / "t" / "cache.db") as con:
        con.execute(damage)
    table = Table(tmp_path / "t", durable=True)
    assert not isinstance(_cache(table), Reopened)
    names = {row[0] for row in _cache(table)._sql("SELECT name FROM sqlite_master")}
    assert {"Settings_count_insert", "Cache_key_raw"} <= names
    assert "Cache_tag_rowid" not in names
    table.close()


def test_a_store_opened_again_takes_the_shortcut_for_every_table(tmp_path: Path) -> None:
    with Store.open(tmp_path / "store"):
        pass
    calls: list[bool] = []
    original = Reopened.__init__

    def counted(self: Reopened, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        calls.append(self.opened)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Reopened, "__init__", counted)
        with Store.open(tmp_path / "store"):
            pass
    assert calls and all(calls)


def test_settings_changed_between_connect_and_read_leave_no_connection_below_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process in the middle of diskcache's full opening of a durable table has
    Settings at NORMAL (diskcache writes 1, Table then resets it to 2). If this opening's
    connection applies the pragmas while they read NORMAL and the rows read FULL by the
    time they are compared, the shortcut is taken: the connection must be at FULL then,
    as the cache's settings say, or a commit outside a group is not synced."""
    Table(tmp_path / "t", durable=True).close()
    db = tmp_path / "t" / "cache.db"
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("UPDATE Settings SET value = 1 WHERE key = 'sqlite_synchronous'")
    stored = Reopened._stored

    def the_other_opener_resets_first(self: Reopened, final: dict[str, Any]) -> Any:
        self._sql("SELECT 1")  # connected: its pragmas applied from Settings as they are
        other.execute("UPDATE Settings SET value = 2 WHERE key = 'sqlite_synchronous'")
        return stored(self, final)

    monkeypatch.setattr(Reopened, "_stored", the_other_opener_resets_first)
    table = Table(tmp_path / "t", durable=True)
    cache = _cache(table)
    assert cache.sqlite_synchronous == 2
    assert cache._sql("PRAGMA synchronous").fetchall() == [(2,)]
    table.close()
    other.close()


def test_the_schema_checked_is_what_this_diskcache_creates(tmp_path: Path) -> None:
    """A diskcache whose opening creates another table, index or trigger (or creates one
    for the eviction policy Table keeps) would have the shortcut skip it on an older
    database: the schema Reopened checks must be all the opening creates, no more."""
    diskcache.Cache(str(tmp_path / "t"), sqlite_synchronous=1, **table_module._SETTINGS).close()
    with sqlite3.connect(tmp_path / "t" / "cache.db") as con:
        made = set(con.execute("SELECT type, name FROM sqlite_master WHERE sql IS NOT NULL"))
    con.close()
    assert made == reopen_module._SCHEMA
    assert "Cache_tag_rowid" not in {name for _, name in made}


@pytest.mark.parametrize("durable", [True, False])
def test_a_reopened_cache_has_every_attribute_diskcaches_opening_sets(
    tmp_path: Path, durable: bool
) -> None:
    """Reopened sets the attributes itself: one that a later diskcache's opening adds would
    be missing (or stale) on it. The same names, values and Disk as diskcache leaves."""
    Table(tmp_path / "t", durable=durable).close()
    full = diskcache.Cache(
        str(tmp_path / "t"), timeout=30.0, sqlite_synchronous=1, **table_module._SETTINGS
    )
    if durable:
        full.reset("sqlite_synchronous", 2)
    again = Table(tmp_path / "t", durable=durable)
    reopened = _cache(again)
    assert isinstance(reopened, Reopened)
    mine = {k: v for k, v in vars(reopened).items() if k != "opened"}
    theirs = vars(full)
    assert mine.keys() == theirs.keys()
    assert {k: v for k, v in mine.items() if k not in ("_local", "_disk")} == {
        k: v for k, v in theirs.items() if k not in ("_local", "_disk")
    }
    assert type(reopened.disk) is type(full.disk) and vars(reopened.disk) == vars(full.disk)
    assert vars(reopened._local).keys() == vars(full._local).keys()
    full.close()
    again.close()
