"""``shotgraph plan``: every node priced, timed and keyed, and whether it will render and
why (from the store and the lockfile); nothing is sent."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import click

from runner.commands.common import (
    backend_option,
    checked_remembered,
    pipeline_argument,
    shared_store,
    store_root,
    store_url_option,
)
from runner.compile.check import collector_paused
from runner.pipeline.confine import Project
from runner.plan import check_budget, plan_with_store
from runner.store import Store, StoreError, is_store
from runner.ui.plan_markdown import format_plan_markdown
from runner.ui.plan_table import format_plan, plan_json


@click.command()
@pipeline_argument
@backend_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "markdown"]),
    default="table",
    show_default=True,
    help="A table for a terminal, JSON for machines, markdown for a pull request comment.",
)
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
@click.option("-v", "--verbose", is_flag=True, help="Include the full request of every node.")
@click.option(
    "--budget",
    type=click.FloatRange(min=0),
    metavar="USD",
    help="Exit 5 if the estimate of what will render exceeds this.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The store to consult (default: $SHOTGRAPH_CACHE_DIR, else .shotgraph/).",
)
@store_url_option
# A pipeline's values, records, steps and plan rows: hundreds of thousands of objects that
# live until the command ends, which the collector would walk over and over (a fifth of the
# CPU of a plan of 5,000 nodes), and next to no garbage cycles.
@collector_paused()
def plan(
    pipeline: Path,
    backend: str,
    fmt: str,
    as_json: bool,
    verbose: bool,
    budget: float | None,
    cache_dir: Path | None,
    store_url: str | None,
) -> int:
    """Show what a run would render and why, with endpoint, length and estimated cost."""
    as_json = as_json or fmt == "json"
    project = Project.of_pipeline(pipeline)
    root = store_root(project, cache_dir)
    # Opened once, for looking only (not created here): for the pipeline's remembered hashes
    # and for the plan. Opening it for writing waits on the disk (a tenth of a second); a
    # file whose hash is not remembered yet opens it so (``remembered_hashes``).
    with _looking(root) as opened:
        # --verbose shows where each field came from: that needs the records a memo leaves out.
        show = "none" if as_json else "all"
        result = checked_remembered(
            pipeline, backend, cache_dir, show=show, memo=not verbose, store=opened
        )
        if as_json and result.errors:
            # Machines get the findings where they read the plan: on stdout, as JSON.
            findings = {"valid": False, "errors": [d.as_json() for d in result.errors]}
            click.echo(json.dumps(findings, indent=2))
            return 1
        compiled = result.require()
        remote = shared_store(project.root, store_url)
        if remote is None:
            the_plan = plan_with_store(compiled, root, opened=opened)
        else:
            # Read and written: the records the shared store has are kept in the local one.
            with Store.open(root) as local:
                from runner.store import TieredStore  # asyncio: only for a shared store

                the_plan = plan_with_store(compiled, root, TieredStore(local, remote))
        if as_json:
            document = plan_json(the_plan, compiled, verbose=verbose)
            click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        elif fmt == "markdown":
            click.echo(format_plan_markdown(the_plan, compiled), nl=False)
        else:
            click.echo(format_plan(the_plan, compiled, verbose=verbose), nl=False)
        if budget is not None:
            check_budget(the_plan, budget)
        return 0


def _looking(root: Path) -> contextlib.AbstractContextManager[Store | None]:
    """The store at ``root`` opened for looking only; None when there is none (none is
    created here). One a read-only look cannot use (left half made) is opened as a run does."""
    if not is_store(root):
        return contextlib.nullcontext()
    try:
        return Store.open(root, read_only=True)
    except StoreError:
        return Store.open(root)
