"""Every lockfile of a repository, for gc: the working tree's, and (for a shared store, which
every branch renders into) those of every branch and tag git knows."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from runner.errors import ShotgraphError
from runner.lock import LOCK_SUFFIX
from runner.review.lockgit import git_objects

GIT_TIMEOUT = 60.0
_SKIP = frozenset({".git", ".shotgraph", ".venv", "venv", "node_modules", "__pycache__"})


def working_tree_keys(project_root: Path, exclude: Path | None) -> tuple[list[Path], set[str]]:
    """The lockfiles under the project and the cache keys they name."""
    paths = find_lockfiles(project_root, exclude=exclude)
    keys: set[str] = set()
    for path in paths:
        keys |= lock_keys(path)
    return paths, keys


def git_keys(project_root: Path) -> tuple[int, set[str]]:
    """How many lockfiles the branches and tags of the repository hold (each version
    once), and the cache keys they name; (0, empty) outside a git repository."""
    refs = _git(
        project_root,
        "for-each-ref",
        "--format=%(objectname)",
        "refs/heads",
        "refs/remotes",
        "refs/tags",
    )
    blobs: set[str] = set()
    for ref in set(refs.split()):
        for line in _git(project_root, "ls-tree", "-r", ref).splitlines():
            meta, _, path = line.partition("\t")  # "<mode> blob <object>\t<path>"
            if path.endswith(LOCK_SUFFIX) and meta.split()[1:2] == ["blob"]:
                blobs.add(meta.split()[2])
    keys: set[str] = set()
    try:
        texts = git_objects(project_root, sorted(blobs))
    except ShotgraphError:
        texts = []
    for text in texts:
        if text is None:
            continue
        try:
            nodes = json.loads(text).get("nodes", {})
        except (ValueError, AttributeError):
            continue  # not a lockfile after all: it keeps nothing
        if isinstance(nodes, dict):
            keys |= {e["key"] for e in nodes.values() if isinstance(e, dict) and "key" in e}
    return len(blobs), {key for key in keys if isinstance(key, str)}


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def lock_keys(path: Path) -> set[str]:
    """Every node's cache key in the lockfile at ``path``, for gc. Only ``nodes.*.key`` is
    read, so a lockfile of an older or newer format still keeps its results."""
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
