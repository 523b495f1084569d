"""The journal in a shared bucket, through the seam (a directory remote): claims are
create-only, every change a swap on the ETag, release a tombstone, liveness a lease."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from runner.store import JournalConflict, Owner, RemoteStore, StoreError
from runner.store.dir_remote import DirRemote
from runner.store.remote_journal import RemoteJournal, journal_name
from runner.store.remote_store import run_name

KEY = "ab" * 32
LEASE = 30.0


def elsewhere(run_id: str = "far") -> Owner:
    """A run on another machine: only its lease can tell whether it lives."""
    return Owner(run_id, 4242, "another-machine", time.time() - 10)


@pytest.fixture
def bucket(tmp_path: Path) -> RemoteStore:
    return RemoteStore(DirRemote(tmp_path / "bucket"), lease=LEASE)


def journal(bucket: RemoteStore) -> RemoteJournal:
    return bucket.journal


async def test_one_claim_wins_and_the_loser_sees_the_winner(bucket: RemoteStore) -> None:
    me, them = Owner.current("me"), elsewhere()
    results = await asyncio.gather(*(journal(bucket).claim(KEY, o) for o in (me, them) * 4))
    winners = [r for r in results if r is None]
    assert len(winners) == 1
    holder = (await journal(bucket).get(KEY)).owner  # type: ignore[union-attr]
    assert all(r is None or r.owner == holder for r in results)


async def test_a_released_claim_is_a_tombstone_and_can_be_claimed_again(
    bucket: RemoteStore,
) -> None:
    me, them = Owner.current("me"), elsewhere()
    assert await journal(bucket).claim(KEY, me) is None
    assert not await journal(bucket).release(KEY, them)  # only the holder releases
    assert await journal(bucket).release(KEY, me)
    assert await journal(bucket).get(KEY) is None
    assert (bucket.remote.root / journal_name(KEY)).exists()  # type: ignore[attr-defined]
    assert await journal(bucket).claim(KEY, them) is None
    assert (await journal(bucket).get(KEY)).owner == them  # type: ignore[union-attr]


async def test_submitting_and_submitted_are_swaps_only_the_holder_makes(
    bucket: RemoteStore,
) -> None:
    me, them = Owner.current("me"), elsewhere()
    assert await journal(bucket).claim(KEY, me) is None
    with pytest.raises(JournalConflict):
        await journal(bucket).begin_submit(KEY, them, "ep", {"prompt": "x"}, "d1")
    entry = await journal(bucket).begin_submit(KEY, me, "ep", {"prompt": "x"}, "d1")
    assert entry.state == "submitting" and entry.body == {"prompt": "x"}
    await journal(bucket).record_submission(KEY, me, "ep", {"request_id": "r1"})
    found = await journal(bucket).get(KEY)
    assert found is not None and found.state == "submitted"
    assert found.handle == {"request_id": "r1"} and found.body_sha256 == "d1"


async def test_take_over_is_a_compare_and_swap_one_survivor_wins(bucket: RemoteStore) -> None:
    dead = elsewhere("dead")
    assert await journal(bucket).claim(KEY, dead) is None
    stale = await journal(bucket).get(KEY)
    assert stale is not None
    survivors = [Owner.current(f"s{i}") for i in range(6)]
    won = await asyncio.gather(*(journal(bucket).take_over(KEY, stale, s) for s in survivors))
    assert won.count(True) == 1
    holder = await journal(bucket).get(KEY)
    assert holder is not None and holder.owner == survivors[won.index(True)]
    # A holder whose entry was taken from under it finds out before it sends anything.
    with pytest.raises(JournalConflict):
        await journal(bucket).begin_submit(KEY, dead, "ep", {}, "d")


async def test_a_run_elsewhere_lives_by_the_lease_of_its_heartbeat(
    bucket: RemoteStore, tmp_path: Path
) -> None:
    far = elsewhere()
    await bucket.beat(Owner.current("me"))  # learns the server's clock
    assert not await journal(bucket).owner_alive(far)  # no heartbeat, no entry: gone
    await bucket.beat(far)
    bucket._beats.clear()
    assert await journal(bucket).owner_alive(far)
    beat = tmp_path / "bucket" / run_name(far.run_id)
    old = time.time() - LEASE - 5
    os.utime(beat, (old, old))  # its last beat, a lease ago by the server's clock
    bucket._beats.clear()
    assert not await journal(bucket).owner_alive(far)


async def test_a_claim_with_no_heartbeat_yet_lives_for_a_lease(
    bucket: RemoteStore, tmp_path: Path
) -> None:
    far = elsewhere()
    assert await journal(bucket).claim(KEY, far) is None
    await journal(bucket).get(KEY)
    assert await journal(bucket).owner_alive(far)
    old = time.time() - LEASE - 5
    os.utime(tmp_path / "bucket" / journal_name(KEY), (old, old))
    journal(bucket)._written.clear()  # a fresh run, seeing only the old claim
    await journal(bucket).get(KEY)
    assert not await journal(bucket).owner_alive(far)


async def test_the_same_machine_is_judged_by_the_process(bucket: RemoteStore) -> None:
    me = Owner.current("me")
    assert await journal(bucket).owner_alive(me)  # no heartbeat needed: the process lives
    assert not await journal(bucket).owner_alive(replace(me, pid=2**22 + 1))


async def test_an_entry_this_version_cannot_read_stops_the_run(
    bucket: RemoteStore, tmp_path: Path
) -> None:
    path = tmp_path / "bucket" / journal_name(KEY)
    path.parent.mkdir(parents=True)
    path.write_text('{"v": 99, "state": "claimed"}')
    with pytest.raises(StoreError, match="cannot be read"):
        await journal(bucket).claim(KEY, Owner.current("me"))


async def test_a_job_journaled_only_here_is_adopted_unless_another_run_holds_the_key(
    bucket: RemoteStore,
) -> None:
    dead = elsewhere("dead")
    assert await journal(bucket).claim(KEY, dead) is None
    sending = await journal(bucket).begin_submit(KEY, dead, "ep", {"a": 1}, "d")
    submitted = replace(sending, state="submitted", handle={"request_id": "r"})
    assert await journal(bucket).adopt(KEY, submitted)
    assert (await journal(bucket).get(KEY)).state == "submitted"  # type: ignore[union-attr]
    other = "cd" * 32
    assert await journal(bucket).claim(other, Owner.current("live")) is None
    assert not await journal(bucket).adopt(other, replace(submitted, owner=dead))
