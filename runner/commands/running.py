"""What `run` and `replay` share: options, the store, reporters, the executor, the summary."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from runner.backends import LocalOptions, open_backend
from runner.commands.common import store_root
from runner.confine import Project
from runner.errors import display_path
from runner.events import Fanout, Reporter
from runner.execute import Executor
from runner.outcome import RunOptions, RunResult
from runner.report import LiveReporter, PlainReporter, RunLog
from runner.steps import Step
from runner.store import Store

if TYPE_CHECKING:
    from runner.fal import FalClient

F = TypeVar("F", bound=Callable[..., Any])


def run_options(func: F) -> F:
    """Options common to the commands that render."""
    decorators = [
        click.option(
            "-j",
            "--jobs",
            type=click.IntRange(1, 256),
            default=4,
            show_default=True,
            help="fal jobs at once. fal runs 2 at a time on a new account, up to "
            "40 as credit is bought; queued ones wait there.",
        ),
        click.option(
            "--budget",
            type=click.FloatRange(min=0),
            metavar="USD",
            help="Refuse to start (or to submit more) past this estimated spend.",
        ),
        click.option(
            "--cache-dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="The store (default: $SHOTGRAPH_CACHE_DIR, else .shotgraph/ in the project).",
        ),
        click.option("--plain", is_flag=True, help="Plain lines, even on a terminal."),
        click.option(
            "--emulator-latency",
            type=click.FloatRange(min=0),
            default=0.0,
            show_default=True,
            help="local backend: least seconds a job runs.",
        ),
        click.option(
            "--emulator-concurrency",
            type=click.IntRange(1, 64),
            default=4,
            show_default=True,
            help="local backend: jobs running at once.",
        ),
        click.option(
            "--emulator-url",
            metavar="URL",
            help="local backend: use an emulator already serving at URL.",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def open_store(project: Project, cache_dir: Path | None) -> Store:
    return Store.open(store_root(project, cache_dir))


def reporter_for(store: Store, pipeline: str, plain: bool) -> tuple[Fanout, RunLog]:
    # Unique per run: two runs may start within the same second.
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log = RunLog(store.root / "logs" / f"{stamp}-{pipeline}-{uuid.uuid4().hex[:8]}.jsonl")
    screen: Reporter
    if not plain and sys.stdout.isatty():
        from rich.console import Console

        screen = LiveReporter(Console())
    else:
        screen = PlainReporter(sys.stdout)
    return Fanout(screen, log), log


def execute(
    steps: Mapping[str, Step],
    store: Store,
    *,
    backend: str,
    options: Mapping[str, Any],
    outputs: Mapping[str, Path],
    pipeline_name: str,
    describe_issue: Callable[[Step, Any], str] | None = None,
) -> RunResult:
    """Run ``steps`` with the backend, reporting to the terminal and the run log."""
    run_options = RunOptions(backend=backend, jobs=options["jobs"], budget=options["budget"])
    local = LocalOptions(
        latency=options["emulator_latency"],
        concurrency=options["emulator_concurrency"],
        url=options["emulator_url"],
    )

    def connect() -> AbstractAsyncContextManager[FalClient]:
        return open_backend(backend, store.root, local=local)

    async def go() -> RunResult:
        executor = Executor(
            steps,
            store,
            connect,
            reporter,
            run_options,
            outputs=outputs,
            describe_issue=describe_issue,
            pipeline_name=pipeline_name,
        )
        return await executor.run()

    reporter, log = reporter_for(store, pipeline_name, options["plain"])
    try:
        return asyncio.run(go())
    finally:
        log.close()


def summarize(
    result: RunResult, outputs: Mapping[str, Path], extra: list[str], *, backend: str
) -> int:
    """Print the run's summary; the exit code."""
    rendered, cached = len(result.rendered), len(result.cached)
    money = (
        f"would cost ~${result.spent_usd:.2f} on fal (the local backend is free)"
        if backend == "local"
        else f"spent ~${result.spent_usd:.2f}"
    )
    head = (
        f"{rendered} rendered, {cached} cached, {len(result.failed)} failed, "
        f"{len(result.skipped)} skipped · {money}"
    )
    click.echo(("interrupted: " if result.interrupted else "") + head)
    if result.reattached or result.received:
        # Only what this run submitted is its spending: a job re-attached after a crash was
        # paid for by the run that sent it, and another run sharing the store pays for its own.
        parts = [f"{len(result.submitted)} submitted by this run"]
        if result.reattached:
            parts.append(
                f"{len(result.reattached)} re-attached (sent and paid for by an earlier run, "
                f"~${result.reattached_usd:.2f})"
            )
        if result.received:
            parts.append(f"{len(result.received)} rendered by another run sharing the store")
        click.echo(f"  of those rendered: {', '.join(parts)}; the cost above is this run's")
    if result.in_flight:
        click.echo(
            f"  still running at fal: {', '.join(result.in_flight)}; run again to "
            "collect them (they are not submitted again)"
        )
    for name, failure in sorted(result.failed.items()):
        click.echo(click.style(f"  failed {name}: {failure.message}", fg="red"), err=True)
        if failure.hint:
            click.echo(f"    hint: {failure.hint}", err=True)
    for name, path in sorted(outputs.items()):
        if name in result.records:
            click.echo(f"  output {name}: {display_path(path)}")
    for line in extra:
        click.echo(f"  {line}")
    for note in result.notes:
        click.echo(f"  note: {note}", err=True)
    if result.stopped is not None:
        click.echo(click.style(f"stopped: {result.stopped.message}", fg="red"), err=True)
        if result.stopped.hint:
            click.echo(f"    hint: {result.stopped.hint}", err=True)
        return 1
    if result.interrupted:
        return 130
    return 0 if result.ok else 1
