"""Review of the store's one-statement writes (r13b): each test shows a way the direct
statements, the conditional journal writes or the group sync differed from the long way
(diskcache's own calls, the journal's read-decide-write in a transaction)."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from runner.store import Owner
from runner.store import table as table_module
from runner.store.grouping import grouped_commits
from runner.store.journal import Journal, JournalConflict, JournalEntry
from runner.store.table import StoreError, Table

OWNER = Owner("run-a", 41, "host-a", 1.7e9, 5, "boot")


def _journal(tmp_path: Path) -> Journal:
    return Journal(Table(tmp_path / "journal", durable=True))


def test_a_group_syncs_where_the_os_has_no_fdatasync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # macOS has no os.fdatasync: a group's sync must still happen there (with fsync), not
    # fail every journal write of the group with an AttributeError.
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.delattr(os, "fdatasync", raising=False)
    monkeypatch.setattr(os, "fsync", fsync)
    table = Table(tmp_path / "t", durable=True)
    with grouped_commits(sync=True):
        table.set("k", {"v": 1})
    assert synced and table.get("k") == {"v": 1}
    table.close()


@pytest.mark.parametrize("text", ["not json {", "[1, 2]", '"owner"'])
def test_a_damaged_journal_row_is_reported_as_before(tmp_path: Path, text: str) -> None:
    # The long way reads the row and says the entry cannot be read (never guess about a
    # paid job); the one statement must not fail with SQLite's "malformed JSON" and the
    # hint to move the store aside, nor write anything.
    journal = _journal(tmp_path)
    journal.table._cache.set("k", text)
    for write in (
        lambda: journal.release("k", OWNER),
        lambda: journal.record_submission("k", OWNER, "fal-ai/x", {"request_id": "r"}),
        lambda: journal.begin_submit("k", OWNER, "fal-ai/x", {"p": 1}, "d"),
    ):
        with pytest.raises(StoreError, match="journal entry for cache key"):
            write()
    assert journal.table._cache.get("k") == text
    journal.table.close()


def test_an_owner_stored_as_a_string_matches_no_owner(tmp_path: Path) -> None:
    # A string holding an owner's JSON text is not that owner: json_extract returns both
    # as the same SQL text, so a bare comparison took the string for the object.
    journal = _journal(tmp_path)
    entry = JournalEntry("claimed", OWNER).as_dict()
    entry["owner"] = json.dumps(OWNER.as_dict(), separators=(",", ":"))
    journal.table.set("k", entry)
    with pytest.raises(StoreError, match="cannot be read"):
        journal.release("k", OWNER)
    with pytest.raises(StoreError, match="cannot be read"):
        journal.record_submission("k", OWNER, "fal-ai/x", {"request_id": "r"})
    assert journal.table.get("k") == entry
    journal.table.close()


def test_a_field_name_names_a_top_level_field(tmp_path: Path) -> None:
    # patch_if's names are fields of the object, as the read-decide-write treats them: a
    # dot in one does not reach into a nested object.
    table = Table(tmp_path / "t", durable=True)
    table.set("k", {"a": {"b": 0}})
    assert table.patch_if("k", {"a.b": 1}, {"a.b": None})
    assert table.get("k") == {"a": {"b": 0}, "a.b": 1}
    assert table.delete_if("k", {"a.b": 1}) and table.get("k") is None
    with pytest.raises(ValueError, match="field name"):
        table.patch_if("k", {'a"b': 1}, {})
    table.close()


def test_a_conditional_write_clears_an_expiry_as_a_set_does(tmp_path: Path) -> None:
    # A row written with an expiry (by diskcache, or another tool): the long way's set
    # makes the submitted entry permanent; a paid job's entry must not expire later.
    journal = _journal(tmp_path)
    journal.table._cache.set(
        "k", json.dumps(JournalEntry("claimed", OWNER).as_dict()), expire=3600, tag="t"
    )
    journal.record_submission("k", OWNER, "fal-ai/x", {"request_id": "r"})
    with sqlite3.connect(tmp_path / "journal" / "cache.db") as con:
        row = con.execute("SELECT expire_time, tag FROM Cache WHERE key = 'k'").fetchone()
    assert row == (None, None)
    journal.table.close()


def _hold_lock(path: str, held: Event, release: Event) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    held.set()
    release.wait(30)
    con.execute("ROLLBACK")
    con.close()


def test_a_lock_held_by_another_process_is_reported_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # diskcache's calls turned a lock held past the timeout into diskcache.Timeout, which
    # the store reports as "stayed locked by another process"; the one statement raises
    # SQLite's "database is locked", which must read the same.
    monkeypatch.setattr(table_module, "LOCK_TIMEOUT", 0.05)
    table = Table(tmp_path / "t", durable=False)
    table.set("k", {"v": 1})
    context = multiprocessing.get_context("spawn")
    held, release = context.Event(), context.Event()
    holder = context.Process(
        target=_hold_lock, args=(str(tmp_path / "t" / "cache.db"), held, release)
    )
    holder.start()
    try:
        assert held.wait(30)
        for write in (
            lambda: table.set("k", {"v": 2}),
            lambda: table.add("n", {"v": 2}),
            lambda: table.delete("k"),
            lambda: table.patch_if("k", {"v": 3}, {}),
        ):
            with pytest.raises(StoreError, match="stayed locked by another process"):
                write()
    finally:
        release.set()
        holder.join(30)
    assert table.get("k") == {"v": 1}
    table.close()


OTHER = Owner("run-b", 42, "host-b", 1.7e9, 6, "boot")


def _take_over(directory: str, claimed: Event, done: Event, vanish: bool) -> None:
    journal = Journal(Table(Path(directory), durable=True))
    claimed.wait(30)
    stale = journal.get("k")
    assert stale is not None
    if vanish:
        journal.release("k")
    else:
        assert journal.take_over("k", stale, OTHER)
    journal.table.close()
    done.set()


@pytest.mark.parametrize("vanish", [False, True])
def test_another_process_changing_the_entry_is_seen_by_the_one_statement(
    tmp_path: Path, vanish: bool
) -> None:
    # Between our claim and our next write, another process takes the key over (or the
    # entry vanishes): the one statement must not match, and the long way decides as
    # before (a conflict; or, for a vanished entry, the submission recorded anyway).
    journal = _journal(tmp_path)
    assert journal.claim("k", OWNER) is None
    context = multiprocessing.get_context("spawn")
    claimed, done = context.Event(), context.Event()
    other = context.Process(
        target=_take_over, args=(str(tmp_path / "journal"), claimed, done, vanish)
    )
    other.start()
    claimed.set()
    assert done.wait(30)
    other.join(30)
    assert other.exitcode == 0
    if vanish:
        journal.record_submission("k", OWNER, "fal-ai/x", {"request_id": "r"})
        entry = journal.get("k")
        assert entry is not None and entry.state == "submitted" and entry.owner == OWNER
        assert entry.handle == {"request_id": "r"}
    else:
        with pytest.raises(JournalConflict):
            journal.begin_submit("k", OWNER, "fal-ai/x", {"p": 1}, "d")
        with pytest.raises(JournalConflict):
            journal.record_submission("k", OWNER, "fal-ai/x", {"request_id": "r"})
        assert not journal.release("k", OWNER)
        entry = journal.get("k")
        assert entry is not None and entry.owner == OTHER and entry.state == "claimed"
    journal.table.close()


def test_a_read_only_table_refuses_every_write_as_a_store_error(tmp_path: Path) -> None:
    # A read-only table (cache verify, info, review) refused writes with a StoreError;
    # the direct statements asserted instead: a traceback, not a message.
    Table(tmp_path / "t", durable=True).set("k", {"owner": OWNER.as_dict()})
    looking = Journal(Table(tmp_path / "t", durable=True, read_only=True))
    for write in (
        lambda: looking.table.delete("k"),
        lambda: looking.table.delete_if("k", {}),
        lambda: looking.table.patch_if("k", {"v": 1}, {}),
        lambda: looking.release("k", OWNER),
        lambda: looking.record_submission("k", OWNER, "fal-ai/x", {"request_id": "r"}),
    ):
        with pytest.raises(StoreError, match="readonly"):
            write()
    looking.table.close()
