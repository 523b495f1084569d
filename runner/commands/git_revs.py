"""Reading lockfiles from git: at a revision, or every one that differs between two.
Shared by ``diff`` and ``ci review``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from runner.errors import ShotgraphError
from runner.lock import LOCK_SUFFIX, Lock, parse_lock


def git(top: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *args], cwd=top, capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ShotgraphError(
            f"cannot run git: {exc}", hint="install git, or compare two lockfiles by path"
        ) from None


def git_top() -> Path:
    done = git(None, "rev-parse", "--show-toplevel")
    if done.returncode != 0:
        raise ShotgraphError(
            "--rev and REV:PATH need a git work tree, and this is not one",
            hint="run it inside the repository, or compare two lockfiles by path",
        )
    return Path(done.stdout.strip())


def from_top(path: Path, top: Path) -> str:
    """``path`` (relative to here) relative to the repository's top, as git names it."""
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(top.resolve()).as_posix()
    except ValueError:
        raise ShotgraphError(f"{path} is not inside the repository at {top}") from None


def lock_at_rev(top: Path, rev: str, path: str) -> Lock | None:
    """The lock at ``path`` in revision ``rev``; None when the file is not there."""
    if git(top, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").returncode != 0:
        raise ShotgraphError(f"unknown git revision '{rev}'", hint="try `git log --oneline`")
    done = git(top, "show", f"{rev}:{path}")
    if done.returncode != 0:
        return None  # a pipeline new on one side
    return parse_lock(done.stdout, Path(path))


def changed_lockfiles(top: Path, old: str, new: str | None) -> list[str]:
    """Lockfiles that differ between two revisions (or a revision and the working tree)."""
    pattern = f"*{LOCK_SUFFIX}"
    args = ["diff", "--name-only", old, *([new] if new else []), "--", pattern]
    done = git(top, *args)
    if done.returncode != 0:
        raise ShotgraphError(f"git diff failed: {done.stderr.strip()}")
    names = set(done.stdout.split())
    if new is None:
        untracked = git(top, "ls-files", "--others", "--exclude-standard", "--", pattern)
        names |= set(untracked.stdout.split())
    return sorted(names)
