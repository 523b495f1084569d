"""Every lockfile of a repository, for gc: the working tree's, and (for a shared store, which
every branch renders into) those of every branch and tag git knows."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from runner.lock import LOCK_SUFFIX, find_lockfiles, lock_keys

GIT_TIMEOUT = 60.0


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
    for blob in blobs:
        try:
            nodes = json.loads(_git(project_root, "cat-file", "blob", blob)).get("nodes", {})
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
