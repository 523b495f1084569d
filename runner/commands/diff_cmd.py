"""``shotgraph diff``: what changed between two lockfiles, or a lockfile at two git
revisions: shots added, removed and changed (prompt diffs), and the cost."""

from __future__ import annotations

import json
from pathlib import Path

import click

from runner.lock import Lock, read_lock
from runner.review.lockdiff import compare
from runner.review.lockgit import changed_lockfiles, from_top, git_top, lock_at_rev, locks_at_rev
from runner.ui.lock_diff import diff_json, format_markdown, format_text


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
        top = git_top()
        old_rev, new_rev = revs[0], (revs[1] if len(revs) == 2 else None)
        paths = [from_top(Path(p), top) for p in lockfiles] or changed_lockfiles(
            top, old_rev, new_rev
        )
        olds = locks_at_rev(top, old_rev, paths)
        news = locks_at_rev(top, new_rev, paths) if new_rev is not None else None
        for at, path in enumerate(paths):
            before = (olds[at], f"{old_rev}:{path}")
            if news is None:
                here = top / path
                after = (read_lock(here) if here.exists() else None, path)
            else:
                after = (news[at], f"{new_rev}:{path}")
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
    top = git_top()
    return lock_at_rev(top, rev, from_top(Path(rel), top)), spec
