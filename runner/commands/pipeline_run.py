"""Running one pipeline, as ``run`` and ``ci render`` do: check it, hold it to its lock
(``--frozen``) and the budget, render, write the lockfile, summarize."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from runner import atomic
from runner.commands.common import checked_remembered
from runner.commands.running import execute, open_store
from runner.compile.check import check_pipeline, collector_passes_over_live
from runner.compile.lock_memo import LockSeal, lock_seal
from runner.compile.steps import Compiled, Step
from runner.errors import ExitCode, ShotgraphError, disk_full, display_path
from runner.lock import Lock, build_lock, lock_text, project_lock_path, read_lock
from runner.plan import CacheStatus, check_budget, drift, look_in, make_plan, waits
from runner.review.gates import Gates
from runner.run.holding import Hold
from runner.ui.run_json import run_document
from runner.ui.summary import print_summary


def render_pipeline(
    pipeline: Path,
    backend: str,
    frozen: bool,
    documents: list[dict[str, Any]] | None,
    options: dict[str, Any],
) -> int:
    """Run one pipeline as ``shotgraph run`` does; with ``documents``, append its JSON
    summary there (and keep stdout for it: progress and the summary go to stderr)."""
    as_json = documents is not None
    result = checked_remembered(pipeline, backend, options["cache_dir"])
    compiled = result.require()
    lock_file = project_lock_path(compiled)
    gates = Gates(compiled.steps, compiled.pipeline.review)
    # Only --frozen, --budget (the plan's reasons) and approval gates (the lock's entries of
    # what waits are kept) read it: it can be megabytes.
    needs_lock = frozen or options["budget"] is not None or bool(gates.names)
    lock = read_lock(lock_file) if needs_lock and lock_file.exists() else None
    if frozen:
        problem = frozen_problem(compiled, lock, lock_file, backend)
        if problem is not None:
            raise problem
    project = compiled.pipeline.project
    with (
        collector_passes_over_live(),
        open_store(project, options["cache_dir"], options["store_url"]) as store,
    ):
        if options["budget"] is not None:
            shared = asyncio.run(look_in(store, compiled))
            statuses = CacheStatus(compiled, store.local, lock, shared)
            the_plan = make_plan(compiled, statuses, waits(compiled, store.local, lock))
            check_budget(the_plan, options["budget"])
        outcome = execute(
            compiled.steps,
            store,
            backend=backend,
            options=options,
            outputs=result.outputs,
            pipeline_name=compiled.pipeline.name,
            describe_issue=_issue_describer(compiled),
            progress_to_stderr=as_json,
            hold=_holder(gates) if gates.names else None,
        )
        notes = []
        unwritten = False
        written = None
        if outcome.ok and not frozen:
            seal = lock_seal(result, outcome.records, lock_file, store.local.root)
            try:
                written = _write_lock(
                    seal,
                    lock_file,
                    lambda: build_lock(compiled, outcome.records, result.outputs, lock),
                )
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
    print_summary(outcome, result.outputs, notes, backend=backend, to_stderr=as_json)
    code = (outcome.exit_code or ExitCode.USER) if unwritten else outcome.exit_code
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


def _write_lock(seal: LockSeal | None, lock_file: Path, build: Callable[[], Lock]) -> bool:
    """``write_lock(lock_file, build())``, unless the seal says it would find it unchanged;
    the seal then notes the file only if it holds the bytes decided on."""
    if seal is not None and seal.holds():
        return False
    text, changed = lock_text(lock_file, build())
    if changed:
        atomic.write_text(lock_file, text)
    if seal is not None:  # noted only if the file still holds what was decided: not a rewrite
        seal.keep(expected=text.encode("utf-8"))
    return changed


def frozen_problem(
    compiled: Compiled, lock: Lock | None, lock_file: Path, backend: str
) -> ShotgraphError | None:
    """Why ``run --frozen`` refuses this pipeline (no lockfile, another backend, a change
    since it was locked), or None when it renders exactly what its lockfile holds."""
    if lock is None:
        return ShotgraphError(
            f"--frozen needs a lockfile, and {display_path(lock_file)} does not exist",
            hint="run once without --frozen and commit it",
        )
    if lock.backend != backend:
        return ShotgraphError(
            f"{display_path(lock_file)} was rendered with --backend {lock.backend}, "
            f"and this run uses --backend {backend}",
            hint=f"run with --backend {lock.backend}, or without --frozen to render "
            f"with {backend} and update the lockfile",
        )
    changed = drift(compiled, lock)
    # What waits behind an approval gate is not in the lock yet, and need not be.
    waiting = waits(compiled, None, lock)
    changed = replace(changed, added=[n for n in changed.added if n not in waiting])
    if changed.any:
        return ShotgraphError(
            f"the pipeline no longer matches {display_path(lock_file)} ({changed.describe()})",
            hint="run without --frozen to render the changes and update the lockfile",
        )
    return None


def _holder(gates: Gates) -> Hold:
    """The executor's gate check: why a gated node's dependents wait, in words."""

    def hold(node: str, output: str | None) -> str | None:
        wait = gates.holds(node, output)
        return wait.describe() if wait is not None else None

    return hold


def _issue_describer(compiled: Compiled) -> Any:
    """fal's 422 issues, pointed back at the pipeline key they came from."""
    full: list[Compiled] = []

    def describe(step: Step, issue: Any) -> str:
        from runner.compile.request import locate_field  # the compiler: only for a 422

        if not full:
            # A memo's pipeline has no records: compile once more, only now that it matters.
            pipeline = compiled.pipeline
            whole = compiled if step.node in pipeline.nodes else None
            full.append(whole or check_pipeline(pipeline.path, backend=compiled.backend).require())
        pipeline = full[0].pipeline
        node = pipeline.nodes[step.node]
        full_step = full[0].steps[step.name]
        assert full_step.endpoint is not None  # fal answered it: a generation step
        where = locate_field(
            list(issue.field_path), node, full_step.endpoint, full_step.settings, pipeline
        )
        return f"{issue} ({where})"

    return describe
