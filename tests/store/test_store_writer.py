"""The store's writer thread commits in groups: one fsync per database for the writes
queued together, and no caller answered before the fsync that makes its write durable."""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from runner.store import Owner, Store, StoreError
from runner.store.journal import body_digest
from runner.store.table import Table
from runner.store.writer import GROUP_WAIT, _Writer, off_loop
from tests.record_helpers import record
from tests.store.writer_helpers import (
    claimed,
    logged_syncs,
    logging_releases,
    staged_download,
    together,
)

BODY = {"prompt": "a lighthouse"}
T = TypeVar("T")


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The group fsyncs, logged by the database each syncs (tests append their own steps)."""
    return logged_syncs(
        monkeypatch, lambda path: "fsync " + os.path.basename(os.path.dirname(path))
    )


async def test_a_submit_is_answered_only_after_its_journal_is_synced(
    store: Store, syncs: list[str]
) -> None:
    log = syncs
    owner = Owner.current("run-1")
    assert await off_loop(store.claim, "k1", owner, sync=False) is None  # as TieredStore
    log.append("claimed")
    await off_loop(store.begin_submit, "k1", owner, "fal-ai/x", BODY, body_digest(BODY))
    log.append("may POST")
    await off_loop(store.record_submission, "k1", owner, "fal-ai/x", {"request_id": "r1"})
    log.append("may wait on the job")
    assert log == [
        "claimed",  # no sync of its own: nothing is sent on a claim alone
        "fsync journal",
        "may POST",
        "fsync journal",
        "may wait on the job",
    ]


async def test_writes_queued_together_share_one_fsync(store: Store, syncs: list[str]) -> None:
    log = syncs
    owner = Owner.current("run-1")
    for i in range(12):
        assert await off_loop(store.claim, f"k{i}", owner, sync=False) is None
    assert log == []
    # Hold the writer busy so that twelve submits queue up behind it.
    entered, gate = threading.Event(), threading.Event()

    def block() -> None:
        entered.set()
        gate.wait()

    started = asyncio.ensure_future(off_loop(block))
    await asyncio.to_thread(entered.wait)  # the writer is in it, its group formed
    digest = body_digest(BODY)
    submits = [
        asyncio.ensure_future(off_loop(store.begin_submit, f"k{i}", owner, "x", BODY, digest))
        for i in range(12)
    ]
    await asyncio.sleep(0)  # one turn of the loop: each submit has queued its write
    assert not any(submit.done() for submit in submits)
    gate.set()
    await started
    entries = await asyncio.gather(*submits)
    assert [entry.state for entry in entries] == ["submitting"] * 12
    assert log == ["fsync journal"]
    assert {key for key, _ in store.in_flight()} == {f"k{i}" for i in range(12)}


async def test_a_write_queued_while_a_group_runs_joins_it(store: Store, syncs: list[str]) -> None:
    log = syncs
    owner = Owner.current("run-1")
    digest = body_digest(BODY)
    for key in ("k1", "k2"):
        assert await off_loop(store.claim, key, owner, sync=False) is None
    entered, gate = threading.Event(), threading.Event()

    def submit_then_block() -> None:
        store.begin_submit("k1", owner, "x", BODY, digest)
        entered.set()
        gate.wait()

    first = asyncio.ensure_future(off_loop(submit_then_block))
    await asyncio.to_thread(entered.wait)  # the group runs, its first write done, unsynced
    assert log == []
    second = asyncio.ensure_future(off_loop(store.begin_submit, "k2", owner, "x", BODY, digest))
    await asyncio.sleep(0)  # one turn of the loop: the second write is queued
    gate.set()
    await first
    assert (await second).state == "submitting"
    assert log == ["fsync journal"]  # one sync for both, and neither answered before it


async def test_a_release_is_written_only_after_its_result_is_synced(
    store: Store, syncs: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A download, its result and the release of the claim go in one trip: the release (an
    # unsynced commit the disk may take before the result's) comes after the result's sync.
    log = syncs
    owner, tiered = await claimed(store)
    logging_releases(monkeypatch, store, log)
    staged, stored = staged_download(store, b"a clip")
    kept = record("k1", stored)
    await tiered.keep_result(staged, kept, owner)
    assert log.index("fsync results") < log.index("release") == len(log) - 1
    assert store.get_result("k1") == kept and store.journal("k1") is None


async def test_no_release_when_the_results_sync_fails(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, tiered = await claimed(store)
    staged, stored = staged_download(store, b"a clip")
    kept = record("k1", stored)

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fdatasync", failing)
    with pytest.raises(StoreError):
        await tiered.keep_result(staged, kept, owner)
    monkeypatch.undo()
    entry = store.journal("k1")  # the claim stays: the next run re-attaches to the job
    assert entry is not None and entry.owner == owner


async def test_a_group_syncs_every_log_it_wrote_before_answering(
    store: Store, syncs: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two logs are synced side by side (one on a thread of its own): both before any
    # answer, and a failure of either fails the whole group.
    log = syncs
    owner = Owner.current("run-1")
    assert await off_loop(store.claim, "k1", owner, sync=False) is None
    kept = record("k0", store.put_file(_clip(store, b"a clip")))
    log.clear()  # the file's own syncs

    async def group() -> None:
        await asyncio.gather(
            off_loop(store.begin_submit, "k1", owner, "x", BODY, body_digest(BODY)),
            off_loop(store.put_result, kept),
        )
        log.append("answered")

    await together(group)
    assert sorted(log[:2]) == ["fsync journal", "fsync results"] and log[2:] == ["answered"]
    fdatasync = os.fdatasync

    def failing_for_results(fd: int) -> None:
        if "results" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.EIO, "I/O error")
        fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", failing_for_results)
    assert await off_loop(store.claim, "k2", owner, sync=False) is None
    outcomes = await together(
        lambda: asyncio.gather(
            off_loop(store.begin_submit, "k2", owner, "x", BODY, body_digest(BODY)),
            off_loop(store.put_result, kept),
            return_exceptions=True,
        )
    )
    assert [type(outcome).__name__ for outcome in outcomes] == ["StoreError", "StoreError"]


def _clip(store: Store, data: bytes) -> Path:
    path = store.tmp_dir() / "clip.bin"
    path.write_bytes(data)
    return path


def test_a_group_waits_for_company_only_when_other_steps_write_often() -> None:
    writer = _Writer()
    writer._gap = GROUP_WAIT / 10  # writes come ten to a wait
    assert writer._patience() is None  # no step under way: nobody to wait for
    with writer.expecting():
        assert writer._patience() is None  # a step alone never waits
        with writer.expecting():
            deadline = writer._patience()
            assert deadline is not None and deadline <= time.monotonic() + GROUP_WAIT
            writer._gap = GROUP_WAIT  # writes a wait apart (fal jobs ending): no waiting
            assert writer._patience() is None
    assert writer._steps == 0


async def test_a_write_after_a_quiet_moment_never_waits_for_company() -> None:
    # A fal run submits its ready nodes at once (a burst: the mean gap falls), then its
    # jobs end seconds apart: a write after such a quiet moment has no company coming, and
    # must not wait for some (it did, 6 to 20 ms, for the next six writes).
    writer = _Writer()
    writer._started = True  # no thread: only its decision is looked at
    loop = asyncio.get_running_loop()
    with writer.expecting(), writer.expecting():
        for _ in range(16):
            writer.submit(lambda: None, loop.create_future(), sync=True)
        assert writer._patience() is not None  # in the burst, company is coming
        writer._last -= 1.0  # then a second without a write: fal's jobs under way
        writer.submit(lambda: None, loop.create_future(), sync=True)
        assert writer._patience() is None


async def test_a_failed_write_fails_alone(store: Store) -> None:
    owner, other = Owner.current("run-1"), Owner.current("run-2")
    assert await off_loop(store.claim, "taken", other) is None
    results = await asyncio.gather(
        off_loop(store.claim, "mine", owner),
        off_loop(store.begin_submit, "taken", owner, "fal-ai/x", BODY, body_digest(BODY)),
        off_loop(store.claim, "also-mine", owner),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None
    assert type(results[1]).__name__ == "JournalConflict"
    assert store.journal("mine") is not None and store.journal("also-mine") is not None


def test_a_kill_right_after_the_submit_is_journaled_finds_the_entry(tmp_path: Path) -> None:
    # The process dies the moment begin_submit is answered (where the POST would go): the
    # next process finds the "submitting" entry with its body, as the journal promises.
    script = f"""
import asyncio, os, signal, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from runner.store import Owner, Store, StoredFile, StoreError, TieredStore
from runner.store.journal import body_digest
from runner.store.writer import GROUP_WAIT, _Writer, off_loop

async def main() -> None:
    store = Store.open(__import__("pathlib").Path({str(tmp_path / "store")!r}))
    owner = Owner.current("victim")
    body = {BODY!r}
    await off_loop(store.claim, "k1", owner)
    await off_loop(store.begin_submit, "k1", owner, "fal-ai/x", body, body_digest(body))
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert done.returncode == -9, done.stderr
    with Store.open(tmp_path / "store") as after:
        entry = after.journal("k1")
    assert entry is not None and entry.state == "submitting"
    assert entry.body == BODY and entry.body_sha256 == body_digest(BODY)


async def test_a_release_whose_commit_fails_is_answered_and_the_writer_goes_on(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The release (``then``) is committed at the end of its own group: a commit that fails
    # there (a full disk) must reach its caller, not end the writer thread (every later
    # write, and this one, would then wait for ever).
    owner, tiered = await claimed(store)
    release, begin = store.release, Table._begin

    def failing_commit(table: Table) -> Callable[[bool], None]:
        end = begin(table)

        def fail(commit: bool) -> None:
            end(False)
            if commit:
                raise StoreError("simulated: the release's commit cannot be written")

        return fail

    def release_on_a_full_disk(key: str, holder: Owner | None = None) -> bool:
        monkeypatch.setattr(Table, "_begin", failing_commit)
        return release(key, holder)

    monkeypatch.setattr(store, "release", release_on_a_full_disk)
    staged, stored = staged_download(store, b"a clip")
    kept = record("k1", stored)
    keeping = asyncio.ensure_future(tiered.keep_result(staged, kept, owner))
    await asyncio.wait([keeping], timeout=10)
    assert keeping.done(), "the writer never answered"
    with pytest.raises(StoreError):
        keeping.result()
    monkeypatch.undo()
    assert store.get_result("k1") == kept  # the result is durable; the claim stays
    entry = store.journal("k1")
    assert entry is not None and entry.owner == owner
    assert await off_loop(store.release, "k1", owner, sync=False)  # the writer goes on
