"""The remote tier: a team's shared store in a bucket, laid out under its prefix as::

    shotgraph-store.json           format marker (the layout's version)
    files/ab/ab…                   content-addressed files: create-only, verified when read
    results/<key>.json             cache key -> ResultRecord (a file lands before its record)
    uploads/<backend>/<sha>.json   where a backend already has a file (UploadRecord)
    journal/<key>.json             claims and submitted jobs (see remote_journal)
    runs/<run id>.json             each run's heartbeat: the lease its claims live by

Objects are JSON in the same schema as the local records. A file whose bytes do not hash
to its name is never handed out: :meth:`RemoteStore.fetch_file` raises :class:`Damaged`
and deletes it (bytes that do not match a content name are garbage by definition, and a
render of the same content must be able to create it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.store.owner import Owner
from runner.store.remote import Remote, RemoteError
from runner.store.remote_journal import RemoteJournal, ServerClock
from runner.store.rows import (
    SCHEMA,
    RecordError,
    ResultRecord,
    StoredFile,
    UploadRecord,
    check_sha256,
    opt_float,
    read_row,
)
from runner.store.table import StoreError

MARKER = "shotgraph-store.json"
FORMAT = "shotgraph-remote-store"
VERSION = 1
# A run renews its lease this many times per lease: a beat or two may be slow or lost.
BEATS_PER_LEASE = 4
LEASE = 60.0


class Damaged(StoreError):
    """A remote file whose bytes do not match its name (it was tampered with or damaged)."""


def file_name(sha256: str) -> str:
    return f"files/{sha256[:2]}/{sha256}"


def result_name(key: str) -> str:
    return f"results/{key}.json"


def upload_name(backend: str, sha256: str) -> str:
    return f"uploads/{backend}/{sha256}.json"


def run_name(run_id: str) -> str:
    return f"runs/{run_id}.json"


def encode(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()


def decode(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class RemoteStore:
    """Files, records, uploads, heartbeats and the journal in one :class:`Remote`.

    ``lease`` is how long this run's claims outlive its last heartbeat; it is written into
    the heartbeat, so every machine judges a run by the lease that run announced.
    """

    def __init__(self, remote: Remote, *, lease: float = LEASE) -> None:
        self.remote = remote
        self.lease = lease
        self.clock = ServerClock()
        self.journal = RemoteJournal(remote, self.clock, self._last_beat, lease)
        self._opened: asyncio.Future[None] | None = None
        self._beats: dict[str, tuple[float, tuple[float, float] | None]] = {}

    @property
    def url(self) -> str:
        return self.remote.url

    async def open(self) -> None:
        """Check the layout's version, and that the server honours create-only writes
        (without them two machines could both claim a job). Once per process."""
        if self._opened is None:
            self._opened = asyncio.ensure_future(self._check_format())
        await asyncio.shield(self._opened)

    async def _check_format(self) -> None:
        marker = encode({"format": FORMAT, "version": VERSION})
        found = await self.remote.get(MARKER)
        if found is None:
            await self.remote.put_if_absent(MARKER, marker)
            found = await self.remote.get(MARKER)
        data = decode(found.data) if found is not None else None
        if data is None or data.get("format") != FORMAT:
            raise StoreError(
                f"{self.url} holds something that is not a shotgraph store",
                hint="choose an empty prefix for shotgraph (s3://BUCKET/PREFIX)",
            )
        version = data.get("version")
        if not isinstance(version, int) or version > VERSION:
            raise StoreError(
                f"the store {self.url} has format {version!r}; this shotgraph reads {VERSION}",
                hint="upgrade shotgraph on this machine",
            )
        # The marker exists, so a create-only write of it must be refused.
        if await self.remote.put_if_absent(MARKER, marker) is not None:
            raise StoreError(
                f"the server behind {self.url} ignores If-None-Match, so claims cannot work: "
                "two machines could pay for the same job",
                hint="use a server with conditional writes (S3, R2, MinIO 2024-11 or later, "
                "SeaweedFS 4.48 as tested); see docs/sharing-a-store.md",
            )

    # -- files -------------------------------------------------------------------------

    async def has_file(self, stored: StoredFile) -> bool:
        info = await self.remote.head(file_name(stored.sha256))
        return info is not None and info.size == stored.size

    async def put_file(self, path: Path, stored: StoredFile) -> None:
        """Upload a local file under its hash, unless it is there already (create-only)."""
        await self.remote.put_if_absent(file_name(stored.sha256), path)

    async def fetch_file(self, stored: StoredFile, staging: Path) -> Path | None:
        """Download a file into ``staging`` (a new file) and check it hashes to its name:
        the path, or None when the bucket does not have it. Raises :class:`Damaged`."""
        name = file_name(check_sha256(stored.sha256))
        info = await self.remote.download(name, staging)
        if info is None:
            return None
        actual = await asyncio.to_thread(_sha256_of, staging)
        if actual == stored.sha256:
            return staging
        staging.unlink(missing_ok=True)
        with contextlib.suppress(RemoteError):
            await self.remote.delete(name)
        raise Damaged(
            f"the file {name} in {self.url} is damaged or was tampered with: its bytes hash "
            f"to {actual[:12]}…, not to its name; it was not used and has been removed",
            hint="whatever needed it is rendered again; check who can write to the bucket",
        )

    # -- records -----------------------------------------------------------------------

    async def get_result(self, key: str) -> ResultRecord | None:
        found = await self.remote.get(result_name(key))
        record = read_row(ResultRecord, decode(found.data) if found is not None else None)
        return record if record is not None and record.key == key else None

    async def put_result(self, record: ResultRecord) -> None:
        await self.remote.put(result_name(record.key), encode(record.as_dict()))

    async def delete_result(self, key: str) -> None:
        await self.remote.delete(result_name(key))

    async def get_upload(self, backend: str, sha256: str) -> UploadRecord | None:
        found = await self.remote.get(upload_name(backend, check_sha256(sha256)))
        return read_row(UploadRecord, decode(found.data) if found is not None else None)

    async def put_upload(self, record: UploadRecord) -> None:
        name = upload_name(record.backend, check_sha256(record.sha256))
        await self.remote.put(name, encode(record.as_dict()))

    async def delete_upload(self, backend: str, sha256: str) -> None:
        await self.remote.delete(upload_name(backend, check_sha256(sha256)))

    # -- heartbeats --------------------------------------------------------------------

    @property
    def beat_interval(self) -> float:
        return self.lease / BEATS_PER_LEASE

    async def beat(self, owner: Owner) -> None:
        """Renew this run's lease, and learn the server's clock from the write."""
        body = {"v": SCHEMA, "run_id": owner.run_id, "host": owner.host, "lease": self.lease}
        body["at"], body["nonce"] = time.time(), uuid.uuid4().hex
        name = run_name(owner.run_id)
        await self.remote.put(name, encode(body))
        info = await self.remote.head(name)
        if info is not None:
            self.clock.observe(info.modified)

    async def end_run(self, owner: Owner) -> None:
        with contextlib.suppress(RemoteError):
            await self.remote.delete(run_name(owner.run_id))

    async def _last_beat(self, run_id: str) -> tuple[float, float] | None:
        """(when, lease) of a run's last heartbeat by the server's clock; looked up at most
        once a second per run, however many of its claims are being waited on."""
        cached = self._beats.get(run_id)
        if cached is not None and time.monotonic() - cached[0] < 1.0:
            return cached[1]
        found = await self.remote.get(run_name(run_id))
        data = decode(found.data) if found is not None else None
        beat = None
        if found is not None and data is not None:
            try:
                lease = opt_float(data, "lease")
            except RecordError:
                lease = None
            beat = (found.info.modified, lease or self.lease)
        self._beats[run_id] = (time.monotonic(), beat)
        return beat


def _sha256_of(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
