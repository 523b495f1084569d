"""Delivering a stored result to a pipeline's output path; what a run loads before it."""

from __future__ import annotations

import contextlib
import importlib
import mimetypes
import shutil
from pathlib import Path

from runner import atomic
from runner.errors import StepFailed
from runner.store import Store


def deliver(store: Store, sha256: str, path: Path) -> bool:
    """Copy a stored file to an output path, atomically; False when it is already there.

    A copy, not a link: editing a delivered video must not change the store."""
    if path.is_file() and store.hash_file(path).sha256 == sha256:
        return False
    with atomic.replacing(path) as temp:
        shutil.copyfile(store.file_path(sha256), temp)
    return True


def unwritable(path: Path, exc: OSError) -> StepFailed:
    """The failure of a delivery the disk refused, not for being full."""
    return StepFailed(
        f"could not write the output {path}: {exc.strerror or exc}",
        hint="check the directory exists and is writable",
    )


def load_generation() -> None:
    """Import what generation steps need (the fal client, httpx and theirs), in a thread
    before the first one starts, not on the event loop at its first step."""
    import runner.run.generation
    import runner.run.uploads  # noqa: F401

    # httpx's first request loads anyio's asyncio backend (a dozen modules): now, instead.
    with contextlib.suppress(ImportError):
        importlib.import_module("anyio._backends._asyncio")
    mimetypes.init()  # uploads name their files' types: the system's tables, read once
