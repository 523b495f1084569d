"""The command line: parse, build objects, call one function, map errors to exit codes."""

from __future__ import annotations

import click


@click.group()
def cli() -> None:
    """shotgraph: render AI video from version-controlled YAML."""


def main() -> None:
    cli()
