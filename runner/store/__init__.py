"""The store: cached results, content-addressed media and the journal of paid jobs.

``Store.open(root)`` is the entry point; see :mod:`runner.store.store` for the layout,
:mod:`runner.store.journal` for how a submitted job is never paid for twice, and
:mod:`runner.store.maintenance` for info, verify and gc. The store knows nothing of backends
or of what other parts keep under its root (the emulator's state, the run logs).
"""

from __future__ import annotations

from runner.store.journal import JournalConflict, JournalEntry
from runner.store.location import STORE_DIRNAME, is_store, resolve_store_root
from runner.store.maintenance import (
    GcReport,
    StoreInfo,
    VerifyReport,
    gc_store,
    store_info,
    tree_size,
    verify_store,
)
from runner.store.owner import HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT, Owner
from runner.store.rows import ResultRecord, StoredFile, UploadRecord
from runner.store.store import GC_GRACE, UPLOAD_MARGIN, Store
from runner.store.table import StoreError

__all__ = [
    "GC_GRACE",
    "HEARTBEAT_INTERVAL",
    "HEARTBEAT_TIMEOUT",
    "STORE_DIRNAME",
    "UPLOAD_MARGIN",
    "GcReport",
    "JournalConflict",
    "JournalEntry",
    "Owner",
    "ResultRecord",
    "Store",
    "StoreError",
    "StoreInfo",
    "StoredFile",
    "UploadRecord",
    "VerifyReport",
    "gc_store",
    "is_store",
    "resolve_store_root",
    "store_info",
    "tree_size",
    "verify_store",
]
