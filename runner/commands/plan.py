"""``shotgraph plan``: every node priced, timed and keyed; nothing is sent."""

from __future__ import annotations

import json
from pathlib import Path

import click

from runner.commands.common import backend_option, checked, pipeline_argument
from runner.errors import ShotgraphError
from runner.plan import Plan, make_plan
from runner.plan_table import format_plan, plan_json


@click.command()
@pipeline_argument
@backend_option
@click.option("--json", "as_json", is_flag=True, help="The plan as JSON on stdout.")
@click.option("-v", "--verbose", is_flag=True, help="Include the full request of every node.")
@click.option(
    "--budget",
    type=float,
    metavar="USD",
    help="Exit 1 if the estimate of what will render exceeds this.",
)
def plan(pipeline: Path, backend: str, as_json: bool, verbose: bool, budget: float | None) -> int:
    """Show what a run would render, with endpoint, length and estimated cost."""
    result = checked(pipeline, backend, quiet_warnings=as_json)
    compiled = result.require()
    the_plan = make_plan(compiled)
    if as_json:
        click.echo(
            json.dumps(plan_json(the_plan, compiled, verbose=verbose), indent=2, ensure_ascii=False)
        )
    else:
        click.echo(format_plan(the_plan, compiled, verbose=verbose), nl=False)
    if budget is not None:
        check_budget(the_plan, budget)
    return 0


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
            hint="raise --budget, or render fewer nodes (fast-preview preset, fewer frames)",
        )
