"""Looking after a shared store, through the seam (a directory remote): gc keeps what a
lockfile names and anything within the grace period, never a live claim or a job at fal
without a result; verify finds damaged and missing files, and --repair removes them."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.store import Owner, RemoteStore, Store, TieredStore
from runner.store.dir_remote import DirRemote
from runner.store.remote_journal import journal_name
from runner.store.remote_maintenance import gc_remote, remote_info, verify_remote
from runner.store.remote_store import file_name, result_name
from tests.store.test_tiered import KEYS, render

HOUR = 3600.0


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[TieredStore]:
    with Store.open(tmp_path / "local") as local:
        yield TieredStore(local, RemoteStore(DirRemote(tmp_path / "bucket"), lease=30.0))


def age(bucket: Path, name: str, seconds: float = 2 * HOUR) -> None:
    """Make an object look ``seconds`` old, by the server's clock (its Last-Modified)."""
    when = time.time() - seconds
    os.utime(bucket / name, (when, when))


def far_away(run_id: str) -> Owner:
    return Owner(run_id, 4242, "another-machine", time.time() - 10)


async def test_gc_keeps_what_lockfiles_name_and_what_is_recent(
    machine: TieredStore, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    records = [render(machine, key, f"clip {i}".encode()) for i, key in enumerate(KEYS[:4])]
    for record in records:
        await machine.put_result(record)
    for record in records[:3]:  # the fourth was rendered a minute ago: a run may need it
        age(bucket, result_name(record.key))
        age(bucket, file_name(record.output.sha256))
    remote = machine.remote
    assert remote is not None
    dry = await gc_remote(remote, {KEYS[0]}, dry_run=True)
    assert (dry.results_removed, dry.files_removed) == (2, 2)
    assert (bucket / result_name(KEYS[1])).exists()  # a dry run removes nothing
    done = await gc_remote(remote, {KEYS[0]})
    assert (done.results_removed, done.results_kept, done.files_removed) == (2, 2, 2)
    for i, record in enumerate(records):
        kept = i in (0, 3)
        assert (bucket / result_name(record.key)).exists() == kept
        assert (bucket / file_name(record.output.sha256)).exists() == kept
    info = await remote_info(remote)
    assert (info.results, info.files) == (2, 2)


async def test_gc_never_drops_a_live_claim_or_a_job_without_a_result(
    machine: TieredStore, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    remote = machine.remote
    assert remote is not None
    alive, dead, paid = far_away("alive"), far_away("dead"), far_away("paid")
    await remote.beat(Owner.current("me"))  # learns the server's clock
    await remote.beat(alive)
    for key, owner in ((KEYS[0], alive), (KEYS[1], dead), (KEYS[2], paid)):
        assert await remote.journal.claim(key, owner) is None
    await remote.journal.begin_submit(KEYS[2], paid, "ep", {"prompt": "x"}, "d")
    await remote.journal.record_submission(KEYS[2], paid, "ep", {"request_id": "r"})
    for key in KEYS[:3]:
        age(bucket, journal_name(key), 2 * HOUR)
    report = await gc_remote(remote, set(), grace=HOUR)
    assert (report.journal_removed, report.journal_kept) == (1, 2)
    assert (await remote.journal.get(KEYS[0])) is not None  # its run still beats
    assert (await remote.journal.get(KEYS[1])) is None  # a dead run's bare claim
    assert (await remote.journal.get(KEYS[2])) is not None  # money at fal, no result yet


async def test_gc_removes_an_old_tombstone_and_keeps_a_recent_one(
    machine: TieredStore, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    remote = machine.remote
    assert remote is not None
    me = Owner.current("me")
    for key in KEYS[:2]:
        assert await remote.journal.claim(key, me) is None
        assert await remote.journal.release(key, me)
    age(bucket, journal_name(KEYS[0]), 2 * HOUR)
    dry = await gc_remote(remote, set(), dry_run=True, grace=HOUR)
    assert (dry.journal_removed, dry.journal_kept) == (1, 0)
    assert (bucket / journal_name(KEYS[0])).exists()
    report = await gc_remote(remote, set(), grace=HOUR)
    assert (report.journal_removed, report.journal_kept) == (1, 0)
    assert not (bucket / journal_name(KEYS[0])).exists()
    assert (bucket / journal_name(KEYS[1])).exists()  # within the grace: kept


async def test_verify_finds_damage_and_repair_removes_it(
    machine: TieredStore, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    remote = machine.remote
    assert remote is not None
    records = [render(machine, key, f"clip {i}".encode()) for i, key in enumerate(KEYS[:3])]
    for record in records:
        await machine.put_result(record)
    (bucket / file_name(records[0].output.sha256)).write_bytes(b"tampered")
    (bucket / file_name(records[1].output.sha256)).unlink()
    staging = tmp_path / "staging"
    staging.mkdir()
    report = await verify_remote(remote, staging)
    assert not report.ok
    assert report.corrupt == [records[0].output.sha256]
    assert sorted(report.missing) == sorted(r.key for r in records[:2])
    assert report.files_checked == 2
    repaired = await verify_remote(remote, staging, repair=True)
    assert repaired.ok and (repaired.files_removed, repaired.records_removed) == (1, 2)
    again = await verify_remote(remote, staging)
    assert again.clean and again.files_checked == 1
    assert list(staging.iterdir()) == []
