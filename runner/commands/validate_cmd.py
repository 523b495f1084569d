"""``shotgraph validate``: every error at once, in every file given; exit 1 when there is any.

A file is a pipeline, or a preset file (``presets:`` and nothing else, as a pipeline's
``imports:`` names): each is checked against its own schema, so a pre-commit hook can hand
over whatever YAML changed under ``pipelines/`` and ``presets/``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from runner.commands.common import backend_option, checked, echo_diagnostics, store_root
from runner.errors import Diagnostic, Diagnostics, ShotgraphError, display_path, sorted_diagnostics
from runner.pipeline.confine import Project

if TYPE_CHECKING:
    from runner.compile.memo import Findings

_PIPELINE_KEY = re.compile(rb"^(version|nodes)\s*:", re.M)
_PRESETS_KEY = re.compile(rb"^presets\s*:", re.M)


def is_preset_file(path: Path) -> bool:
    """A preset file has a top-level ``presets:`` and no ``version:`` or ``nodes:`` (read
    from the text, not parsed: a pipeline is parsed once, by its check)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8 * 1024 * 1024)
    except OSError:
        return False  # the pipeline check says what is wrong with it
    return bool(_PRESETS_KEY.search(head)) and not _PIPELINE_KEY.search(head)


@click.command()
@click.argument(
    "files",
    nargs=-1,
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PIPELINE.yaml|PRESETS.yaml...",
)
@backend_option
@click.option("--json", "as_json", is_flag=True, help="Findings as JSON on stdout.")
@click.option("--strict", is_flag=True, help="Treat lint warnings as errors.")
def validate(files: tuple[Path, ...], backend: str, as_json: bool, strict: bool) -> int:
    """Check pipelines (schema, references, templates, fal's endpoint schemas, lint) and
    preset files (their schema)."""
    reports = [_check(path, backend, as_json, strict) for path in files]
    if as_json:
        shown: Any = reports[0] if len(reports) == 1 else reports
        click.echo(json.dumps(shown, indent=2))
    return 0 if all(report["valid"] for report in reports) else 1


def _check(path: Path, backend: str, as_json: bool, strict: bool) -> dict[str, Any]:
    shown = as_json  # the findings are printed already (or go into the JSON only)
    if is_preset_file(path):
        from runner.pipeline.load import check_preset_file

        diags = Diagnostics()
        count = check_preset_file(path, diags)
        found: Sequence[Diagnostic] = sorted_diagnostics(diags.items)
        what = f"{count} presets"
    else:
        memo = remembered_findings(path, backend, as_json)
        if memo is None:
            result = checked(path, backend, show="none" if as_json else "all")
            found, shown = result.diagnostics, True
            what = f"{len(result.compiled.steps) if result.compiled else 0} nodes"
        else:
            found, what = memo.diagnostics, f"{memo.steps} nodes"
    errors = [d for d in found if d.severity == "error"]
    warnings = [d for d in found if d.severity == "warning"]
    if not shown:
        echo_diagnostics(errors + warnings)
    failed = bool(errors) or (strict and bool(warnings))
    if not as_json:
        if not failed:
            note = f", {len(warnings)} warning(s)" if warnings else ""
            click.echo(f"{display_path(path)}: ok ({what}{note})")
        else:
            strictly = " (--strict: warnings count as errors)" if strict else ""
            click.echo(
                f"{display_path(path)}: {len(errors)} error(s), "
                f"{len(warnings)} warning(s){strictly}",
                err=True,
            )
    return {
        "pipeline": str(path),
        "valid": not failed,
        "errors": [d.as_json() for d in errors],
        "warnings": [d.as_json() for d in warnings],
    }


def remembered_findings(path: Path, backend: str, as_json: bool) -> Findings | None:
    """The findings of ``path`` from the compile memo in its store (read, never written:
    validate opens no store), when they print exactly as a fresh check's would.

    The memo holds them for the absolute path. A path given so is the same text; another
    spelling, only without ``..`` (the same file either way) and for findings that name no
    file (JSON has the file as found) or a file below the working directory (a terminal
    shows such a path relative to it, however it was reached).
    """
    from runner.compile.memo import recall_findings
    from runner.store import is_store

    absolute = Path(os.path.abspath(path))
    if absolute != path and ".." in path.parts:
        return None
    try:
        root = store_root(Project.of_pipeline(absolute), None)
    except ShotgraphError:
        return None
    found = recall_findings(absolute, backend, root) if is_store(root) else None
    if found is None or absolute == path:
        return found
    for item in found.diagnostics:
        file = item.location.file
        if file is not None and (as_json or Path(display_path(file)).is_absolute()):
            return None
    return found
