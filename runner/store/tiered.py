"""The store a run talks to: the local store, alone or as the near cache of a remote one.

Without a remote this is the local store with async manners: journal writes go to the
writer thread, reads stay where they are (SQLite reads take microseconds). With a remote
(:class:`~runner.store.remote_store.RemoteStore`):

- results are looked up locally first, then in the bucket, many at once; what the bucket
  has is kept locally, its files fetched only when something needs them (an output to
  deliver, an input of a step that runs), each one verified by hash on the way in;
- a result recorded here goes to the bucket too, its file before its record, before the
  claim on it is released, so whoever waits on the claim finds it;
- local results the bucket lacks (rendered before the remote was set up, or while it was
  unreachable) are published on the next run;
- the journal is the bucket's: claims and submissions are conditional writes there, and
  liveness is the lease of :mod:`runner.store.remote_journal`.

What is known to be in the bucket is remembered locally (``Store.is_shared``), so a run
with everything cached makes no request at all.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from runner.store.journal import JournalEntry
from runner.store.owner import Owner
from runner.store.remote import RemoteError, each
from runner.store.remote_store import Damaged, RemoteStore
from runner.store.rows import ResultRecord, UploadRecord
from runner.store.store import UPLOAD_MARGIN, Store
from runner.store.writer import off_loop, settled

T = TypeVar("T")
# Requests in flight at once to the bucket: a cold cache of a thousand nodes is a few
# seconds of round trips at this width, never a thousand in a row.
WIDTH = 32


@dataclass(frozen=True, slots=True)
class Look:
    """What :meth:`TieredStore.first_look` found: the key's ``result``; or the ``entry``
    someone holds; or nothing, ``claimed`` by us (False: another run claimed it first)."""

    result: ResultRecord | None = None
    entry: JournalEntry | None = None
    claimed: bool = False


class TieredStore:
    """``local``, and ``remote`` behind it when the project shares a store."""

    def __init__(self, local: Store, remote: RemoteStore | None = None) -> None:
        self.local = local
        self.remote = remote
        self.warn: Callable[[str], None] = lambda message: None

    @property
    def url(self) -> str | None:
        return None if self.remote is None else self.remote.url

    # -- results -----------------------------------------------------------------------

    def known_result(self, key: str, backend: str) -> ResultRecord | None:
        """A result this machine knows, without asking the remote: its file is here, or the
        remote is known to have it."""
        return self._known(key, backend)[0]

    def _known(self, key: str, backend: str) -> tuple[ResultRecord | None, bool]:
        """:meth:`known_result`, and whether the remote is known to have it (one lookup)."""
        record = self.local.get_result(key, check_file=False)
        if record is None or not record.serves(backend):
            return None, False
        shared = self.remote is not None and self.local.is_shared(self.remote.url, key)
        if shared or self.local.has_file(record.output.sha256, record.output.size):
            return record, shared
        return None, False

    async def find_results(
        self, keys: Iterable[str], backend: str
    ) -> tuple[dict[str, ResultRecord], list[ResultRecord]]:
        """The results of ``keys`` (here, or in the bucket: asked many at once), and the
        ones found here that the bucket does not have yet (to publish)."""
        # Thousands of SQLite reads: in a thread, off the loop.
        found, unshared, missing = await asyncio.to_thread(self._known_results, keys, backend)
        if self.remote is None or not missing:
            return found, unshared
        remote = self.remote
        await remote.open()
        fetched = await self.each(missing, remote.get_result)
        usable = [r for r in fetched if r is not None and r.serves(backend)]
        if usable:
            await off_loop(self.local.cache_results, remote.url, usable)
        found.update((record.key, record) for record in usable)
        return found, unshared

    def _known_results(
        self, keys: Iterable[str], backend: str
    ) -> tuple[dict[str, ResultRecord], list[ResultRecord], list[str]]:
        """The results known here, those of them the bucket lacks, and the keys unknown."""
        found: dict[str, ResultRecord] = {}
        unshared: list[ResultRecord] = []
        missing: list[str] = []
        for key in dict.fromkeys(keys):
            record, shared = self._known(key, backend)
            if record is None:
                missing.append(key)
                continue
            found[key] = record
            if self.remote is not None and not shared:
                unshared.append(record)
        return found, unshared, missing

    async def result_for(self, key: str, backend: str) -> ResultRecord | None:
        """The result of ``key`` with its file here (fetched if need be), or None."""
        record = await asyncio.to_thread(self.known_result, key, backend)
        if record is None and self.remote is not None:
            fetched = await self.remote.get_result(key)
            if fetched is not None and fetched.serves(backend):
                await off_loop(self.local.cache_results, self.remote.url, [fetched])
                record = fetched
        if record is None:
            return None
        unavailable = await self.fetch_files([record])
        return None if unavailable else record

    async def fetch_files(self, records: Iterable[ResultRecord]) -> set[str]:
        """Bring the files of ``records`` here from the bucket (verified); the keys of the
        records whose file could not be had. Their records are dropped (here and there),
        with a warning, so that what needed them renders again."""
        wanted = {
            r.key: r for r in records if not self.local.has_file(r.output.sha256, r.output.size)
        }
        if not wanted:
            return set()
        fetched = await self.each(list(wanted.values()), self._fetch_file)
        return {record.key for record, ok in zip(wanted.values(), fetched, strict=True) if not ok}

    async def _fetch_file(self, record: ResultRecord) -> bool:
        remote = self.remote
        problem = f"the output of '{record.node}' is not in this store"
        if remote is not None:
            staging = self.local.tmp_dir() / f"fetch.{uuid.uuid4().hex}.part"
            try:
                path = await remote.fetch_file(record.output, staging)
            except Damaged as damaged:
                problem = damaged.message
            else:
                if path is not None:
                    await asyncio.to_thread(self.local.adopt_file, path, record.output)
                    return True
                problem = f"the output of '{record.node}' is missing from {remote.url}"
            await remote.delete_result(record.key)
        self.warn(f"{problem}; '{record.node}' is made again")
        await off_loop(self.local.delete_result, record.key)
        return False

    async def put_result(self, record: ResultRecord) -> None:
        """Record a result here, then in the bucket: its file first, then its record."""
        await off_loop(self.local.put_result, record)
        await self.publish([record])

    async def keep_result(self, staging: Path, record: ResultRecord, owner: Owner) -> None:
        """Store the download ``staging`` (hashed and fsynced by its writer) as ``record``'s
        output, record the result, then release ``owner``'s claim on its key. Locally one
        trip to the writer thread: the release is written only once the result is durable
        (off_loop's ``then``), so a power cut loses both or the release alone, and the
        journal entry left re-attaches to the job. With a bucket, the result goes there
        too before the release (whoever waits on the claim finds it)."""
        release = functools.partial(self.local.release, record.key, owner)
        if self.remote is None:
            await off_loop(self.local.adopt_result, staging, record, then=release)
            return
        await asyncio.to_thread(self.local.adopt_file, staging, record.output)
        await self.put_result(record)
        await self.release(record.key, owner)

    async def publish(self, records: list[ResultRecord]) -> None:
        """Put results recorded here (and their files) into the bucket, if there is one."""
        remote = self.remote
        if remote is None or not records:
            return
        await remote.open()

        async def one(record: ResultRecord) -> None:
            path = self.local.file_path(record.output.sha256)
            await remote.put_file(path, record.output)
            await remote.put_result(record)

        await self.each(records, one)
        await off_loop(self.local.mark_shared, remote.url, [r.key for r in records])

    async def each(self, items: list[Any], call: Callable[[Any], Awaitable[T]]) -> list[T]:
        """``call`` on every item, ``WIDTH`` at a time; the results in order."""
        return await each(items, call, WIDTH)

    # -- uploads -----------------------------------------------------------------------

    async def get_upload(
        self, backend: str, sha256: str, *, margin: float = UPLOAD_MARGIN
    ) -> UploadRecord | None:
        """Where ``backend`` has this content already: known here, or in the bucket."""
        known = await asyncio.to_thread(self.local.get_upload, backend, sha256, margin=margin)
        if known is not None or self.remote is None:
            return known
        shared = await self.remote.get_upload(backend, sha256)
        if shared is None or not shared.usable(time.time(), margin):
            return None
        await off_loop(self.local.put_upload, shared)
        return shared

    async def put_upload(self, record: UploadRecord, *, share: bool = True) -> None:
        """Remember an upload; in the bucket too when ``share`` (a URL other machines can
        fetch from)."""
        await off_loop(self.local.put_upload, record)
        if share and self.remote is not None:
            await self.remote.put_upload(record)

    async def forget_upload(self, backend: str, sha256: str, url: str) -> bool:
        forgotten = await off_loop(self.local.forget_upload, backend, sha256, url)
        if self.remote is not None:
            shared = await self.remote.get_upload(backend, sha256)
            if shared is not None and shared.url == url:
                await self.remote.delete_upload(backend, sha256)
        return forgotten

    # -- the journal -------------------------------------------------------------------

    async def first_look(self, key: str, backend: str, owner: Owner) -> Look:
        """A step's look at its key: its result; else the journal entry someone holds;
        else a claim of ours. A local store answers in one trip to the writer thread (the
        claim needs it anyway), not four."""
        if self.remote is None:
            return await off_loop(self._first_look_here, key, backend, owner, sync=False)
        done = await self.result_for(key, backend)
        if done is not None:
            return Look(result=done)
        entry = await self.journal(key)
        if entry is not None:
            return Look(entry=entry)
        if await self.claim(key, owner) is not None:
            return Look()  # another run claimed it a moment ago
        done = await self.result_for(key, backend)  # finished and released meanwhile?
        if done is not None:
            await self.release(key, owner)
            return Look(result=done)
        return Look(claimed=True)

    def _first_look_here(self, key: str, backend: str, owner: Owner) -> Look:
        local = self.local
        done = self.known_result(key, backend)
        if done is not None:
            return Look(result=done)
        entry = local.journal(key)
        if entry is not None:
            return Look(entry=entry)
        if local.claim(key, owner) is not None:
            return Look()
        done = self.known_result(key, backend)
        if done is not None:
            local.release(key, owner)
            return Look(result=done)
        return Look(claimed=True)

    async def journal(self, key: str) -> JournalEntry | None:
        if self.remote is None:
            return await asyncio.to_thread(self.local.journal, key)
        return await self.remote.journal.get(key)

    async def claim(self, key: str, owner: Owner) -> JournalEntry | None:
        if self.remote is None:
            # No fsync of its own: lost in a power cut, it held nothing yet (nothing is
            # sent before begin_submit, whose sync takes this commit to disk too).
            return await off_loop(self.local.claim, key, owner, sync=False)
        await self.remote.open()
        return await settled(self.remote.journal.claim(key, owner))

    async def begin_submit(
        self, key: str, owner: Owner, endpoint: str, body: Mapping[str, Any], digest: str
    ) -> JournalEntry:
        if self.remote is None:
            return await off_loop(self.local.begin_submit, key, owner, endpoint, body, digest)
        return await settled(self.remote.journal.begin_submit(key, owner, endpoint, body, digest))

    async def record_submission(
        self, key: str, owner: Owner, endpoint: str, handle: Mapping[str, Any]
    ) -> None:
        if self.remote is None:
            # On the writer thread: the commit fsyncs (tens of ms on a busy disk) and the
            # loop meanwhile reads the other jobs' answers. See runner.run.submission.
            await off_loop(self.local.record_submission, key, owner, endpoint, handle)
            return
        try:
            await settled(self.remote.journal.record_submission(key, owner, endpoint, handle))
        except RemoteError:
            # fal has the job and the bucket cannot say so: keep it here, so that the next
            # run on this machine puts it there before anything else (move_local_journal).
            await off_loop(self.local.record_submission, key, owner, endpoint, handle)
            raise

    async def move_local_journal(self) -> int:
        """Put the bucket in charge of the jobs only the local journal knows (a run that
        lost the bucket after fal accepted them, or one from before the bucket was set
        up), so runs sharing the bucket re-attach to them instead of paying again. Entries
        of live local runs stay; a bare claim of a dead one is dropped (nothing was sent).
        How many were moved."""
        if self.remote is None:
            return 0
        moved = 0
        for key, entry in self.local.in_flight():
            if self.local.owner_alive(entry.owner):
                continue
            if entry.state != "claimed":
                if not await self.remote.journal.adopt(key, entry):
                    self.warn(
                        f"the job for cache key {key[:12]}… is journaled both here and in "
                        f"{self.remote.url}; the bucket's entry wins"
                    )
                moved += 1
            await off_loop(self.local.drop_stale_entry, key, entry)
        return moved

    async def take_over(self, key: str, stale: JournalEntry, owner: Owner) -> bool:
        if self.remote is None:
            return await off_loop(self.local.take_over, key, stale, owner)
        return await settled(self.remote.journal.take_over(key, stale, owner))

    async def release(self, key: str, owner: Owner | None = None) -> bool:
        if self.remote is None:
            # No fsync of its own: the result it follows is durable, and an entry that
            # outlives a power cut is re-attached to and finds that result.
            return await off_loop(self.local.release, key, owner, sync=False)
        return await settled(self.remote.journal.release(key, owner))

    async def owner_alive(self, owner: Owner) -> bool:
        if self.remote is None:
            return await asyncio.to_thread(self.local.owner_alive, owner)
        return await self.remote.journal.owner_alive(owner)

    @property
    def beat_interval(self) -> float | None:
        """How often a run renews its lease in the bucket (None: local heartbeats)."""
        return None if self.remote is None else self.remote.beat_interval

    async def beat(self, owner: Owner) -> None:
        if self.remote is None:
            await off_loop(self.local.beat, owner)
            return
        await self.remote.open()
        await self.remote.beat(owner)

    async def end_run(self, owner: Owner) -> None:
        await off_loop(self.local.end_run, owner)
        if self.remote is not None:
            await self.remote.end_run(owner)

    async def close(self) -> None:
        if self.remote is not None:
            await self.remote.remote.close()
