"""``shotgraph run``: render what the plan says, then write the lockfile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from runner.commands.common import backend_option, checked, pipeline_argument, remembered_hashes
from runner.commands.running import execute, open_store, run_options, summarize
from runner.compile.compiler import Compiled
from runner.compile.request import locate_field
from runner.compile.steps import Step
from runner.errors import (
    EXIT_CODES_EPILOG,
    ExitCode,
    ShotgraphError,
    disk_full,
    display_path,
)
from runner.lock import build_lock, project_lock_path, read_lock, write_lock
from runner.plan import CacheStatus, check_budget, drift, make_plan
from runner.ui.run_json import error_document, run_document


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
        return _run(pipeline, backend, frozen, None, options)
    documents: list[dict[str, Any]] = []
    try:
        code = _run(pipeline, backend, frozen, documents, options)
    except ShotgraphError as exc:
        # Told on stderr as usual by the command line; the script reading stdout gets JSON.
        click.echo(json.dumps(error_document(exc, pipeline=str(pipeline)), indent=2))
        raise
    click.echo(json.dumps(documents[0], indent=2, ensure_ascii=False))
    return code


def _run(
    pipeline: Path,
    backend: str,
    frozen: bool,
    documents: list[dict[str, Any]] | None,
    options: dict[str, Any],
) -> int:
    as_json = documents is not None
    with remembered_hashes(pipeline, options["cache_dir"]) as hash_file:
        result = checked(pipeline, backend, hash_file=hash_file)
    compiled = result.require()
    lock_file = project_lock_path(compiled)
    # Only --frozen and --budget (the plan's reasons) read it: it can be megabytes.
    needs_lock = frozen or options["budget"] is not None
    lock = read_lock(lock_file) if needs_lock and lock_file.exists() else None
    if frozen:
        if lock is None:
            raise ShotgraphError(
                f"--frozen needs a lockfile, and {display_path(lock_file)} does not exist",
                hint="run once without --frozen and commit it",
            )
        if lock.backend != backend:
            raise ShotgraphError(
                f"{display_path(lock_file)} was rendered with --backend {lock.backend}, "
                f"and this run uses --backend {backend}",
                hint=f"run with --backend {lock.backend}, or without --frozen to render "
                f"with {backend} and update the lockfile",
            )
        changed = drift(compiled, lock)
        if changed.any:
            raise ShotgraphError(
                f"the pipeline no longer matches {display_path(lock_file)} ({changed.describe()})",
                hint="run without --frozen to render the changes and update the lockfile",
            )
    with open_store(compiled.pipeline.project, options["cache_dir"]) as store:
        if options["budget"] is not None:
            check_budget(make_plan(compiled, CacheStatus(compiled, store, lock)), options["budget"])
        outcome = execute(
            compiled.steps,
            store,
            backend=backend,
            options=options,
            outputs=result.outputs,
            pipeline_name=compiled.pipeline.name,
            describe_issue=_issue_describer(compiled),
            progress_to_stderr=as_json,
        )
        notes = []
        unwritten = False
        written = None
        if outcome.ok and not frozen:
            lock_doc = build_lock(compiled, outcome.records, result.outputs)
            try:
                written = write_lock(lock_file, lock_doc)
            except OSError as exc:
                # Everything is rendered and in the store: the next run writes it in no time.
                unwritten = True
                problem = disk_full(exc, lock_file) or ShotgraphError(exc.strerror or str(exc))
                notes.append(
                    f"lockfile {display_path(lock_file)} NOT written: {problem.message}; "
                    "run again once that is fixed (nothing renders again)"
                )
            else:
                notes.append(
                    f"lockfile {display_path(lock_file)}" + ("" if written else " (unchanged)")
                )
        elif not outcome.ok:
            notes.append(f"lockfile {display_path(lock_file)} not updated: the run is incomplete")
    code = summarize(outcome, result.outputs, notes, backend=backend, to_stderr=as_json)
    code = (code or ExitCode.USER) if unwritten else code
    if documents is not None:
        document = run_document(
            outcome,
            compiled.steps,
            result.outputs,
            pipeline=compiled.pipeline.name,
            backend=backend,
            lockfile=lock_file,
            lock_written=written,
        )
        documents.append(document | {"exit_code": int(code)})
    return code


def _issue_describer(compiled: Compiled) -> Any:
    """fal's 422 issues, pointed back at the pipeline key they came from."""
    pipeline = compiled.pipeline

    def describe(step: Step, issue: Any) -> str:
        node = pipeline.nodes[step.name]
        where = locate_field(list(issue.field_path), node, step.settings, pipeline)
        return f"{issue} ({where})"

    return describe
