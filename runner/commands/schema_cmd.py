"""``shotgraph schema``: write the pipeline and preset-file schemas where a studio's files
point their editors (``# yaml-language-server: $schema=../schemas/pipeline.schema.json``),
or check that the ones there are this shotgraph's."""

from __future__ import annotations

from pathlib import Path

import click

from runner.commands.scaffold import stale_schemas, write_schemas
from runner.errors import display_path
from runner.pipeline.load import find_project_root


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write them (default: schemas/ at the project root, where the modelines "
    "of `shotgraph init`'s files point).",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if they differ (pre-commit).")
def schema(out: Path | None, check: bool) -> int:
    """Write the JSON Schemas of pipelines and preset files, for editors and standard tools."""
    target = out or find_project_root(Path.cwd()) / "schemas"
    if check:
        stale = stale_schemas(target)
        for name in stale:
            click.echo(
                f"{display_path(target / name)} is not this shotgraph's schema: run "
                "`shotgraph schema` and commit it",
                err=True,
            )
        return 1 if stale else 0
    changed = write_schemas(target)
    for path in changed:
        click.echo(f"wrote {display_path(path)}")
    if not changed:
        click.echo(f"{display_path(target)}: up to date")
    return 0
