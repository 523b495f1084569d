"""The other lock of a comparison, read from a lockfile or a git revision."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from runner.errors import ShotgraphError
from runner.lock import Lock
from runner.review.lockgit import lock_at
from tests.review.test_lockdiff import entry


def git(cwd: Path, *args: str) -> None:
    who = ["-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", *who, *args], cwd=cwd, check=True, capture_output=True)


def test_lock_at_reads_a_file_or_a_git_revision(tmp_path: Path) -> None:
    lock = Lock("p", "p.yaml", "fal", nodes={"a": entry("k1", "a cat")})
    path = tmp_path / "films" / "p.lock.json"
    path.parent.mkdir()
    path.write_text(lock.render())
    git(tmp_path, "init", "-q")
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", "0")
    git(tmp_path, "add", "films/p.lock.json")
    git(tmp_path, "commit", "-q", "-m", "1")
    path.write_text(replace(lock, nodes={}).render())
    assert lock_at(str(path), path).nodes == {}
    assert set(lock_at("HEAD", path).nodes) == {"a"}  # from a subdirectory of the work tree
    with pytest.raises(ShotgraphError, match="no lockfile or git revision 'HEAD~1'"):
        lock_at("HEAD~1", path)  # the lockfile was not committed yet
    with pytest.raises(ShotgraphError, match="no lockfile or git revision 'no-such-branch'"):
        lock_at("no-such-branch", path)


def test_lock_at_outside_git_says_so(tmp_path: Path) -> None:
    path = tmp_path / "p.lock.json"
    with pytest.raises(ShotgraphError, match="not in a git work tree") as caught:
        lock_at("main", path)
    assert "'main'" in caught.value.message


def test_a_damaged_lock_at_a_revision_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "p.lock.json"
    path.write_text("{not json")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "p.lock.json")
    git(tmp_path, "commit", "-q", "-m", "1")
    with pytest.raises(ShotgraphError, match=r"HEAD:p\.lock\.json"):
        lock_at("HEAD", path)
