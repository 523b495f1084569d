"""The store: cached results, content-addressed media and the journal of paid jobs.

``Store.open(root)`` is the local store; see :mod:`runner.store.store` for its layout,
:mod:`runner.store.journal` for how a submitted job is never paid for twice, and
:mod:`runner.store.maintenance` for info, verify and gc. A team shares a remote store in a
bucket (:func:`open_remote`, :mod:`runner.store.remote_store`), with the local one as its
near cache; a run talks to both through :class:`TieredStore`. The store knows nothing of
backends or of what other parts keep under its root (the emulator's state, the run logs).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from runner.store.journal import JournalConflict, JournalEntry
from runner.store.location import STORE_DIRNAME, is_store, resolve_store_root
from runner.store.owner import HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT, Owner
from runner.store.rows import ResultRecord, StoredFile, UploadRecord
from runner.store.store import GC_GRACE, UPLOAD_MARGIN, Store
from runner.store.table import StoreError

if TYPE_CHECKING:
    from runner.store.maintenance import (
        GcReport,
        StoreInfo,
        VerifyReport,
        gc_store,
        store_info,
        tree_size,
        verify_store,
    )
    from runner.store.remote import RemoteError
    from runner.store.remote_store import LEASE, RemoteStore
    from runner.store.s3_settings import StoreDefaults, is_store_url
    from runner.store.tiered import TieredStore

# Loaded at first use (PEP 562): the shared store's modules bring asyncio, and a command
# that only plans from the local store (most of them) should not pay for them.
_HOMES = {
    "GcReport": "maintenance",
    "StoreInfo": "maintenance",
    "VerifyReport": "maintenance",
    "gc_store": "maintenance",
    "store_info": "maintenance",
    "tree_size": "maintenance",
    "verify_store": "maintenance",
    "RemoteError": "remote",
    "LEASE": "remote_store",
    "RemoteStore": "remote_store",
    "StoreDefaults": "s3_settings",
    "is_store_url": "s3_settings",
    "TieredStore": "tiered",
}

__all__ = [
    "GC_GRACE",
    "HEARTBEAT_INTERVAL",
    "HEARTBEAT_TIMEOUT",
    "LEASE",
    "STORE_DIRNAME",
    "UPLOAD_MARGIN",
    "GcReport",
    "JournalConflict",
    "JournalEntry",
    "Owner",
    "RemoteError",
    "RemoteStore",
    "ResultRecord",
    "Store",
    "StoreDefaults",
    "StoreError",
    "StoreInfo",
    "StoredFile",
    "TieredStore",
    "UploadRecord",
    "VerifyReport",
    "gc_store",
    "is_store",
    "is_store_url",
    "open_remote",
    "resolve_store_root",
    "store_info",
    "tree_size",
    "verify_store",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # once found, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


def open_remote(
    url: str,
    env: Mapping[str, str],
    defaults: StoreDefaults | None = None,
    *,
    lease: float | None = None,
    timeout: float | None = None,
) -> RemoteStore:
    """The remote store at ``url`` (``s3://bucket/prefix``), reached the standard AWS ways
    (:mod:`runner.store.s3_settings`); ``lease`` (seconds) is how long this run's claims
    outlive its last heartbeat, ``timeout`` how long a request is retried. Nothing is sent
    until the store is first used."""
    from runner.store.remote_store import LEASE, RemoteStore
    from runner.store.s3 import RETRY_SECONDS, S3Remote  # obstore loads only when shared
    from runner.store.s3_settings import StoreDefaults, s3_settings

    settings = s3_settings(url, env, defaults or StoreDefaults())
    bucket = S3Remote(settings, retry_seconds=timeout or RETRY_SECONDS)
    return RemoteStore(bucket, lease=lease or LEASE)
