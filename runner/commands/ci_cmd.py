"""``shotgraph ci``: the two steps of a GitOps job, so that a workflow (the shipped GitHub
Action, or any other CI) is a line each. ``review`` on a pull request: every pipeline
validated, its plan and its lock diff against the base, as one markdown report. ``render``
on merge: each pipeline run as ``run --frozen --budget`` does, one after another, stopping
at a signal, with a JSON summary. See docs/gitops.md."""

from __future__ import annotations

import json
import os
from glob import glob
from pathlib import Path
from typing import Any

import click

from runner.commands.common import backend_option, checked, remembered_hashes, store_root
from runner.commands.pipeline_run import frozen_problem, render_pipeline
from runner.commands.running import run_options
from runner.errors import EXIT_CODES_EPILOG, ExitCode, ShotgraphError, display_path
from runner.lock import Lock, project_lock_path, read_lock
from runner.plan import plan_with_store
from runner.review.lockdiff import compare
from runner.review.lockgit import from_top, git_top, read_locks, verify_rev
from runner.ui.lock_diff import format_markdown
from runner.ui.plan_markdown import format_plan_markdown
from runner.ui.run_json import error_document

DEFAULT_PIPELINES = ("pipelines/*.yaml",)
SIGNAL_CODES = (ExitCode.INTERRUPTED, ExitCode.TERMINATED)


def pipelines_of(patterns: tuple[str, ...]) -> list[Path]:
    """The pipelines the patterns name (globs are expanded here, so a CI input may hold
    them quoted), in order, each once."""
    found: list[Path] = []
    for pattern in patterns or DEFAULT_PIPELINES:
        matches = (
            sorted(glob(pattern, recursive=True)) if any(c in pattern for c in "*?[") else [pattern]
        )
        found += [Path(m) for m in matches if Path(m) not in found]
    if not found:
        raise ShotgraphError(
            f"no pipeline matches {' '.join(patterns or DEFAULT_PIPELINES)}",
            hint="name the pipeline files (globs are fine), e.g. 'pipelines/*.yaml'",
        )
    return found


def worse(a: int, b: int) -> int:
    """The exit code that says more, as errors.ExitCode orders them: a signal, 1, 5, 4."""
    order = [
        *SIGNAL_CODES,
        ExitCode.USER,
        ExitCode.BUG,
        ExitCode.OVER_BUDGET,
        ExitCode.RENDER_FAILED,
    ]
    for code in order:
        if code in (a, b):
            return int(code)
    return max(a, b)


@click.group()
def ci() -> None:
    """The steps of a CI job: review a pull request, render on merge."""


@ci.command(epilog=EXIT_CODES_EPILOG)
@click.argument("patterns", nargs=-1, metavar="[PIPELINES]...")
@backend_option
@click.option("--base", metavar="REV", help="The pull request's base: lockfiles are diffed to it.")
@click.option("--budget", type=click.FloatRange(min=0), metavar="USD", help="Flag plans above it.")
@click.option(
    "--report", type=click.Path(dir_okay=False, path_type=Path), help="Also write it to this file."
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The store to consult (default: $SHOTGRAPH_CACHE_DIR, else .shotgraph/).",
)
def review(
    patterns: tuple[str, ...],
    backend: str,
    base: str | None,
    budget: float | None,
    report: Path | None,
    cache_dir: Path | None,
) -> int:
    """A pull request's review of PIPELINES (default 'pipelines/*.yaml'): each validated,
    planned (what renders, why, what it costs), held to its lockfile as the render on merge
    will be (--frozen), and its lockfile diffed to --base, as one markdown report on stdout
    (and in $GITHUB_STEP_SUMMARY on GitHub)."""
    code = 0
    sections = ["## shotgraph review", ""]
    against = None
    if base is not None:  # a base that is not a commit fails once, before any plan
        against = (git_top(), base)
        verify_rev(*against)
    for pipeline in pipelines_of(patterns):
        try:
            got, section = _review_one(pipeline, backend, against, budget, cache_dir)
        except ShotgraphError as exc:  # a damaged lockfile, say: this pipeline's section says so
            got, section = exc.exit_code, _errors_section(pipeline, [exc.render()])
        code = worse(code, got)
        sections += section
    text = "\n".join(sections).rstrip() + "\n"
    click.echo(text, nl=False)
    if report is not None:
        report.write_text(text, encoding="utf-8")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:  # GitHub shows it on the run's page
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(text)
    return code


def _review_one(
    pipeline: Path,
    backend: str,
    base: tuple[Path, str] | None,
    budget: float | None,
    cache_dir: Path | None,
) -> tuple[int, list[str]]:
    """One pipeline's section of the review and its exit code."""
    with remembered_hashes(pipeline, cache_dir) as hash_file:
        result = checked(pipeline, backend, hash_file=hash_file)
    if result.errors:
        return ExitCode.USER, _errors_section(pipeline, [d.render() for d in result.errors])
    code = 0
    compiled = result.require()
    the_plan = plan_with_store(compiled, store_root(compiled.pipeline.project, cache_dir))
    sections = [format_plan_markdown(the_plan, compiled)]
    if result.warnings:
        sections += [f"- {d.location}: warning: {d.message}" for d in result.warnings]
        sections.append("")
    if budget is not None and the_plan.total_usd > budget:
        code = worse(code, ExitCode.OVER_BUDGET)
        sections += [f"**Over budget:** ${the_plan.total_usd:.2f} > ${budget:.2f}", ""]
    # Read once for both: plan_with_store has read it already, so a damaged lockfile has
    # raised before here (its section says so).
    lock_file = project_lock_path(compiled)
    lock = read_lock(lock_file) if lock_file.exists() else None
    problem = frozen_problem(compiled, lock, lock_file, backend)
    if problem is not None:  # the render on merge would refuse it: say so now
        code = worse(code, ExitCode.USER)
        sections += [
            f"**On merge, `run --frozen` fails:** {problem.message}. Fix: render it "
            f"(`shotgraph run {display_path(pipeline)} --backend {backend}`) and commit "
            f"{display_path(lock_file)} in this pull request.",
            "",
        ]
    if base is not None:
        sections.append(_lock_diff(lock_file, lock, base))
    return code, sections


def _errors_section(pipeline: Path, errors: list[str]) -> list[str]:
    return [
        f"### {display_path(pipeline)}: {len(errors)} error(s)",
        "",
        "```",
        *errors,
        "```",
        "",
    ]


def _lock_diff(lock_file: Path, after: Lock | None, against: tuple[Path, str]) -> str:
    """The markdown diff of the lock at the base revision and ``after`` (the one at
    ``lock_file``); ``against`` is the repository's top and the verified base."""
    top, base = against
    relative = from_top(lock_file, top)
    (before,) = read_locks(top, base, [relative])
    if before is None and after is None:
        return f"_{relative}: no lockfile yet (the first run writes it)_\n"
    return format_markdown(compare(before, after, f"{base}:{relative}", relative))


@ci.command(epilog=EXIT_CODES_EPILOG)
@click.argument("patterns", nargs=-1, metavar="[PIPELINES]...")
@backend_option
@run_options
@click.option(
    "--frozen/--no-frozen",
    default=True,
    show_default=True,
    help="Fail a pipeline that no longer matches its lockfile: render what was reviewed.",
)
@click.option(
    "--summary",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the JSON summaries (a list, one per pipeline) to this file.",
)
def render(
    patterns: tuple[str, ...], backend: str, frozen: bool, summary: Path | None, **options: Any
) -> int:
    """Render PIPELINES (default 'pipelines/*.yaml') on merge, one after another, each as
    `run --frozen` does (with --budget, per pipeline); a JSON list of their summaries on
    stdout, progress on stderr. A signal stops the pipeline under way and the rest."""
    documents: list[dict[str, Any]] = []
    code = 0
    for pipeline in pipelines_of(patterns):
        try:
            got = render_pipeline(pipeline, backend, frozen, documents, options)
        except ShotgraphError as exc:
            click.echo(exc.render(), err=True)
            documents.append(error_document(exc, pipeline=str(pipeline)))
            got = exc.exit_code
        code = worse(code, got)
        if got in SIGNAL_CODES:
            break
    text = json.dumps(documents, indent=2, ensure_ascii=False)
    click.echo(text)
    if summary is not None:
        summary.write_text(text + "\n", encoding="utf-8")
    return code
