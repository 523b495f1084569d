"""``shotgraph report``: the review page of a pipeline, as a folder that opens from disk."""

from __future__ import annotations

from pathlib import Path

import click

from runner.commands.common import checked, pipeline_argument, remembered_hashes, store_root
from runner.errors import display_path
from runner.lock import lock_path, project_lock_path, read_lock
from runner.report import write_report
from runner.review.lockgit import lock_at
from runner.run.backends import BACKENDS, FAL


@click.command()
@pipeline_argument
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="The report folder (default: PIPELINE.report/ beside the pipeline).",
)
@click.option(
    "--against",
    metavar="LOCK|REV",
    help="Compare with another lock: a lockfile, or a git revision (main, HEAD~1) of this "
    "pipeline's lockfile. Shows only the shots that changed, old and new side by side.",
)
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    help="The backend whose renders to show (default: the lockfile's, else fal).",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The store to read (default: $SHOTGRAPH_CACHE_DIR, else .shotgraph/).",
)
def report(
    pipeline: Path,
    output: Path | None,
    against: str | None,
    backend: str | None,
    cache_dir: Path | None,
) -> int:
    """Write a self-contained review page: every shot with its poster and clip, prompt,
    seed, cost, status, verdict and lineage; the takes; the cut; what changed."""
    existing = lock_path(pipeline.absolute())
    locked = read_lock(existing) if existing.is_file() else None
    chosen = backend or (locked.backend if locked is not None else FAL)
    with remembered_hashes(pipeline, cache_dir) as hash_file:
        compiled = checked(pipeline, chosen, show="errors", hash_file=hash_file).require()
    lock_file = project_lock_path(compiled)  # refuses one that leads out of the project
    # The file read above (it names the same one): read again only where that saw no file.
    lock = locked if locked is not None or not lock_file.exists() else read_lock(lock_file)
    other = (against, lock_at(against, lock_file)) if against else None
    folder = output or pipeline.absolute().with_name(f"{pipeline.stem}.report")
    root = store_root(compiled.pipeline.project, cache_dir)
    result = write_report(compiled, root, folder, lock=lock, against=other)
    changed = f", {result.changed} changed since {against}" if result.changed is not None else ""
    click.echo(
        f"report of {result.shots} shots{changed} (backend {chosen}): {display_path(result.index)}"
    )
    return 0
