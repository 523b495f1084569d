"""The report's media: each output copied into the report folder once per content hash, and
a poster for every clip, kept in the store by the clip's hash (``<store>/posters/``) so a
report of a large pipeline makes only the posters it never made before.

Copies and posters are made on a few threads (PyAV decodes and file copies release the GIL).
Nothing here is fsynced: a report is remade from the store in seconds.
"""

from __future__ import annotations

import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from runner import atomic
from runner.errors import MediaError
from runner.media.poster import write_poster
from runner.report.shots import Output
from runner.store import Store

POSTERS = "posters"  # under the store root
MEDIA = "media"  # under the report folder
_SHA256 = re.compile(r"[0-9a-f]{64}")
EXTENSIONS = {"video/mp4": ".mp4", "image/png": ".png", "image/jpeg": ".jpg"}


def gather_media(
    outputs: list[Output], store: Store, folder: Path, *, workers: int = 2
) -> tuple[dict[str, Output], int]:
    """Copy every output the store has into ``folder/media`` and make the posters. Returns
    each placed output by its hash (with ``file`` and ``poster`` set) and how many posters
    were made now (the others came from the store)."""
    wanted: dict[str, Output] = {}
    for output in outputs:
        if store.has_file(output.sha256, output.size):
            wanted.setdefault(output.sha256, output)
    (folder / MEDIA).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = list(pool.map(lambda out: _place(out, store, folder), wanted.values()))
    placed = {}
    for output, (file, poster, _fresh) in zip(wanted.values(), done, strict=True):
        placed[output.sha256] = replace(output, file=file, poster=poster)
    return placed, sum(fresh for _file, _poster, fresh in done)


def _place(output: Output, store: Store, folder: Path) -> tuple[str, str | None, int]:
    """(the copy's path in the report, its poster's, 1 if the poster was made now)."""
    ext = EXTENSIONS.get(output.content_type, ".bin")
    name = f"{MEDIA}/{output.sha256}{ext}"
    source = store.file_path(output.sha256)
    _copy(source, folder / name, output.size)
    if not output.content_type.startswith("video/"):
        return name, None, 0
    cached = store.root / POSTERS / f"{output.sha256}.jpg"
    fresh = 0
    if not _nonempty(cached):
        try:
            write_poster(source, cached)
        except MediaError:
            return name, None, 0  # the clip plays without one
        fresh = 1
    poster = f"{MEDIA}/{output.sha256}.jpg"
    _copy(cached, folder / poster, cached.stat().st_size)
    return name, poster, fresh


def _nonempty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _copy(source: Path, dest: Path, size: int) -> None:
    """Copy once: a file named by its content hash that is there with its size is the same."""
    try:
        if dest.stat().st_size == size:
            return
    except OSError:
        pass
    with atomic.replacing(dest, dest.suffix, durable=False) as tmp:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o644)


def prune_posters(store: Store, *, dry_run: bool = False) -> int:
    """Remove the posters of clips the store no longer has (``cache gc``); how many."""
    removed = 0
    for poster in sorted((store.root / POSTERS).glob("*.jpg")):
        if _SHA256.fullmatch(poster.stem) is None or not store.has_file(poster.stem):
            removed += 1
            if not dry_run:
                poster.unlink(missing_ok=True)
    return removed
