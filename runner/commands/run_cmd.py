"""``shotgraph run``: render what the plan says, then write the lockfile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from runner.commands.common import backend_option, pipeline_argument
from runner.commands.pipeline_run import render_pipeline
from runner.commands.running import run_options
from runner.compile.check import collector_paused
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
# A no-op run builds its steps, records and lock (hundreds of thousands of objects, all
# kept) and the collector walks them over and over: ~0.08 s of the 0.7 s of CPU of one of
# 5,000 nodes. Paused for the whole command, a full run of 1,000 nodes peaked at the same
# 112 MB: what it drops is freed as its last reference goes, with next to no cycles.
@collector_paused()
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
