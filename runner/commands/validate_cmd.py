"""``shotgraph validate``: every error at once; exit 1 when there is any."""

from __future__ import annotations

import json
from pathlib import Path

import click

from runner.commands.common import backend_option, checked, pipeline_argument
from runner.errors import display_path


@click.command()
@pipeline_argument
@backend_option
@click.option("--json", "as_json", is_flag=True, help="Findings as JSON on stdout.")
@click.option("--strict", is_flag=True, help="Treat lint warnings as errors.")
def validate(pipeline: Path, backend: str, as_json: bool, strict: bool) -> int:
    """Check a pipeline: schema, references, templates, fal's endpoint schemas, lint."""
    result = checked(pipeline, backend, show="none" if as_json else "all")
    failed = bool(result.errors) or (strict and bool(result.warnings))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "pipeline": str(pipeline),
                    "valid": not failed,
                    "errors": [d.as_json() for d in result.errors],
                    "warnings": [d.as_json() for d in result.warnings],
                },
                indent=2,
            )
        )
    elif not failed:
        steps = len(result.compiled.steps) if result.compiled else 0
        note = f", {len(result.warnings)} warning(s)" if result.warnings else ""
        click.echo(f"{display_path(pipeline)}: ok ({steps} nodes{note})")
    else:
        strictly = " (--strict: warnings count as errors)" if strict else ""
        click.echo(
            f"{display_path(pipeline)}: {len(result.errors)} error(s), "
            f"{len(result.warnings)} warning(s){strictly}",
            err=True,
        )
    return 1 if failed else 0
