"""The store: content-addressed files, result and upload records, the job journal.

Layout under the root (e.g. ``<project>/.shotgraph``)::

    store.json          format marker
    reserve             a little space kept free for the journal when the disk fills up
    files/ab/ab…        content-addressed files, read-only
    tmp/run-…/          staging on the same filesystem (downloads, renders, puts), one
                        directory per process, locked while it lives (see ``staging``)
    records/results     cache key -> ResultRecord            (durable)
    records/journal     cache key -> JournalEntry            (durable)
    records/uploads     backend/sha256 -> UploadRecord
    records/hashes      resolved path -> (stat, sha256)
    records/runs        run id -> last heartbeat of a run in progress
    records/shared      remote store URL + cache key -> the remote has that result (and
                        its file): the local store is that remote's near cache

Each ``records/*`` is a diskcache (SQLite, WAL) database, so every operation costs the same
however large the store grows and several processes may share it. Ordering is what keeps it
consistent after a crash: a file lands (atomically) before any record names it.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any

from runner.errors import ShotgraphError
from runner.store.blobs import BlobStore
from runner.store.hashcache import HashCache
from runner.store.journal import Journal, JournalEntry
from runner.store.location import MARKER, check_marker, ensure_layout
from runner.store.owner import Owner, owner_alive
from runner.store.reserve import RESERVE_NAME, Reserve
from runner.store.rows import ResultRecord, StoredFile, UploadRecord, read_row, serves
from runner.store.table import StoreError, Table

# An upload URL must outlive the job that reads it; a job can wait in fal's queue a while.
UPLOAD_MARGIN = 3600.0
# gc spares anything younger than this: another run may be between writing a file and the
# record that names it, or between recording results and writing its lockfile.
GC_GRACE = 3600.0

# A result row exactly as ``put_result`` writes it (``ResultRecord.as_dict``, compact JSON),
# with an ``extra`` of plain values: every text this matches, ``ResultRecord.from_dict``
# reads. A plan tells such rows by their text (``usable_results``); any other row (another
# layout, a damaged one) is read whole. Groups: endpoint, backend, output hash and size.
_S = r'"[^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*"'
_N = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"
_I = r"-?(?:0|[1-9][0-9]*)"
_PLAIN = rf"(?:{_S}|{_N}|true|false|null)"
_RESULT_TEXT = (
    rf'\{{"v":1,"key":{_S},"node":{_S},"kind":{_S},"endpoint":({_S}|null),'
    rf'"backend":"([a-z0-9_-]*)","request_id":(?:{_S}|null),"seed":(?:{_I}|null),'
    rf'"output":\{{"sha256":"([0-9a-f]{{64}})","size":(0|[1-9][0-9]*)\}},"content_type":{_S},'
    rf'"cost_usd":(?:{_N}|null),"result_url":(?:{_S}|null),"recorded_at":{_N},'
    rf'"extra":\{{(?:{_S}:{_PLAIN}(?:,{_S}:{_PLAIN})*)?\}}\}}'
)


@cache
def _result_text() -> re.Pattern[str]:
    """:data:`_RESULT_TEXT`, compiled on first use (4 ms: not in every command's start)."""
    return re.compile(_RESULT_TEXT)


class Store:
    """A shotgraph store at ``root``; open with :meth:`open`, close with :meth:`close`."""

    def __init__(self, root: Path, *, read_only: bool = False) -> None:
        self.root = root
        self.read_only = read_only
        self.files = BlobStore(root / "files", root / "tmp")
        self.reserve = Reserve(root / RESERVE_NAME)
        records = root / "records"
        opened: list[Table] = []

        def table(name: str, durable: bool) -> Table:
            opened.append(Table(records / name, durable=durable, read_only=read_only))
            return opened[-1]

        try:
            self._results = table("results", True)
            self._journal = Journal(table("journal", True))
            self._uploads = table("uploads", False)
            self._hashes = HashCache(table("hashes", False))
            self._runs = table("runs", False)
            self._shared = table("shared", False)
        except BaseException:
            for done in opened:
                done.close()
            raise

    @classmethod
    def open(cls, root: Path, *, read_only: bool = False) -> Store:
        """Open the store at ``root``, creating it if needed; ``read_only`` opens an existing
        one without writing anything (it works on a full disk), for looking only."""
        if read_only:
            check_marker(root / MARKER)
        else:
            ensure_layout(root)
        return cls(root, read_only=read_only)

    def close(self) -> None:
        tables = (
            self._results,
            self._journal.table,
            self._uploads,
            self._hashes.table,
            self._runs,
            self._shared,
        )
        for table in tables:
            table.close()
        self.files.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- files ---------------------------------------------------------------------------

    def tmp_dir(self) -> Path:
        """Staging for files that will be put with ``move=True`` (same filesystem): this
        process's own directory, removed when the store is closed, or by the next run or gc
        if the process dies (see ``FileStore.staging``)."""
        return self.files.staging()

    def sweep_staging(self, *, dry_run: bool = False) -> int:
        """Remove what dead processes left in staging (never a live one's); the count of
        their directories."""
        return self.files.sweep_dead_staging(dry_run=dry_run)

    def put_file(
        self, src: Path, *, move: bool = False, expected_sha256: str | None = None
    ) -> StoredFile:
        """Store ``src`` by content (atomic, idempotent). ``move`` consumes ``src`` (left in
        place if the hash does not match ``expected_sha256``, which raises StoreError)."""
        return self.files.put(src, move=move, expected_sha256=expected_sha256)

    def adopt_file(self, src: Path, stored: StoredFile) -> StoredFile:
        """Store ``src``, already hashed as ``stored`` and fsynced by its writer, by renaming
        it (no second read of a large download)."""
        return self.files.adopt(src, stored)

    def file_path(self, sha256: str) -> Path:
        return self.files.path(sha256)

    def has_file(self, sha256: str, size: int | None = None) -> bool:
        """Whether the file is present (and of ``size``): one stat, no hashing."""
        return self.files.has(sha256, size)

    def verify_file(self, sha256: str) -> bool:
        """Rehash the stored file: True when present and intact."""
        return self.files.verify(sha256)

    def hash_file(self, path: Path) -> StoredFile:
        """SHA-256 and size of any file, remembered by its stat (see ``hashcache``)."""
        return self._hashes.hash_file(path)

    def known_hash(self, path: Path) -> StoredFile | None:
        """The hash :meth:`hash_file` remembers of ``path`` as it is now, if any (a read:
        a read-only store answers it; nothing is hashed)."""
        return self._hashes.known(path)

    # -- results -------------------------------------------------------------------------

    def get_result(self, key: str, *, check_file: bool = True) -> ResultRecord | None:
        """The result under ``key``; None when absent, unreadable, or (``check_file``) when
        its file is gone from ``files/``."""
        record = read_row(ResultRecord, self._results.get(key))
        if record is None:
            return None
        if check_file and not self.files.has(record.output.sha256, record.output.size):
            return None
        return record

    def result_for(self, key: str, backend: str) -> ResultRecord | None:
        """The result under ``key`` if a run on ``backend`` may use it (see ``serves``)."""
        record = self.get_result(key)
        return record if record is not None and record.serves(backend) else None

    def results_for(self, keys: Iterable[str], backend: str) -> dict[str, ResultRecord]:
        """:meth:`result_for` of many keys in one query: those a run on ``backend`` may use."""
        found: dict[str, ResultRecord] = {}
        for key, data in self._results.get_many(keys).items():
            record = read_row(ResultRecord, data)
            if record is None:
                continue
            output = record.output
            if record.serves(backend) and self.files.has(output.sha256, output.size):
                found[key] = record
        return found

    def usable_results(self, keys: Iterable[str], backend: str) -> set[str]:
        """The keys of :meth:`results_for`, without building their records: a row as
        ``put_result`` writes it is told by its text; any other is read whole. Each
        result's file is still looked for."""
        found: set[str] = set()
        unsure: list[str] = []
        present: dict[tuple[str, int], bool] = {}  # one stat per file, not per key
        pattern = _result_text()
        for key, text in self._results.texts_of(keys).items():
            plain = pattern.fullmatch(text)
            if plain is None:
                unsure.append(key)
                continue
            endpoint, made_on, sha256, size = plain.groups()
            if serves(None if endpoint == "null" else endpoint, made_on, backend):
                file = (sha256, int(size))
                if file not in present:
                    present[file] = self.files.has(*file)
                if present[file]:
                    found.add(key)
        return found | set(self.results_for(unsure, backend)) if unsure else found

    def put_result(self, record: ResultRecord) -> None:
        """Record a result (durable on return). Its output file must already be stored."""
        if not self.files.has(record.output.sha256, record.output.size):
            raise StoreError(
                f"cannot record {record.node}: its output {record.output.sha256} "
                f"({record.output.size} bytes) is not in the store",
                hint="put_file the output before put_result",
            )
        self._results.set(record.key, record.as_dict())

    def adopt_result(self, src: Path, record: ResultRecord) -> None:
        """Store ``src`` as ``record``'s output (:meth:`adopt_file`), then record it
        (:meth:`put_result`): a download and its result in one trip to the writer."""
        self.adopt_file(src, record.output)
        self.put_result(record)

    def delete_result(self, key: str) -> bool:
        return self._results.delete(key)

    def cache_results(self, remote: str, records: list[ResultRecord]) -> None:
        """Keep records read from the ``remote`` store (whose files may stay there until
        needed), in one transaction: they are durable in the remote already."""
        with self._results.transact():
            for record in records:
                self._results.set(record.key, record.as_dict())
        self.mark_shared(remote, [record.key for record in records])

    def mark_shared(self, remote: str, keys: list[str]) -> None:
        """Remember that the ``remote`` store has the results (and files) of ``keys``."""
        with self._shared.transact():
            for key in keys:
                self._shared.set(_shared_key(remote, key), {"v": 1})

    def is_shared(self, remote: str, key: str) -> bool:
        return _shared_key(remote, key) in self._shared

    def shared_keys(self) -> set[str]:
        """The keys whose results some remote store has (their files may live only there)."""
        return {name.rpartition("\n")[2] for name in self._shared}

    def results(self) -> Iterator[tuple[str, ResultRecord | None]]:
        """Every result key with its record (None when unreadable)."""
        for key in self._results:
            yield key, read_row(ResultRecord, self._results.get(key))

    # -- uploads -------------------------------------------------------------------------

    def get_upload(
        self, backend: str, sha256: str, *, margin: float = UPLOAD_MARGIN
    ) -> UploadRecord | None:
        """Where ``backend`` already has this content; None if unknown or expiring within
        ``margin`` seconds."""
        record = read_row(UploadRecord, self._uploads.get(_upload_key(backend, sha256)))
        return record if record is not None and record.usable(time.time(), margin) else None

    def put_upload(self, record: UploadRecord) -> None:
        self.files.path(record.sha256)  # checks it is a hash
        self._uploads.set(_upload_key(record.backend, record.sha256), record.as_dict())

    def uploads(self) -> Iterator[tuple[str, UploadRecord | None]]:
        for key in self._uploads:
            yield key, read_row(UploadRecord, self._uploads.get(key))

    def delete_upload(self, key: str) -> bool:
        return self._uploads.delete(key)

    def forget_uploads(self, backend: str) -> int:
        """Drop every upload record of ``backend`` (its files are gone); how many."""
        prefix = _upload_key(backend, "")
        return sum(
            self._uploads.delete(key) for key in list(self._uploads) if key.startswith(prefix)
        )

    def forget_upload(self, backend: str, sha256: str, url: str) -> bool:
        """Drop the upload record of this content if it still names ``url`` (a URL fal
        could not download from); True when one was dropped. A record another step has
        renewed meanwhile is kept."""
        key = _upload_key(backend, sha256)
        with self._uploads.transact():
            data = self._uploads.get(key)
            if data is None or data.get("url") != url:
                return False
            return self._uploads.delete(key)

    # -- journal -------------------------------------------------------------------------

    def claim(self, key: str, owner: Owner) -> JournalEntry | None:
        """Atomically claim ``key``: None when we hold it now, else the existing entry.

        After a successful claim, look for a result again: another run may have recorded it
        and released the key between our miss and our claim.
        """
        return self._journal.claim(key, owner)

    def begin_submit(
        self, key: str, owner: Owner, endpoint: str, body: Mapping[str, Any], digest: str
    ) -> JournalEntry:
        """Journal that ``body`` is about to be POSTed (durable on return); see
        :meth:`Journal.begin_submit`. Raises JournalConflict if another run holds the key."""
        return self._journal.begin_submit(key, owner, endpoint, body, digest)

    def record_submission(
        self, key: str, owner: Owner, endpoint: str, handle: Mapping[str, Any]
    ) -> None:
        """Our claim becomes a submitted job with ``handle`` (``JobHandle.as_dict()``);
        durable on return. Raises JournalConflict if another run took the key over."""
        self._journal.record_submission(key, owner, endpoint, handle)

    def journal(self, key: str) -> JournalEntry | None:
        return self._journal.get(key)

    def take_over(self, key: str, stale: JournalEntry, owner: Owner) -> bool:
        """Compare-and-swap: ``stale``'s entry, now ours, if nobody changed it meanwhile."""
        return self._journal.take_over(key, stale, owner)

    def release(self, key: str, owner: Owner | None = None) -> bool:
        """Drop the entry (only ``owner``'s, when given); True when one was dropped."""
        return self._journal.release(key, owner)

    def beat(self, owner: Owner) -> None:
        """Say that ``owner``'s run is still going (every ``owner.HEARTBEAT_INTERVAL``)."""
        self._runs.set(owner.run_id, {"v": 1, "at": time.time()})

    def end_run(self, owner: Owner) -> None:
        """Forget ``owner``'s heartbeat; best effort (on a full disk it goes stale instead)."""
        with contextlib.suppress(ShotgraphError):
            self._runs.delete(owner.run_id)

    def owner_alive(self, owner: Owner) -> bool:
        """Whether the run that holds a journal entry may still be going (the rule is
        :func:`runner.store.owner.owner_alive`; the heartbeats are here)."""
        return owner_alive(owner, self._last_beat)

    def _last_beat(self, run_id: str) -> float | None:
        seen = self._runs.get(run_id)
        return None if seen is None else float(seen.get("at", 0.0))

    def in_flight(self) -> list[tuple[str, JournalEntry]]:
        return self._journal.entries()

    def drop_stale_entry(self, key: str, stale: JournalEntry) -> bool:
        """Delete the entry if it is still exactly ``stale`` (for gc of dead claims)."""
        return self._journal.drop_if_unchanged(key, stale)

    # -- maintenance ---------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Records per table (constant time: diskcache keeps the counts)."""
        return {
            "results": len(self._results),
            "uploads": len(self._uploads),
            "journal": len(self._journal.table),
            "hashes": len(self._hashes.table),
        }

    def forget_missing_inputs(self, *, dry_run: bool = False) -> int:
        return self._hashes.forget_missing(dry_run=dry_run)


def _shared_key(remote: str, key: str) -> str:
    return f"{remote}\n{key}"


def _upload_key(backend: str, sha256: str) -> str:
    return f"{backend}/{sha256}"
