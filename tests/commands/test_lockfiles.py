"""The lockfiles gc keeps the results of: those in the working tree, and for a shared store
those of every branch and tag git knows (each version once)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from runner.commands.lockfiles import git_keys


def git(cwd: Path, *args: str) -> None:
    who = ["-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", *who, *args], cwd=cwd, check=True, capture_output=True)


def lock_text(*keys: str) -> str:
    return json.dumps({"nodes": {f"n{i}": {"key": key} for i, key in enumerate(keys)}})


def test_git_keys_reads_each_lockfile_version_of_every_branch_and_tag(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "films").mkdir()
    (tmp_path / "films" / "a.lock.json").write_text(lock_text("k1", "k2"))
    (tmp_path / "notes.json").write_text(lock_text("not-a-lockfile"))
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "1")
    git(tmp_path, "tag", "v1")
    git(tmp_path, "checkout", "-q", "-b", "edit")
    (tmp_path / "films" / "a.lock.json").write_text(lock_text("k1", "k3"))
    (tmp_path / "b.lock.json").write_bytes(b"\xff not json")  # not a lockfile after all
    (tmp_path / "c.lock.json").write_text('{"nodes": {"x": {"key": 7}, "y": "z"}}')
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "2")
    git(tmp_path, "checkout", "-q", "main")
    (tmp_path / "films" / "a.lock.json").write_text(lock_text("k9"))  # not committed

    count, keys = git_keys(tmp_path)
    assert count == 4  # a at main (and v1), a at edit, b, c
    assert keys == {"k1", "k2", "k3"}


def test_git_keys_outside_git_is_nothing(tmp_path: Path) -> None:
    assert git_keys(tmp_path) == (0, set())
