"""What `run` and `replay` share: options, the store, reporters, the executor."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from runner.commands.common import shared_store, store_root, store_url_option
from runner.compile.steps import Step
from runner.pipeline.confine import Project
from runner.run.backends import LocalOptions, open_backend
from runner.run.executor import Executor
from runner.run.holding import Hold
from runner.run.interrupt import exit_at_once, signals_handled
from runner.run.outcome import RunOptions, RunResult
from runner.store import Store, TieredStore
from runner.ui.reporters import close_screens, reporters_for

if TYPE_CHECKING:
    from runner.run.queue_client import QueueClient

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
        store_url_option,
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


@contextmanager
def open_store(
    project: Project, cache_dir: Path | None, store_url: str | None = None
) -> Iterator[TieredStore]:
    """The local store, and the shared one it is the near cache of, if the project has one
    (see ``shared_store``); nothing is sent to the shared one until it is needed."""
    remote = shared_store(project.root, store_url)
    with Store.open(store_root(project, cache_dir)) as local:
        yield TieredStore(local, remote)


def execute(
    steps: Mapping[str, Step],
    store: TieredStore,
    *,
    backend: str,
    options: Mapping[str, Any],
    outputs: Mapping[str, Path],
    pipeline_name: str,
    describe_issue: Callable[[Step, Any], str] | None = None,
    progress_to_stderr: bool = False,
    hold: Hold | None = None,
) -> RunResult:
    """Run ``steps`` with the backend, reporting to the terminal and the run log."""
    run_options = RunOptions(backend=backend, jobs=options["jobs"], budget=options["budget"])
    local = LocalOptions(
        latency=options["emulator_latency"],
        concurrency=options["emulator_concurrency"],
        url=options["emulator_url"],
    )

    def connect() -> AbstractAsyncContextManager[QueueClient]:
        return open_backend(backend, store.local.root, local=local)

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
            hold=hold,
        )

        def second(signum: int) -> None:
            # No more tidying: the terminal put back, one line, and out.
            close_screens(reporter)
            click.echo(
                f"{signal.Signals(signum).name} again: exiting now; jobs at fal stay "
                "journaled and the next run collects them (nothing is paid twice)",
                err=True,
            )
            sys.stdout.flush()
            exit_at_once(signum)

        with signals_handled(executor.interrupt, second):
            return await executor.run()

    reporter, log = reporters_for(
        store.local.root, pipeline_name, plain=options["plain"], to_stderr=progress_to_stderr
    )
    try:
        return asyncio.run(go())
    finally:
        log.close()
