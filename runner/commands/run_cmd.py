"""``shotgraph run``: render what the plan says, then write the lockfile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from runner.commands.common import backend_option, pipeline_argument
from runner.commands.pipeline_run import render_pipeline
from runner.commands.running import run_options
from runner.errors import EXIT_CODES_EPILOG, ShotgraphError
from runner.ui.run_json import error_document


@click.command(epilog=EXIT_CODES_EPILOG)
@pipeline_argument
@backend_option
@run_options
@click.option(
    "--frozen", is_flag=True, help="Fail if the pipeline no longer matches its lockfile (for CI)."
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a JSON summary of the run on stdout (progress and messages go to stderr).",
)
def run(pipeline: Path, backend: str, frozen: bool, as_json: bool, **options: Any) -> int:
    """Render a pipeline: only what changed, never paying twice; write its lockfile."""
    if not as_json:
        return render_pipeline(pipeline, backend, frozen, None, options)
    documents: list[dict[str, Any]] = []
    try:
        code = render_pipeline(pipeline, backend, frozen, documents, options)
    except ShotgraphError as exc:
        # Told on stderr as usual by the command line; the script reading stdout gets JSON.
        click.echo(json.dumps(error_document(exc, pipeline=str(pipeline)), indent=2))
        raise
    click.echo(json.dumps(documents[0], indent=2, ensure_ascii=False))
    return code
