"""``shotgraph graph``: the pipeline's graph as Mermaid or DOT."""

from __future__ import annotations

from pathlib import Path

import click

from runner.commands.common import checked, pipeline_argument
from runner.run.backends import FAL
from runner.ui.graph_export import to_dot, to_mermaid


@click.command()
@pipeline_argument
@click.option(
    "--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True
)
def graph(pipeline: Path, fmt: str) -> int:
    """Print the graph of nodes, keyframes, motion clips and outputs."""
    result = checked(pipeline, FAL, show="errors")
    compiled = result.require()
    click.echo(to_mermaid(compiled) if fmt == "mermaid" else to_dot(compiled), nl=False)
    return 0
