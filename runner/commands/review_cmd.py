"""``shotgraph pick``, ``approve`` and ``reject``: a director's decisions, written to the
review file beside the pipeline (``demo.yaml`` -> ``demo.review``, one line per node)."""

from __future__ import annotations

from pathlib import Path

import click

from runner import atomic
from runner.commands.common import backend_option, checked, pipeline_argument, store_root
from runner.errors import Diagnostics, ShotgraphError, display_path
from runner.lock import project_lock_path, read_lock
from runner.pipeline.confine import Refused, confine
from runner.pipeline.load import load_pipeline
from runner.pipeline.records import Pipeline
from runner.pipeline.review_file import Review, Verdict, review_path
from runner.review.gates import output_finder
from runner.store import Store, is_store

CACHE_DIR = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The store holding the node's output (default: $SHOTGRAPH_CACHE_DIR, else .shotgraph/).",
)


@click.command()
@pipeline_argument
@click.argument("node")
@click.argument("take", type=click.IntRange(min=1))
def pick(pipeline: Path, node: str, take: int) -> int:
    """Choose the take of NODE that its dependents use (recorded in PIPELINE.review)."""
    diags = Diagnostics()
    loaded = load_pipeline(pipeline, diags)
    found = loaded.nodes.get(node) if loaded is not None else None
    if loaded is None or found is None:
        raise _unknown(node, loaded)
    if not found.takes:
        raise ShotgraphError(
            f"'{node}' renders one take, so there is nothing to pick",
            hint=f"add `takes: 3` to nodes.{node} to render several",
        )
    if take > len(found.takes):
        raise ShotgraphError(
            f"'{node}' has {len(found.takes)} takes; there is no take {take}",
            hint=f"pick one of 1 to {len(found.takes)}",
        )
    was = loaded.review.picks.get(node, 1)
    _write(loaded, loaded.review.with_pick(node, take))
    if was == take:
        click.echo(f"{node}: take {take} was already the one its dependents use; nothing changes")
    else:
        click.echo(
            f"{node}: take {take} of {len(found.takes)} picked (was {was}); what depends on it "
            "renders again on the next run (`shotgraph plan` shows what)"
        )
    return 0


@click.command()
@pipeline_argument
@click.argument("node")
@click.option("--note", default="", help="What the director says about it.")
@backend_option
@CACHE_DIR
def approve(pipeline: Path, node: str, note: str, backend: str, cache_dir: Path | None) -> int:
    """Approve NODE's current output: its dependents may render (an approval gate opens)."""
    return _verdict(pipeline, node, True, note, backend, cache_dir)


@click.command()
@pipeline_argument
@click.argument("node")
@click.option("--note", required=True, help="What is wrong with it, for whoever redoes it.")
@backend_option
@CACHE_DIR
def reject(pipeline: Path, node: str, note: str, backend: str, cache_dir: Path | None) -> int:
    """Reject NODE's current output: its dependents keep waiting, and the note is kept."""
    return _verdict(pipeline, node, False, note, backend, cache_dir)


def _verdict(
    pipeline: Path, node: str, approved: bool, note: str, backend: str, cache_dir: Path | None
) -> int:
    compiled = checked(pipeline, backend, show="errors").require()
    step = compiled.steps.get(node)
    if step is None:
        raise _unknown(node, compiled.pipeline)
    if approved and step.gate and step.takes and node not in compiled.pipeline.review.picks:
        raise ShotgraphError(
            f"'{node}' is gated and has {step.takes} takes: pick the take to approve first",
            hint=f"shotgraph pick {display_path(pipeline)} {node} N",
        )
    lock_file = project_lock_path(compiled)
    lock = read_lock(lock_file) if lock_file.exists() else None
    root = store_root(compiled.pipeline.project, cache_dir)
    store = Store.open(root, read_only=True) if is_store(root) else None
    try:
        output = output_finder(compiled.steps, store, lock, backend)(node)
    finally:
        if store is not None:
            store.close()
    if output is None:
        raise ShotgraphError(
            f"'{node}' has no output to judge yet (nothing rendered from its current request "
            f"with --backend {backend})",
            hint=f"render it first: shotgraph run {display_path(pipeline)} --backend {backend}",
        )
    verdict = Verdict(approved, output, note)
    _write(compiled.pipeline, compiled.pipeline.review.with_verdict(node, verdict))
    if approved:
        opens = "its dependents render on the next run" if step.gate else "recorded"
        click.echo(f"{node}: approved output {output[:12]}; {opens}")
    else:
        click.echo(f"{node}: rejected output {output[:12]} ({note}); its dependents stay waiting")
    return 0


def _write(pipeline: Pipeline, review: Review) -> None:
    """Write the review file beside the pipeline, which must stay inside the project."""
    path = review_path(pipeline.path)
    try:
        confine(pipeline.project, path.name, pipeline.base_dir)
    except Refused as refused:
        raise ShotgraphError(f"the review file {refused.message}", hint=refused.hint) from None
    atomic.write_text(path, review.render(pipeline.path.name))
    click.echo(f"wrote {display_path(path)} (commit it)", err=True)


def _unknown(node: str, pipeline: Pipeline | None) -> ShotgraphError:
    if pipeline is None:
        return ShotgraphError("the pipeline cannot be read", hint="shotgraph validate PIPELINE")
    known = ", ".join(sorted(pipeline.nodes)[:12])
    return ShotgraphError(f"no node '{node}' in {pipeline.path.name}", hint=f"nodes: {known}")
