"""The journal in a shared bucket: the same entries and states as the local journal
(:mod:`runner.store.journal`), kept as one object per cache key, ``journal/<key>.json``.

Every change is a conditional write, so two machines can never both win::

    claim        put if absent (If-None-Match: *), or swap out a tombstone (If-Match)
    submitting   swap on the ETag we read: our claim -> "submitting" with the exact body
    submitted    swap on the ETag: -> "submitted" with fal's request id
    take over    swap on the ETag of the dead owner's entry, read after its lease ran out
    release      swap on the ETag: -> a tombstone (``state: released``), read as absent

A swap that fails means someone else changed the entry since we read it: we read again
and decide again, never write blind. The POST to fal happens only after "submitting" was
written, so an entry taken from under a slow holder makes that holder's next swap fail
before it sends anything.

Liveness is a lease: each run renews its heartbeat object; a run on another machine is
gone once its heartbeat is older than the lease it announced, by the server's clock (each
object's Last-Modified), so machines with skewed clocks agree. A run on this machine is
judged by its process, as with a local store.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from runner.store.journal import JournalEntry, submitted_entry, submitting_entry
from runner.store.owner import Owner, on_this_machine, process_alive
from runner.store.remote import Remote
from runner.store.rows import SCHEMA, RecordError
from runner.store.table import StoreError

RELEASED = "released"
# Last-Modified has a resolution of one second: a lease is judged with that much slack.
SLACK = 1.0
_SWAPS = 16  # reads and swaps before a key that keeps changing is reported

LastBeat = Callable[[str], Awaitable[tuple[float, float] | None]]


class ServerClock:
    """The server's time, learnt from the Last-Modified of this run's own heartbeat and
    carried forward by the monotonic clock (before any heartbeat: this machine's clock)."""

    def __init__(self) -> None:
        self._seen: tuple[float, float] | None = None

    def observe(self, server_time: float) -> None:
        self._seen = (server_time, time.monotonic())

    def now(self) -> float:
        if self._seen is None:
            return time.time()
        server_time, at = self._seen
        return server_time + (time.monotonic() - at)


def journal_name(key: str) -> str:
    return f"journal/{key}.json"


def _encode(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()


class RemoteJournal:
    """Journal operations on a :class:`Remote`; the same meaning as the local ones."""

    def __init__(self, remote: Remote, clock: ServerClock, last_beat: LastBeat, lease: float):
        self.remote = remote
        self.clock = clock
        self.lease = lease
        self._last_beat = last_beat
        self._written: dict[str, float] = {}  # run id -> newest entry of it seen (server time)

    async def read(self, key: str) -> tuple[JournalEntry | None, str | None]:
        """The entry (None when absent or released) and the ETag of what is there now."""
        found = await self.remote.get(journal_name(key))
        if found is None:
            return None, None
        try:
            data = json.loads(found.data)
            if not isinstance(data, dict):
                raise RecordError("not an object")
            if data.get("state") == RELEASED:
                return None, found.info.etag
            entry = JournalEntry.from_dict(data)
        except (ValueError, RecordError) as exc:
            raise StoreError(
                f"the journal entry {journal_name(key)} in {self.remote.url} cannot be read "
                f"({exc})",
                hint="it may come from another shotgraph version; finish or cancel that run",
            ) from None
        run = entry.owner.run_id
        self._written[run] = max(self._written.get(run, 0.0), found.info.modified)
        return entry, found.info.etag

    async def get(self, key: str) -> JournalEntry | None:
        return (await self.read(key))[0]

    async def _swap(self, key: str, etag: str | None, data: Mapping[str, Any]) -> bool:
        name = journal_name(key)
        if etag is None:
            return await self.remote.put_if_absent(name, _encode(data)) is not None
        return await self.remote.put_if_match(name, _encode(data), etag) is not None

    async def claim(self, key: str, owner: Owner) -> JournalEntry | None:
        """Claim ``key``: None when we now hold it, else the entry someone else holds."""
        for _ in range(_SWAPS):
            entry, etag = await self.read(key)
            if entry is not None:
                return entry
            if await self._swap(key, etag, JournalEntry("claimed", owner).as_dict()):
                return None
        raise _busy(key, self.remote.url)

    async def begin_submit(
        self, key: str, owner: Owner, endpoint: str, body: Mapping[str, Any], digest: str
    ) -> JournalEntry:
        """Our entry becomes "submitting" with the exact body; refused (JournalConflict)
        when another run holds the key. See :meth:`Journal.begin_submit`."""
        for _ in range(_SWAPS):
            current, etag = await self.read(key)
            entry = submitting_entry(key, current, owner, endpoint, body, digest)
            if await self._swap(key, etag, entry.as_dict()):
                return entry
        raise _busy(key, self.remote.url)

    async def record_submission(
        self, key: str, owner: Owner, endpoint: str, handle: Mapping[str, Any]
    ) -> None:
        """Our entry becomes "submitted" with the job's handle (written even if our entry
        vanished: the job exists either way); JournalConflict if another run holds it."""
        for _ in range(_SWAPS):
            current, etag = await self.read(key)
            entry = submitted_entry(key, current, owner, endpoint, handle)
            if await self._swap(key, etag, entry.as_dict()):
                return
        raise _busy(key, self.remote.url)

    async def take_over(self, key: str, stale: JournalEntry, owner: Owner) -> bool:
        """``stale`` (whose owner is gone) becomes ours, if nobody changed it meanwhile."""
        current, etag = await self.read(key)
        if current != stale or etag is None:
            return False
        return await self._swap(key, etag, replace(stale, owner=owner, at=time.time()).as_dict())

    async def release(self, key: str, owner: Owner | None = None) -> bool:
        """Swap the entry for a tombstone (only ``owner``'s, when given)."""
        for _ in range(_SWAPS):
            current, etag = await self.read(key)
            if current is None or etag is None or (owner is not None and current.owner != owner):
                return False
            if await self._swap(key, etag, _tombstone(owner)):
                return True
        raise _busy(key, self.remote.url)

    async def drop_if_unchanged(self, key: str, stale: JournalEntry) -> bool:
        current, etag = await self.read(key)
        if current != stale or etag is None:
            return False
        return await self._swap(key, etag, _tombstone(None))

    async def adopt(self, key: str, entry: JournalEntry) -> bool:
        """Put an entry from a local journal here, if nobody holds the key, or if it is the
        same run's earlier state of the same job (its "submitting" becomes "submitted").
        False when the bucket has another run's entry for the key."""
        for _ in range(_SWAPS):
            current, etag = await self.read(key)
            same_job = (
                current is not None
                and current.owner == entry.owner
                and current.body_sha256 == entry.body_sha256
            )
            if current is not None and not same_job:
                return False
            if current is not None and current.state == "submitted":
                return True
            if await self._swap(key, etag, entry.as_dict()):
                return True
        raise _busy(key, self.remote.url)

    async def owner_alive(self, owner: Owner) -> bool:
        """Whether the run holding an entry may still be going: its process, on this
        machine; elsewhere, its heartbeat within the lease it announced, by the server's
        clock (no heartbeat yet: its newest entry within our lease)."""
        if on_this_machine(owner):
            return process_alive(owner)
        now = self.clock.now()
        beat = await self._last_beat(owner.run_id)
        if beat is not None:
            when, lease = beat
            return now - when < lease + SLACK
        written = self._written.get(owner.run_id)
        return written is not None and now - written < self.lease + SLACK


def _tombstone(owner: Owner | None) -> dict[str, Any]:
    # Unique content: with S3's MD5 ETags, two identical tombstones would share an ETag.
    return {"v": SCHEMA, "state": RELEASED, "at": time.time(), "by": owner.run_id if owner else ""}


def _busy(key: str, url: str) -> StoreError:
    return StoreError(
        f"the journal entry for cache key {key[:12]}… in {url} kept changing under us",
        hint="many runs are contending for it; run again",
    )
