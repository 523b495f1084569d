"""``shotgraph diff``: what changed between two lockfiles, or a lockfile at two git
revisions: shots added, removed and changed (prompt diffs), and the cost."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import click

from runner.errors import ShotgraphError
from runner.lock import LOCK_SUFFIX, Lock, parse_lock, read_lock
from runner.ui.lock_diff import compare, diff_json, format_markdown, format_text


@click.command()
@click.argument("lockfiles", nargs=-1, metavar="[OLD NEW | LOCKFILE...]")
@click.option(
    "--rev",
    "revs",
    multiple=True,
    metavar="REV",
    help="A git revision: once, to compare it with the working tree; twice, to compare two "
    "revisions. Without LOCKFILEs, every lockfile that differs between them.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="Markdown suits a pull request comment.",
)
def diff(lockfiles: tuple[str, ...], revs: tuple[str, ...], fmt: str) -> int:
    """Compare lockfiles: OLD NEW (each a path, or REV:PATH for a file at a git revision),
    or with --rev, each LOCKFILE at REV and in the working tree (or at a second --rev)."""
    if len(revs) > 2:
        raise click.UsageError("--rev compares at most two revisions")
    pairs: list[tuple[tuple[Lock | None, str], tuple[Lock | None, str]]] = []
    if not revs:
        if len(lockfiles) != 2:
            raise click.UsageError("give OLD and NEW lockfiles, or --rev REV")
        pairs.append((_side(lockfiles[0]), _side(lockfiles[1])))
    else:
        top = _git_top()
        old_rev, new_rev = revs[0], (revs[1] if len(revs) == 2 else None)
        paths = [_from_top(Path(p), top) for p in lockfiles] or _changed(top, old_rev, new_rev)
        for path in paths:
            before = (_at_rev(top, old_rev, path), f"{old_rev}:{path}")
            if new_rev is None:
                here = top / path
                after = (read_lock(here) if here.exists() else None, path)
            else:
                after = (_at_rev(top, new_rev, path), f"{new_rev}:{path}")
            pairs.append((before, after))
    documents = []
    for (old_lock, old_label), (new_lock, new_label) in pairs:
        found = compare(old_lock, new_lock, old_label, new_label)
        if fmt == "json":
            documents.append(diff_json(found))
        else:
            click.echo(format_markdown(found) if fmt == "markdown" else format_text(found))
    if fmt == "json":
        click.echo(json.dumps(documents, indent=2, ensure_ascii=False))
    elif not pairs:
        click.echo("no lockfile differs")
    return 0


def _side(spec: str) -> tuple[Lock | None, str]:
    """A lockfile named on the command line: a path, or REV:PATH."""
    path = Path(spec)
    if path.exists() or ":" not in spec:
        return read_lock(path), spec
    rev, _, rel = spec.partition(":")
    top = _git_top()
    return _at_rev(top, rev, _from_top(Path(rel), top)), spec


def _git(top: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *args], cwd=top, capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ShotgraphError(
            f"cannot run git: {exc}", hint="install git, or compare two lockfiles by path"
        ) from None


def _git_top() -> Path:
    done = _git(None, "rev-parse", "--show-toplevel")
    if done.returncode != 0:
        raise ShotgraphError(
            "--rev and REV:PATH need a git work tree, and this is not one",
            hint="run it inside the repository, or compare two lockfiles by path",
        )
    return Path(done.stdout.strip())


def _from_top(path: Path, top: Path) -> str:
    """``path`` (relative to here) relative to the repository's top, as git names it."""
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(top.resolve()).as_posix()
    except ValueError:
        raise ShotgraphError(f"{path} is not inside the repository at {top}") from None


def _at_rev(top: Path, rev: str, path: str) -> Lock | None:
    """The lock at ``path`` in revision ``rev``; None when the file is not there."""
    if _git(top, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").returncode != 0:
        raise ShotgraphError(f"unknown git revision '{rev}'", hint="try `git log --oneline`")
    done = _git(top, "show", f"{rev}:{path}")
    if done.returncode != 0:
        return None  # a pipeline new on one side
    return parse_lock(done.stdout, Path(path))


def _changed(top: Path, old: str, new: str | None) -> list[str]:
    """Lockfiles that differ between two revisions (or a revision and the working tree)."""
    pattern = f"*{LOCK_SUFFIX}"
    args = ["diff", "--name-only", old, *([new] if new else []), "--", pattern]
    done = _git(top, *args)
    if done.returncode != 0:
        raise ShotgraphError(f"git diff failed: {done.stderr.strip()}")
    names = set(done.stdout.split())
    if new is None:
        untracked = _git(top, "ls-files", "--others", "--exclude-standard", "--", pattern)
        names |= set(untracked.stdout.split())
    return sorted(names)
