"""The other lock of a comparison, read from a lockfile or with git: at a revision
(``main``, ``HEAD~2``, a commit), and which lockfiles differ between two revisions (for
``shotgraph diff``, ``ci review`` and ``report --against``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from runner.errors import ShotgraphError
from runner.lock import LOCK_SUFFIX, Lock, parse_lock, read_lock


def lock_at(spec: str, lock_file: Path) -> Lock:
    """The lock ``spec`` names: a lockfile's path, or a git revision (``main``, ``HEAD~2``,
    a commit) whose version of ``lock_file`` is read with git."""
    candidate = Path(spec)
    if candidate.is_file():
        return read_lock(candidate)
    directory = lock_file.parent
    hint = "give a lockfile's path, or a revision where the lockfile is committed"
    top = _git(None, "rev-parse", "--show-toplevel", cwd=directory)
    if top.returncode != 0:
        raise ShotgraphError(
            f"no lockfile '{spec}', and {directory} is not in a git work tree to read a "
            "revision from",
            hint=hint,
        )
    relative = from_top(lock_file, Path(top.stdout.strip()))
    done = _git(None, "show", f"{spec}:{relative}", cwd=directory)
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or [""])[0][:200]
        raise ShotgraphError(f"no lockfile or git revision '{spec}': {said}", hint=hint)
    return parse_lock(done.stdout, Path(f"{spec}:{relative}"))


def lock_at_rev(top: Path, rev: str, path: str) -> Lock | None:
    """The lock at ``path`` (from the repository's ``top``) in revision ``rev``; None when
    the file is not there (a pipeline new on one side)."""
    return locks_at_rev(top, rev, [path])[0]


def locks_at_rev(top: Path, rev: str, paths: list[str]) -> list[Lock | None]:
    """The lock at each of ``paths`` in revision ``rev`` (None where a file is not there),
    read by one ``git cat-file --batch``, not a process per file."""
    verify_rev(top, rev)
    return read_locks(top, rev, paths)


def read_locks(top: Path, rev: str, paths: list[str]) -> list[Lock | None]:
    """:func:`locks_at_rev` for a ``rev`` known to be a commit (:func:`verify_rev`)."""
    texts = git_objects(top, [f"{rev}:{path}" for path in paths])
    return [
        None if text is None else parse_lock(text.decode("utf-8", "replace"), Path(path))
        for path, text in zip(paths, texts, strict=True)
    ]


def verify_rev(top: Path, rev: str) -> None:
    """Raise, with a hint, unless ``rev`` names a commit of the repository at ``top``."""
    if _git(top, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").returncode != 0:
        raise ShotgraphError(f"unknown git revision '{rev}'", hint="try `git log --oneline`")


def git_objects(top: Path, names: list[str]) -> list[bytes | None]:
    """The contents of the blobs ``names`` (object ids or ``REV:PATH``), in order, read by
    one ``git cat-file --batch``; None for a name that is missing or not a file."""
    if not names:
        return []
    if any("\n" in name for name in names):
        raise ShotgraphError("a path with a line break cannot be read from git")
    try:
        done = subprocess.run(
            ["git", "cat-file", "--batch"],
            cwd=top,
            input="".join(f"{name}\n" for name in names).encode(),
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ShotgraphError(
            f"cannot run git: {exc}", hint="install git, or compare two lockfiles by path"
        ) from None
    out, at = done.stdout, 0
    found: list[bytes | None] = []
    for _ in names:
        end = out.find(b"\n", at)
        if end < 0:
            found.append(None)
            continue
        header = out[at:end].split()  # "<object> <type> <size>", or "<name> missing"
        at = end + 1
        if len(header) != 3 or not header[2].isdigit():
            found.append(None)
            continue
        size = int(header[2])
        found.append(out[at : at + size] if header[1] == b"blob" else None)
        at += size + 1  # the contents end with a newline of git's
    return found


def changed_lockfiles(top: Path, old: str, new: str | None) -> list[str]:
    """Lockfiles that differ between two revisions (or a revision and the working tree)."""
    pattern = f"*{LOCK_SUFFIX}"
    done = _git(top, "diff", "--name-only", old, *([new] if new else []), "--", pattern)
    if done.returncode != 0:
        raise ShotgraphError(f"git diff failed: {done.stderr.strip()}")
    names = set(done.stdout.split())
    if new is None:
        untracked = _git(top, "ls-files", "--others", "--exclude-standard", "--", pattern)
        names |= set(untracked.stdout.split())
    return sorted(names)


def git_top() -> Path:
    """The top of the git work tree here."""
    done = _git(None, "rev-parse", "--show-toplevel")
    if done.returncode != 0:
        raise ShotgraphError(
            "--rev and REV:PATH need a git work tree, and this is not one",
            hint="run it inside the repository, or compare two lockfiles by path",
        )
    return Path(done.stdout.strip())


def from_top(path: Path, top: Path) -> str:
    """``path`` (relative to here) relative to the repository's ``top``, as git names it."""
    try:
        return Path(os.path.abspath(path)).relative_to(top.resolve()).as_posix()
    except ValueError:
        try:  # a path through a symbolic link to the work tree
            return path.resolve().relative_to(top.resolve()).as_posix()
        except ValueError:
            raise ShotgraphError(f"{path} is not inside the repository at {top}") from None


def _git(top: Path | None, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd or top,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ShotgraphError(
            f"cannot run git: {exc}", hint="install git, or compare two lockfiles by path"
        ) from None
