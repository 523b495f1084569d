"""The cache keys a lockfile pins, and where a project's lockfiles are.

Only what gc needs: ``{"nodes": {name: {"key": ...}}}``. Other fields are ignored, so the
lockfile format can grow without this reader changing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from runner.errors import ShotgraphError

LOCK_SUFFIX = ".lock.json"
# Directories that never hold a project's lockfiles and can be large.
_SKIP = frozenset({".git", ".shotgraph", ".venv", "venv", "node_modules", "__pycache__"})


def lock_keys(path: Path) -> set[str]:
    """Every node's cache key in the lockfile at ``path``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ShotgraphError(f"cannot read lockfile {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ShotgraphError(f"{path}: not a JSON lockfile ({exc})") from exc
    nodes = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(nodes, dict):
        raise ShotgraphError(
            f'{path}: a lockfile needs a "nodes" object', hint="is this a shotgraph lockfile?"
        )
    keys: set[str] = set()
    for name, entry in nodes.items():
        if not isinstance(entry, dict):
            raise ShotgraphError(f"{path}: nodes.{name} must be an object")
        key = entry.get("key")
        if isinstance(key, str):
            keys.add(key)
        elif key is not None:
            raise ShotgraphError(f"{path}: nodes.{name}.key must be a string, not {key!r}")
    return keys


def find_lockfiles(project_root: Path, *, exclude: Path | None = None) -> list[Path]:
    """``*.lock.json`` under ``project_root``, skipping the store (``exclude``), VCS and
    virtual-environment directories."""
    skip_dir = exclude.resolve() if exclude is not None else None
    found: list[Path] = []
    for directory, dirs, names in os.walk(project_root.resolve()):
        here = Path(directory)
        dirs[:] = sorted(
            d for d in dirs if d not in _SKIP and (skip_dir is None or here / d != skip_dir)
        )
        found.extend(here / n for n in sorted(names) if n.endswith(LOCK_SUFFIX))
    return found
