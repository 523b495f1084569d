"""``shotgraph plan``: every node priced, timed and keyed, and whether it will render and
why (from the store and the lockfile); nothing is sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from runner.cache_status import CacheStatus
from runner.commands.common import (
    backend_option,
    checked,
    pipeline_argument,
    store_root,
)
from runner.compiler import Compiled
from runner.confine import Project
from runner.errors import ShotgraphError
from runner.hashing import Hasher, sha256_file
from runner.lockfile import project_lock_path, read_lock
from runner.plan import Plan, make_plan
from runner.plan_table import format_plan, plan_json
from runner.store import Store, StoreError, is_store


@click.command()
@pipeline_argument
@backend_option
@click.option("--json", "as_json", is_flag=True, help="The plan as JSON on stdout.")
@click.option("-v", "--verbose", is_flag=True, help="Include the full request of every node.")
@click.option(
    "--budget",
    type=click.FloatRange(min=0),
    metavar="USD",
    help="Exit 1 if the estimate of what will render exceeds this.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The store to consult (default: $SHOTGRAPH_CACHE_DIR, else .shotgraph/).",
)
def plan(
    pipeline: Path,
    backend: str,
    as_json: bool,
    verbose: bool,
    budget: float | None,
    cache_dir: Path | None,
) -> int:
    """Show what a run would render and why, with endpoint, length and estimated cost."""
    with remembered_hashes(pipeline, cache_dir) as hash_file:
        result = checked(pipeline, backend, show="none" if as_json else "all", hash_file=hash_file)
    if as_json and result.errors:
        # Machines get the findings where they read the plan: on stdout, as JSON.
        findings = {"valid": False, "errors": [d.as_json() for d in result.errors]}
        click.echo(json.dumps(findings, indent=2))
        return 1
    compiled = result.require()
    the_plan = plan_with_store(compiled, cache_dir)
    if as_json:
        document = plan_json(the_plan, compiled, verbose=verbose)
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        click.echo(format_plan(the_plan, compiled, verbose=verbose), nl=False)
    if budget is not None:
        check_budget(the_plan, budget)
    return 0


def plan_with_store(compiled: Compiled, cache_dir: Path | None) -> Plan:
    """The plan as the store and the lockfile see it (a store that does not exist yet is
    read as an empty one, and not created)."""
    lock_file = project_lock_path(compiled)
    lock = read_lock(lock_file) if lock_file.exists() else None
    root = store_root(compiled.pipeline.project, cache_dir)
    if not is_store(root):
        return make_plan(compiled, CacheStatus(compiled, None, lock))
    with Store.open(root) as store:
        return make_plan(compiled, CacheStatus(compiled, store, lock))


@contextmanager
def remembered_hashes(pipeline: Path, cache_dir: Path | None) -> Iterator[Hasher]:
    """Hash the pipeline's files through its store, which remembers the hashes of unchanged
    files between runs (big motion clips are not read again); plain hashing while there is
    no store yet (none is created here)."""
    root = store_root(Project.of_pipeline(pipeline), cache_dir)
    if not is_store(root):
        yield sha256_file
        return
    with Store.open(root) as store:

        def hash_file(path: Path) -> tuple[str, int]:
            try:
                stored = store.hash_file(path)
            except StoreError as exc:  # unreadable: the compiler reports the file missing
                raise OSError(str(exc)) from exc
            return stored.sha256, stored.size

        yield hash_file


def check_budget(the_plan: Plan, budget: float) -> None:
    """Refuse a plan whose estimate exceeds ``budget`` or that cannot be priced."""
    if the_plan.unpriced:
        raise ShotgraphError(
            f"cannot hold a budget: no known price for {', '.join(the_plan.unpriced)}",
            hint="use a family fal publishes prices for, or run without --budget",
        )
    if the_plan.total_usd > budget:
        raise ShotgraphError(
            f"the estimate ${the_plan.total_usd:.2f} exceeds the budget ${budget:.2f}",
            hint="raise --budget, or render fewer nodes (a cheaper model family; on 0.9.8, "
            "fewer frames)",
        )
