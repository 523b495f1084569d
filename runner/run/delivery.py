"""Delivering a stored result to a pipeline's output path."""

from __future__ import annotations

import shutil
from pathlib import Path

from runner import atomic
from runner.store import Store


def deliver(store: Store, sha256: str, path: Path) -> bool:
    """Copy a stored file to an output path, atomically; False when it is already there.

    A copy, not a link: editing a delivered video must not change the store."""
    if path.is_file() and store.hash_file(path).sha256 == sha256:
        return False
    with atomic.replacing(path) as temp:
        shutil.copyfile(store.file_path(sha256), temp)
    return True
