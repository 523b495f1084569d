"""Where the store lives, and the marker that says a directory is one."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from runner.errors import disk_full
from runner.store.blobs import atomic_write_text
from runner.store.table import StoreError

STORE_DIRNAME = ".shotgraph"
ENV_VAR = "SHOTGRAPH_CACHE_DIR"
MARKER = "store.json"
FORMAT = "shotgraph-store"
VERSION = 1


def resolve_store_root(
    project_root: Path, cache_dir: Path | None, env: Mapping[str, str] = os.environ
) -> Path:
    """``--cache-dir`` if given, else ``$SHOTGRAPH_CACHE_DIR``, else ``<project>/.shotgraph``."""
    if cache_dir is not None:
        chosen = cache_dir
    elif env.get(ENV_VAR):
        chosen = Path(env[ENV_VAR])
    else:
        chosen = project_root / STORE_DIRNAME
    return chosen.expanduser().absolute()


def is_store(root: Path) -> bool:
    """Whether a store exists at ``root`` (without creating one)."""
    return (root / MARKER).is_file()


def ensure_layout(root: Path) -> None:
    """Create the store at ``root`` or check that the directory there is one we can use.

    A non-empty directory without the marker is refused: a mistyped ``--cache-dir`` must
    not turn someone's home directory into a store that ``cache gc`` then prunes.
    """
    marker = root / MARKER
    try:
        root.mkdir(parents=True, exist_ok=True)
        foreign = not marker.exists() and any(not _ours(path.name) for path in root.iterdir())
        # Looked at again: another run may have made the store between the two looks.
        if foreign and not marker.exists():
            raise StoreError(
                f"{root} is not a shotgraph store (it has no {MARKER}) and is not empty",
                hint="point --cache-dir or $SHOTGRAPH_CACHE_DIR at an empty or new directory",
            )
        if marker.exists():
            check_marker(marker)
        else:
            # The store is machine-local state; keep it out of git wherever it lives.
            atomic_write_text(root / ".gitignore", "# created by shotgraph\n*\n")
            # The marker goes last: it is what makes the directory a store.
            atomic_write_text(marker, json.dumps({"format": FORMAT, "version": VERSION}) + "\n")
        _make_subdirs(root)
    except OSError as exc:
        full = disk_full(exc, root)
        if full is not None:
            raise full from exc
        raise StoreError(f"cannot create the store at {root}: {exc.strerror or exc}") from exc


def _make_subdirs(root: Path) -> None:
    for name in ("files", "records", "tmp"):
        (root / name).mkdir(exist_ok=True)


def check_marker(marker: Path) -> None:
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"{marker} is unreadable: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise StoreError(f"{marker.parent} is not a shotgraph store")
    version = data.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise StoreError(
            f"the store at {marker.parent} has format {version!r}; this shotgraph reads "
            f"format {VERSION}",
            hint="upgrade shotgraph, or use another --cache-dir",
        )


def _ours(name: str) -> bool:
    """What an interrupted creation may have left: the .gitignore and temporary files."""
    return name == ".gitignore" or name.startswith((f".{MARKER}.", "..gitignore."))
